// Floating-IP claims in the datastore. A claim's key is the IP itself and it is
// created with "must not exist" (or "unchanged since read" when this container
// already holds it) in the same transaction that writes the endpoint and checks
// the address is no pod's own: exclusivity comes from the datastore's atomic
// compare, never from a check-then-write.
import type { FloatingIpClaim, IpPool, WorkloadEndpoint } from "../datastore/model.js";
import { keys, type Store } from "../datastore/store.js";
import type { KvCompare, KvOp } from "../datastore/kv.js";
import { blockCidrFor } from "../ipam/pool.js";
import { checkClaimConflict, findPool, type FloatingBinding } from "./validate.js";

export interface ClaimHolder {
  namespace: string;
  pod: string;
  containerID: string;
  node: string;
}

const MAX_ATTEMPTS = 20;

/**
 * Throws FloatingIpError when any binding is held by another pod or is a pod's
 * own address; otherwise resolves to the compares that keep that true.
 */
export async function checkClaims(
  store: Store,
  pools: readonly IpPool[],
  bindings: readonly FloatingBinding[],
  holder: ClaimHolder,
): Promise<KvCompare[]> {
  const compares: KvCompare[] = [];
  for (const { externalIP } of bindings) {
    const pool = findPool(externalIP, pools);
    const blockCidr = pool && blockCidrFor(pool, externalIP);
    const [claim, block] = await Promise.all([
      store.getClaim(externalIP),
      blockCidr ? store.getBlock(blockCidr) : Promise.resolve(undefined),
    ]);
    checkClaimConflict(
      externalIP,
      holder.containerID,
      claim?.value,
      block?.value.allocations[externalIP],
    );
    const claimKey = keys.claim(externalIP);
    compares.push(
      claim ? { key: claimKey, modRevision: claim.revision } : { key: claimKey, createRevision: 0 },
    );
    if (blockCidr) {
      const blockKey = keys.block(blockCidr);
      compares.push(
        block
          ? { key: blockKey, modRevision: block.revision }
          : { key: blockKey, createRevision: 0 },
      );
    }
  }
  return compares;
}

/** Creates the claims and writes the endpoint in one transaction, re-checking on conflict. */
export async function commitClaimsAndEndpoint(
  store: Store,
  pools: readonly IpPool[],
  bindings: readonly FloatingBinding[],
  holder: ClaimHolder,
  endpoint: WorkloadEndpoint,
  now: Date,
): Promise<void> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const compares = await checkClaims(store, pools, bindings, holder);
    const ops: KvOp[] = bindings.map(({ externalIP, internalIP }) => {
      const claim: FloatingIpClaim = {
        ip: externalIP,
        ...holder,
        internalIP,
        createdAt: now.toISOString(),
      };
      return { put: keys.claim(externalIP), value: JSON.stringify(claim) };
    });
    ops.push({
      put: keys.endpoint(endpoint.node, endpoint.containerID, endpoint.endpoint),
      value: JSON.stringify(endpoint),
    });
    if (await store.kv.txn(compares, ops)) return;
  }
  throw new Error(`recording floating IP claims kept conflicting after ${MAX_ATTEMPTS} attempts`);
}

/** Deletes every claim held by the container; resolves to the IPs freed. Idempotent. */
export async function releaseClaims(store: Store, containerID: string): Promise<string[]> {
  const freed: string[] = [];
  for (const claim of await store.listClaims()) {
    if (claim.value.containerID !== containerID) continue;
    const key = keys.claim(claim.value.ip);
    if (await store.kv.txn([{ key, modRevision: claim.revision }], [{ delete: key }])) {
      freed.push(claim.value.ip);
    }
  }
  return freed;
}
