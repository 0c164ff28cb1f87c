// Floating-IP claims in etcd. A claim's key is the IP itself and it is
// created with "must not exist" (or "unchanged since read" when this container
// already holds it) in the same transaction that writes the endpoint and checks
// the address is no pod's own: exclusivity comes from the datastore's atomic
// compare, never from a check-then-write.
import type {
  FloatingIpClaim,
  IpPool,
  IpamBlock,
  Versioned,
  WorkloadEndpoint,
} from "../model/records.js";
import { keys, type Store } from "./store.js";
import type { KvCompare, KvOp } from "../datastore/kv.js";
import {
  blockCidrOf,
  checkClaims,
  type ClaimHolder,
  type ClaimLookup,
} from "../floating/claim-check.js";

const MAX_ATTEMPTS = 20;

/** Reads, in one request, the claim and block of every floating IP. */
export async function readClaimLookup(
  store: Store,
  pools: readonly IpPool[],
  floatingIps: readonly string[],
): Promise<ClaimLookup> {
  const cidrs = floatingIps.map((ip) => blockCidrOf(ip, pools));
  const results = await store.kv.readMany([
    ...floatingIps.map((ip) => ({ key: keys.claim(ip) })),
    ...cidrs.flatMap((cidr) => (cidr ? [{ key: keys.block(cidr) }] : [])),
  ]);
  const entries = results.flat();
  const find = <T>(key: string): Versioned<T> | undefined => {
    const entry = entries.find((candidate) => candidate.key === key);
    return entry && { value: JSON.parse(entry.value) as T, revision: String(entry.modRevision) };
  };
  return {
    claim: (ip) => find<FloatingIpClaim>(keys.claim(ip)),
    block: (cidr) => find<IpamBlock>(keys.block(cidr)),
  };
}

/**
 * Throws FloatingIpError when any floating IP is held by another pod or is a
 * pod's own address; otherwise returns the etcd compares that keep that true.
 */
export function planClaimCompares(
  pools: readonly IpPool[],
  floatingIps: readonly string[],
  holder: ClaimHolder,
  lookup: ClaimLookup,
): KvCompare[] {
  checkClaims(pools, floatingIps, holder, lookup);
  const compares: KvCompare[] = [];
  for (const externalIP of floatingIps) {
    const claim = lookup.claim(externalIP);
    const blockCidr = blockCidrOf(externalIP, pools);
    const block = blockCidr ? lookup.block(blockCidr) : undefined;
    const claimKey = keys.claim(externalIP);
    compares.push(
      claim
        ? { key: claimKey, modRevision: Number(claim.revision) }
        : { key: claimKey, createRevision: 0 },
    );
    if (blockCidr) {
      const blockKey = keys.block(blockCidr);
      compares.push(
        block
          ? { key: blockKey, modRevision: Number(block.revision) }
          : { key: blockKey, createRevision: 0 },
      );
    }
  }
  return compares;
}

/**
 * Creates the claims and writes the endpoint in one transaction. The first
 * attempt uses `compares` planned by the caller; when the transaction loses a
 * race, the records are read again and the plan re-made, which throws the
 * SPEC §4 error naming the winner.
 */
export async function commitClaimsAndEndpoint(
  store: Store,
  pools: readonly IpPool[],
  claims: readonly FloatingIpClaim[],
  endpoint: WorkloadEndpoint,
  compares: KvCompare[],
): Promise<void> {
  const ops: KvOp[] = claims.map((claim) => ({
    put: keys.claim(claim.ip),
    value: JSON.stringify(claim),
  }));
  ops.push({
    put: keys.endpoint(endpoint.node, endpoint.containerID, endpoint.endpoint),
    value: JSON.stringify(endpoint),
  });
  let planned = compares;
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    if (await store.kv.txn(planned, ops)) return;
    const ips = claims.map((claim) => claim.ip);
    planned = planClaimCompares(pools, ips, endpoint, await readClaimLookup(store, pools, ips));
  }
  throw new Error(`recording floating IP claims kept conflicting after ${MAX_ATTEMPTS} attempts`);
}
