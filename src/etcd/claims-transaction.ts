// Floating-IP claims in etcd. A claim's key is the IP itself and it is
// created with "must not exist" (or "unchanged since read" when this container
// already holds it) in the same transaction that writes the endpoint and checks
// the address is no pod's own: exclusivity comes from the datastore's atomic
// compare, never from a check-then-write. The address's blocks are found by
// containment, from its region's record (ipam/region.ts), whose revision the
// transaction also compares: a block made in the region meanwhile fails it.
import type {
  FloatingIpClaim,
  IpPool,
  IpamBlock,
  IpamRegion,
  Versioned,
  WorkloadEndpoint,
} from "../model/records.js";
import type { AllocationSnapshot } from "../datastore/datastore.js";
import { keys, type Store } from "./store.js";
import { MAX_TXN_OPS, type KvCompare, type KvEntry, type KvOp } from "../datastore/kv.js";
import { readGroups } from "./allocation-reads.js";
import {
  blockCidrsToRead,
  checkClaims,
  snapshotLookup,
  type ClaimHolder,
  type ClaimLookup,
} from "../floating/claim-check.js";
import { regionCidrOf } from "../ipam/region.js";
import { planParts } from "./plan-parts.js";
import { commitParts } from "./commit-parts.js";

const MAX_ATTEMPTS = 20;

/** A ClaimLookup that also has the region record of each address, for its revision. */
export interface EtcdClaimLookup extends ClaimLookup {
  region(ip: string): Versioned<IpamRegion> | undefined;
}

/** The lookup over a snapshot read in one request (pools, blocks, claims, regions). */
export function etcdSnapshotLookup(snapshot: AllocationSnapshot): EtcdClaimLookup {
  const regions = new Map((snapshot.regions ?? []).map((region) => [region.value.cidr, region]));
  return {
    ...snapshotLookup(snapshot),
    region: (ip) => regions.get(regionCidrOf(ip) ?? ""),
  };
}

/**
 * Reads the claim and region of every floating IP in one request, then the
 * blocks the regions list as holding them: a bounded read whatever the
 * cluster's size.
 */
export async function readClaimLookup(
  store: Store,
  pools: readonly IpPool[],
  floatingIps: readonly string[],
): Promise<EtcdClaimLookup> {
  const regionCidrs = [...new Set(floatingIps.flatMap((ip) => regionCidrOf(ip) ?? []))];
  const [claimEntries = [], regionEntries = []] = await readGroups(store, [
    floatingIps.map((ip) => ({ key: keys.claim(ip) })),
    regionCidrs.map((cidr) => ({ key: keys.region(cidr) })),
  ]);
  const claims = new Map(
    claimEntries.map((entry) => [entry.key, versioned<FloatingIpClaim>(entry)]),
  );
  const regions = new Map(
    regionEntries.map((entry) => {
      const region = versioned<IpamRegion>(entry);
      return [region.value.cidr, region];
    }),
  );
  // Every size: a block made before regions is listed nowhere, and its
  // pool's blockSize may have changed since.
  const holdingCidrs = (ip: string) =>
    blockCidrsToRead(ip, regions.get(regionCidrOf(ip) ?? "")?.value, pools, true);
  const blockCidrs = [...new Set(floatingIps.flatMap(holdingCidrs))];
  const [blockEntries = []] = await readGroups(store, [
    blockCidrs.map((cidr) => ({ key: keys.block(cidr) })),
  ]);
  const blocks = new Map(blockEntries.map((entry) => [entry.key, versioned<IpamBlock>(entry)]));
  return {
    claim: (ip) => claims.get(keys.claim(ip)),
    blocksHolding: (ip) => holdingCidrs(ip).flatMap((cidr) => blocks.get(keys.block(cidr)) ?? []),
    region: (ip) => regions.get(regionCidrOf(ip) ?? ""),
  };
}

/**
 * Throws FloatingIpError when any floating IP is held by another pod or is a
 * pod's own address; otherwise returns the etcd compares that keep that true:
 * each claim, each block holding an address, and each address's region.
 */
export function planClaimCompares(
  floatingIps: readonly string[],
  holder: ClaimHolder,
  lookup: EtcdClaimLookup,
): KvCompare[] {
  checkClaims(floatingIps, holder, lookup);
  const compares = new Map<string, KvCompare>();
  const compare = (key: string, record: Versioned<unknown> | undefined) =>
    compares.set(
      key,
      record ? { key, modRevision: Number(record.revision) } : { key, createRevision: 0 },
    );
  for (const externalIP of floatingIps) {
    compare(keys.claim(externalIP), lookup.claim(externalIP));
    const blocks = lookup.blocksHolding(externalIP);
    for (const block of blocks) compare(keys.block(block.value.cidr), block);
    // A block listed in the region holds the IP: no block overlapping it can
    // be made, so its own compare is enough (and keeps a pod with many
    // floating IPs inside etcd's 128 compares). Else the region's.
    const region = lookup.region(externalIP);
    const listed = blocks.some((block) => region?.value.blocks.includes(block.value.cidr));
    const regionCidr = regionCidrOf(externalIP);
    if (regionCidr !== undefined && !listed) compare(keys.region(regionCidr), region);
  }
  return [...compares.values()];
}

/**
 * Creates the claims and writes the endpoint in one transaction. The first
 * attempt uses `compares` planned by the caller; when the transaction loses a
 * race, the records are read again and the plan re-made, which throws the
 * SPEC §4 error naming the winner. More claims than one transaction holds
 * (etcd's 128 operations) are made in parts (commitInParts, ADR 0012).
 */
export async function commitClaimsAndEndpoint(
  store: Store,
  pools: readonly IpPool[],
  claims: readonly FloatingIpClaim[],
  endpoint: WorkloadEndpoint,
  compares: KvCompare[],
): Promise<void> {
  if (compares.length > MAX_TXN_OPS || claims.length + 1 > MAX_TXN_OPS) {
    return commitInParts(store, pools, claims, endpoint);
  }
  await commitOne(store, pools, claims, endpoint, compares);
}

/** How long a claim intent lives (s): an ADD in parts must reach its endpoint within it. */
const INTENT_TTL_SECONDS = 30;

/**
 * The claims in parts (ADR 0012), in address order, each part binding for
 * its own claim keys and blocks or regions; the endpoint in the part after
 * the last claim. The first part writes the container's claim intent with a
 * lease, and the endpoint's part writes it again with that lease, so it
 * fails if the lease expired; while the intent exists the claim collector
 * leaves the container's claims alone. A refusal undoes the parts before
 * it and plans again from a fresh read, which throws the SPEC §4 error.
 */
async function commitInParts(
  store: Store,
  pools: readonly IpPool[],
  claims: readonly FloatingIpClaim[],
  endpoint: WorkloadEndpoint,
): Promise<void> {
  const ordered = [...claims].sort((a, b) => compareKeys(keys.claim(a.ip), keys.claim(b.ip)));
  const ips = ordered.map((claim) => claim.ip);
  const intentKey = keys.claimIntent(endpoint.node, endpoint.containerID);
  const ours = (value: string) => parsedClaim(value)?.containerID === endpoint.containerID;
  const lease = await store.kv.grantLease(INTENT_TTL_SECONDS);
  try {
    const intent: KvOp = {
      put: intentKey,
      value: JSON.stringify({ node: endpoint.node, containerID: endpoint.containerID }),
      lease,
    };
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const lookup = await readClaimLookup(store, pools, ips);
      const previous = new Map<string, string | undefined>();
      const writes = ordered.map((claim) => {
        const key = keys.claim(claim.ip);
        const held = lookup.claim(claim.ip);
        previous.set(key, held && JSON.stringify(held.value));
        return {
          compares: planClaimCompares([claim.ip], endpoint, lookup),
          ops: [{ put: key, value: JSON.stringify(claim) }],
        };
      });
      const plan = planParts({
        writes: [{ compares: [], ops: [intent] }, ...writes],
        anchor: { compares: [], ops: [endpointPut(endpoint), intent] },
        removals: [],
      });
      if (await commitParts(store.kv, { plan, previous, ours })) return;
    }
    throw new Error(`recording floating IP claims kept conflicting after ${MAX_ATTEMPTS} attempts`);
  } finally {
    // Deletes the intent; had it been left, it would expire.
    await store.kv.revokeLease(lease).catch(() => undefined);
  }
}

function endpointPut(endpoint: WorkloadEndpoint): KvOp {
  return {
    put: keys.endpoint(endpoint.node, endpoint.containerID, endpoint.endpoint),
    value: JSON.stringify(endpoint),
  };
}

function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function parsedClaim(value: string): FloatingIpClaim | undefined {
  try {
    return JSON.parse(value) as FloatingIpClaim;
  } catch {
    return undefined;
  }
}

/** Claims and endpoint in one transaction; re-planned from a fresh read on a lost race. */
async function commitOne(
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
  ops.push(endpointPut(endpoint));
  const ips = claims.map((claim) => claim.ip);
  let planned = compares;
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    if (await store.kv.txn(planned, ops)) return;
    planned = planClaimCompares(ips, endpoint, await readClaimLookup(store, pools, ips));
  }
  throw new Error(`recording floating IP claims kept conflicting after ${MAX_ATTEMPTS} attempts`);
}

function versioned<T>(entry: KvEntry): Versioned<T> {
  return { value: JSON.parse(entry.value) as T, revision: String(entry.modRevision) };
}
