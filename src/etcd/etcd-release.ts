// Everything the datastore holds for one container (or one of its
// interfaces), released together: its endpoint(s), its floating-IP claims and
// (with buoy's own IPAM) its addresses. Two reads and one transaction, bounded by the container and its node;
// a lost race reads again. Idempotent. A container with more floating IPs
// than one transaction holds lets its claims go in parts after the one that
// deletes its endpoints (ADR 0012).
import type { FloatingIpClaim, IpamBlock, WorkloadEndpoint } from "../model/records.js";
import type { KvCompare, KvEntry, KvOp, KvRead } from "../datastore/kv.js";
import { keys, type Store } from "./store.js";
import type { ReleaseTarget, Released } from "../datastore/datastore.js";
import { addressesOfHandle, withoutHandle } from "../ipam/block.js";
import { canonicalAddress } from "../net/address.js";
import { readGroups, readRegions } from "./allocation-reads.js";
import { BlockIndex, cidrsHolding, regionCidrOf } from "../ipam/region.js";
import { fitsOneTransaction, planParts, type TxnUnit } from "./plan-parts.js";
import { commitParts } from "./commit-parts.js";

const MAX_ATTEMPTS = 20;

function parseOrUndefined<T>(text: string): T | undefined {
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

export async function releaseContainer(store: Store, target: ReleaseTarget): Promise<Released> {
  const endpointRead: KvRead = target.ifname
    ? { key: keys.endpoint(target.node, target.containerID, target.ifname) }
    : { prefix: `${keys.nodeEndpoints(target.node)}${target.containerID}/` };
  const nodeReads: KvRead[] = target.handle
    ? [{ prefix: keys.nodeAffinities(target.node) }, { prefix: keys.nodeBorrowed(target.node) }]
    : [];

  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    // What the container holds, by key (issue 14): its endpoints, the claims
    // their ipNATs name (ADD and live changes write both in one transaction),
    // and the node's blocks through its affinity and node-borrowed records.
    const [endpoints = [], affinities = [], borrowed = []] = await store.kv.readMany([
      endpointRead,
      ...nodeReads,
    ]);
    const records = endpoints.flatMap(
      (entry) => parseOrUndefined<WorkloadEndpoint>(entry.value) ?? [],
    );
    const claimIps = [
      ...new Set(records.flatMap((endpoint) => endpoint.ipNATs.map((nat) => nat.externalIP))),
    ];
    const blockCidrs = [
      ...new Set(
        [...affinities, ...borrowed].flatMap(
          (entry) => parseOrUndefined<{ cidr?: string }>(entry.value)?.cidr ?? [],
        ),
      ),
    ];
    const [claims = [], indexed = []] = await readGroups(store, [
      claimIps.map((ip) => ({ key: keys.claim(ip) })),
      blockCidrs.map((cidr) => ({ key: keys.block(cidr) })),
    ]);
    // The endpoints' addresses in blocks the index does not name (borrowed
    // before node-borrowed records existed): found through their regions.
    const blocks = target.handle
      ? [...indexed, ...(await readUnindexed(store, records, indexed))]
      : indexed;
    // The endpoints and addresses together (the anchor); the claims after
    // them, in the same transaction when it holds them (ADR 0012).
    const compares: KvCompare[] = [];
    const ops: KvOp[] = [];
    const removals: TxnUnit[] = [];
    const released: Released = { addresses: [], floatingIps: [] };
    const remove = (key: string, modRevision: number) => {
      compares.push({ key, modRevision });
      ops.push({ delete: key });
    };
    for (const entry of endpoints) remove(entry.key, entry.modRevision);
    // One interface's DEL releases the floating IPs translated to that
    // interface's addresses, not its container's others (a pod on two networks).
    const interfaceAddresses = target.ifname
      ? new Set(
          records.flatMap((endpoint) =>
            endpoint.ipNetworks.map((net) => canonicalAddress(net.split("/")[0] ?? "") ?? net),
          ),
        )
      : undefined;
    for (const entry of claims) {
      // Another container's unreadable claim is not ours to judge: skip it.
      const claim = parseOrUndefined<FloatingIpClaim>(entry.value);
      if (claim?.containerID !== target.containerID) continue;
      if (interfaceAddresses && !interfaceAddresses.has(canonicalAddress(claim.internalIP) ?? "")) {
        continue;
      }
      removals.push({
        compares: [{ key: entry.key, modRevision: entry.modRevision }],
        ops: [{ delete: entry.key }],
      });
      released.floatingIps.push(claim.ip);
    }
    for (const entry of target.handle ? blocks : []) {
      const block = JSON.parse(entry.value) as IpamBlock;
      const addresses = addressesOfHandle(block, target.handle as string);
      if (addresses.length === 0) continue;
      compares.push({ key: entry.key, modRevision: entry.modRevision });
      ops.push({
        put: entry.key,
        value: JSON.stringify(withoutHandle(block, target.handle as string)),
      });
      for (const ip of addresses) {
        ops.push(
          { delete: keys.borrowedAddress(ip) },
          { delete: keys.nodeBorrowedAddress(block.allocations[ip]?.node ?? target.node, ip) },
        );
      }
      released.addresses.push(...addresses);
    }
    const change = { writes: [], anchor: { compares, ops }, removals };
    if (ops.length === 0 && removals.length === 0) return released;
    if (fitsOneTransaction(change)) {
      const all = [...compares, ...removals.flatMap((unit) => unit.compares)];
      if (await store.kv.txn(all, [...ops, ...removals.flatMap((unit) => unit.ops)])) {
        return released;
      }
      continue;
    }
    // Endpoints first: from then on no agent programs the floating IPs,
    // and a claim left by a DEL stopped between parts has no endpoint
    // (the claim collector's case).
    const ours = (value: string) =>
      parseOrUndefined<FloatingIpClaim>(value)?.containerID === target.containerID;
    const plan = planParts(change);
    if (await commitParts(store.kv, { plan, previous: new Map(), ours })) return released;
  }
  throw new Error(
    `releasing container ${target.containerID} kept conflicting after ${MAX_ATTEMPTS} attempts`,
  );
}

/** The blocks, by their region records, holding endpoint addresses no `indexed` block holds. */
async function readUnindexed(
  store: Store,
  endpoints: readonly WorkloadEndpoint[],
  indexed: readonly KvEntry[],
): Promise<KvEntry[]> {
  const known = new BlockIndex(
    indexed.flatMap((entry) => {
      const block = parseOrUndefined<IpamBlock>(entry.value);
      return block ? [{ value: block, revision: String(entry.modRevision) }] : [];
    }),
  );
  const missing = endpoints
    .flatMap((endpoint) => endpoint.ipNetworks.map((network) => network.split("/")[0] ?? ""))
    .filter((ip) => ip !== "" && known.holding(ip).length === 0);
  if (missing.length === 0) return [];
  const regionCidrs = [...new Set(missing.flatMap((ip) => regionCidrOf(ip) ?? []))];
  const regions = await readRegions(store, regionCidrs);
  const listed = regions.flatMap((region) => region?.value.blocks ?? []);
  const taken = new Set(indexed.map((entry) => entry.key));
  const cidrs = [...new Set(missing.flatMap((ip) => cidrsHolding(listed, ip)))].filter(
    (cidr) => !taken.has(keys.block(cidr)),
  );
  const [entries = []] = await readGroups(store, [
    cidrs.map((cidr) => ({ key: keys.block(cidr) })),
  ]);
  return entries;
}
