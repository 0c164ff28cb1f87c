// What the etcd datastore reads for one ADD, DEL or GC (issue 14): the
// pools, the node's blocks through its affinity and node-borrowed records,
// and the claims, regions and blocks of the addresses asked about, by key.
// A few requests of bounded size, whatever the cluster holds.
import type { AllocationQuery, AllocationSnapshot } from "../datastore/datastore.js";
import { MAX_TXN_OPS, type KvEntry, type KvRead } from "../datastore/kv.js";
import { blockCidrsToRead } from "../floating/claim-check.js";
import { regionCidrOf } from "../ipam/region.js";
import type { FloatingIpClaim, IpamBlock, IpamRegion, Versioned } from "../model/records.js";
import { keys, validPools, versioned, type Store } from "./store.js";

/**
 * Groups of reads, in requests of at most MAX_TXN_OPS reads (each at its own
 * revision: the transactions' compares are what bind); each group's entries.
 */
export async function readGroups(
  store: Store,
  groups: readonly (readonly KvRead[])[],
): Promise<KvEntry[][]> {
  const all = groups.flat();
  const results: KvEntry[][] = [];
  for (let start = 0; start < all.length; start += MAX_TXN_OPS) {
    results.push(...(await store.kv.readMany(all.slice(start, start + MAX_TXN_OPS))));
  }
  let next = 0;
  return groups.map((group) => {
    const entries = results.slice(next, next + group.length).flat();
    next += group.length;
    return entries;
  });
}

const byKey = (ks: readonly string[]): KvRead[] => ks.map((key) => ({ key }));

/** The CIDRs a node's affinity and node-borrowed records name. */
function nodeBlockCidrs(affinities: readonly KvEntry[], borrowed: readonly KvEntry[]): string[] {
  const cidrs = [...affinities, ...borrowed].flatMap((entry) => {
    try {
      const { cidr } = JSON.parse(entry.value) as { cidr?: unknown };
      return typeof cidr === "string" ? [cidr] : [];
    } catch {
      return [];
    }
  });
  return [...new Set(cidrs)];
}

export async function readAllocationSnapshot(
  store: Store,
  { node, floatingIps }: AllocationQuery,
): Promise<AllocationSnapshot> {
  const regionCidrs = [...new Set(floatingIps.flatMap((ip) => regionCidrOf(ip) ?? []))];
  const nodeReads: KvRead[] =
    node === undefined
      ? []
      : [{ prefix: keys.nodeAffinities(node) }, { prefix: keys.nodeBorrowed(node) }];
  const [poolEntries = [], affinities = [], borrowed = [], claimEntries = [], regionEntries = []] =
    await readGroups(store, [
      [{ prefix: keys.pools }],
      nodeReads.slice(0, 1),
      nodeReads.slice(1),
      byKey(floatingIps.map((ip) => keys.claim(ip))),
      byKey(regionCidrs.map((cidr) => keys.region(cidr))),
    ]);
  const pools = validPools(poolEntries);
  const regions = regionEntries.map((entry) => versioned<IpamRegion>(entry));
  const regionOf = new Map(regions.map((region) => [region.value.cidr, region.value]));
  // Every size: a block made before regions is listed nowhere, and its
  // pool's blockSize may have changed since.
  const holding = floatingIps.flatMap((ip) =>
    blockCidrsToRead(ip, regionOf.get(regionCidrOf(ip) ?? ""), pools, true),
  );
  const cidrs = [...new Set([...nodeBlockCidrs(affinities, borrowed), ...holding])];
  return {
    pools,
    blocks: await readBlocks(store, cidrs),
    claims: claimEntries.map((entry) => versioned<FloatingIpClaim>(entry)),
    regions,
  };
}

export async function listNodeBlocks(store: Store, node: string): Promise<Versioned<IpamBlock>[]> {
  const [affinities = [], borrowed = []] = await store.kv.readMany([
    { prefix: keys.nodeAffinities(node) },
    { prefix: keys.nodeBorrowed(node) },
  ]);
  return readBlocks(store, nodeBlockCidrs(affinities, borrowed));
}

export async function readBlocks(
  store: Store,
  cidrs: readonly string[],
): Promise<Versioned<IpamBlock>[]> {
  if (cidrs.length === 0) return [];
  const [entries = []] = await readGroups(store, [byKey(cidrs.map((cidr) => keys.block(cidr)))]);
  return entries.map((entry) => versioned<IpamBlock>(entry));
}

export async function readRegions(
  store: Store,
  cidrs: readonly string[],
): Promise<(Versioned<IpamRegion> | undefined)[]> {
  const results: KvEntry[][] = [];
  for (let start = 0; start < cidrs.length; start += MAX_TXN_OPS) {
    const part = cidrs.slice(start, start + MAX_TXN_OPS);
    results.push(...(await store.kv.readMany(byKey(part.map((cidr) => keys.region(cidr))))));
  }
  return results.map(([entry]) => entry && versioned<IpamRegion>(entry));
}

export async function readClaimedAddresses(
  store: Store,
  ips: readonly string[],
): Promise<string[]> {
  if (ips.length === 0) return [];
  const [entries = []] = await readGroups(store, [byKey(ips.map((ip) => keys.claim(ip)))]);
  const held = new Set(entries.map((entry) => entry.key));
  return ips.filter((ip) => held.has(keys.claim(ip)));
}
