// Whether a pool may be written next to the pools that exist: no two pools
// share an address, and a pool whose blocks hold addresses keeps its cidr and
// blockSize (its blocks were carved for them). One rule for `buoy apply`
// (etcd) and the admission webhook (Kubernetes). Pure.
import type { IpPool, IpamBlock } from "../model/records.js";
import { parsePrefix, prefixContains, type Prefix } from "../net/address.js";
import { poolPrefix } from "./pool.js";

/** What of the pool, as it is now, holds addresses: used blocks and allocated addresses. */
export interface PoolAllocations {
  blocks: number;
  addresses: number;
}

export const NO_ALLOCATIONS: PoolAllocations = { blocks: 0, addresses: 0 };

/**
 * The refusal for writing `next`, or undefined when it may be written.
 * `pools` are the other pools as they will be (a pool named like `next` is
 * skipped); `previous` is the stored pool of that name, if any, and
 * `allocations` what its blocks hold.
 */
export function validatePoolChange(
  next: IpPool,
  pools: readonly IpPool[],
  previous: IpPool | undefined,
  allocations: PoolAllocations,
): string | undefined {
  const prefix = poolPrefix(next);
  const other = pools.find(
    (candidate) =>
      candidate.name !== next.name && prefixesOverlap(prefix, parsePrefix(candidate.cidr)),
  );
  if (other) {
    return `IP pool ${next.name} (${next.cidr}) overlaps IP pool ${other.name} (${other.cidr})`;
  }
  if (!previous || allocations.blocks === 0) return undefined;
  const changes = [
    ...(previous.cidr !== next.cidr ? [`cidr ${previous.cidr} -> ${next.cidr}`] : []),
    ...(previous.blockSize !== next.blockSize
      ? [`blockSize ${previous.blockSize} -> ${next.blockSize}`]
      : []),
  ];
  if (changes.length === 0) return undefined;
  return (
    `cannot change ${changes.join(" and ")} of IP pool ${next.name}: ` +
    `${allocations.addresses} address(es) are allocated in ${allocations.blocks} of its block(s)`
  );
}

/** What the blocks inside the pool's cidr hold. */
export function poolAllocations(pool: IpPool, blocks: readonly IpamBlock[]): PoolAllocations {
  const prefix = poolPrefix(pool);
  let used = 0;
  let addresses = 0;
  for (const block of blocks) {
    const cidr = parsePrefix(block.cidr);
    if (!cidr || !prefixesOverlap(prefix, cidr)) continue;
    const count = Object.keys(block.allocations).length;
    if (count > 0) used++;
    addresses += count;
  }
  return { blocks: used, addresses };
}

/** Whether two prefixes share any address (an unparsable one shares none). */
export function prefixesOverlap(a: Prefix, b: Prefix | undefined): boolean {
  return (
    b !== undefined &&
    a.family === b.family &&
    (prefixContains(a, { family: b.family, value: b.base }) ||
      prefixContains(b, { family: a.family, value: a.base }))
  );
}
