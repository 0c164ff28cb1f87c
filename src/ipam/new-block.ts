// Where a new block can go, found from region records rather than from a
// list of every block (issue 14): a pool is walked region by region, in
// address order, and each region's record (ipam/region.ts) says which of its
// block CIDRs are free. A node creating a block reads the records of the
// regions up to the first with room, never the blocks. Pure.
import {
  enclosingPrefix,
  familyBits,
  formatPrefix,
  parsePrefix,
  prefixSize,
  type Prefix,
} from "../net/address.js";
import type { IpPool, IpamRegion } from "../model/records.js";
import { poolPrefix } from "./pool.js";
import { REGION_LENGTH } from "./region.js";

/** The CIDRs of the regions a pool spans, in address order, lazily (an IPv6 pool has very many). */
export function* poolRegionCidrs(pool: IpPool): Generator<string> {
  const prefix = poolPrefix(pool);
  const length = REGION_LENGTH[prefix.family];
  if (prefix.length >= length) {
    yield formatPrefix(enclosingPrefix({ family: prefix.family, value: prefix.base }, length));
    return;
  }
  const step = 1n << BigInt(familyBits(prefix.family) - length);
  const end = prefix.base + prefixSize(prefix);
  for (let base = prefix.base; base < end; base += step) {
    yield formatPrefix({ family: prefix.family, base, length });
  }
}

/**
 * The pool's block CIDRs inside one region that overlap no CIDR the region
 * lists, nor one of `taken` (blocks the caller knows of), in address order,
 * lazily. Linear in the region's candidates and its listed CIDRs.
 */
export function* freeBlockCidrs(
  pool: IpPool,
  region: IpamRegion,
  taken: readonly string[] = [],
): Generator<string> {
  const pooled = poolPrefix(pool);
  const regionPrefix = parsePrefix(region.cidr);
  if (!regionPrefix || regionPrefix.family !== pooled.family) return;
  // The region and the pool, whichever is narrower (a pool may be smaller than a region).
  const span: Prefix = pooled.length >= regionPrefix.length ? pooled : regionPrefix;
  const shift = BigInt(familyBits(span.family) - pool.blockSize);
  const count = Number(prefixSize(span) >> shift);
  const used = new Set<number>();
  for (const cidr of [...region.blocks, ...taken]) {
    const listed = parsePrefix(cidr);
    if (!listed || listed.family !== span.family) continue;
    // The candidates it covers: a range for a wider block, one for a narrower one.
    const first = (listed.base - span.base) >> shift;
    const last = (listed.base + prefixSize(listed) - 1n - span.base) >> shift;
    for (let index = first < 0n ? 0n : first; index <= last && index < BigInt(count); index++) {
      used.add(Number(index));
    }
  }
  for (let index = 0; index < count; index++) {
    if (used.has(index)) continue;
    yield formatPrefix({
      family: span.family,
      base: span.base + (BigInt(index) << shift),
      length: pool.blockSize,
    });
  }
}
