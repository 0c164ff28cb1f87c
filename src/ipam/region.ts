// Regions and blocks found by containment. Every block is at least as large
// as a region allows (blockSize 20..32, 116..128, Calico's bounds), so each
// block lies inside exactly one region: the /20 (IPv4) or /116 (IPv6) around
// it, and two blocks that overlap share a region. A region's record lists its
// blocks; a block is created only together with a change of that record, so
// a block overlapping another is never made, whatever a pool says now. Pure.
import {
  enclosingPrefix,
  formatPrefix,
  parseAddress,
  parsePrefix,
  prefixContains,
  prefixSize,
  type Address,
  type Family,
  type Prefix,
} from "../net/address.js";
import type { IpamBlock, IpamRegion, Versioned } from "../model/records.js";

/** The length of a region, and so the largest block (smallest blockSize) there can be. */
export const REGION_LENGTH: Readonly<Record<Family, number>> = { 4: 20, 6: 116 };

/** The region CIDR of an address or a block; undefined for text that is neither. */
export function regionCidrOf(addressOrCidr: string): string | undefined {
  const start = startOf(addressOrCidr);
  return start && formatPrefix(enclosingPrefix(start, REGION_LENGTH[start.family]));
}

/** The listed block CIDRs that hold `ip` (one, unless older records overlap). */
export function cidrsHolding(cidrs: readonly string[], ip: string): string[] {
  const address = parseAddress(ip);
  if (!address) return [];
  return cidrs.filter((cidr) => {
    const prefix = parsePrefix(cidr);
    return prefix !== undefined && prefixContains(prefix, address);
  });
}

/** A listed block CIDR, other than `cidr` itself, that overlaps `cidr`. */
export function overlappingCidr(cidrs: readonly string[], cidr: string): string | undefined {
  const prefix = parsePrefix(cidr);
  if (!prefix) return undefined;
  return cidrs.find((other) => {
    const otherPrefix = parsePrefix(other);
    return otherPrefix !== undefined && other !== cidr && overlaps(prefix, otherPrefix);
  });
}

export function emptyRegion(cidr: string): IpamRegion {
  return { cidr, blocks: [] };
}

export function withBlockCidr(region: IpamRegion, cidr: string): IpamRegion {
  if (region.blocks.includes(cidr)) return region;
  return { ...region, blocks: [...region.blocks, cidr].sort() };
}

export function withoutBlockCidr(region: IpamRegion, cidr: string): IpamRegion {
  return { ...region, blocks: region.blocks.filter((other) => other !== cidr) };
}

/**
 * The blocks a caller read, found by containment: the block holding an
 * address whatever its size, and whether a CIDR would overlap one. Each look
 * scans one region's blocks only.
 */
export class BlockIndex {
  readonly #byRegion = new Map<string, Versioned<IpamBlock>[]>();
  /**
   * Blocks wider than a region (an older buoy allowed a blockSize down to the
   * pool's prefix): they span several regions, so every look scans them too.
   */
  readonly #wide: Versioned<IpamBlock>[] = [];

  constructor(blocks: readonly Versioned<IpamBlock>[]) {
    for (const block of blocks) {
      const prefix = parsePrefix(block.value.cidr);
      if (prefix && prefix.length < REGION_LENGTH[prefix.family]) {
        this.#wide.push(block);
        continue;
      }
      const region = regionCidrOf(block.value.cidr);
      if (region === undefined) continue;
      const list = this.#byRegion.get(region);
      if (list) list.push(block);
      else this.#byRegion.set(region, [block]);
    }
  }

  /** The blocks holding `ip`: one, or none; more only if older records overlap. */
  holding(ip: string): Versioned<IpamBlock>[] {
    const blocks = this.#inRegionOf(ip);
    const held = new Set(
      cidrsHolding(
        blocks.map((block) => block.value.cidr),
        ip,
      ),
    );
    return blocks.filter((block) => held.has(block.value.cidr));
  }

  /** Whether `cidr` overlaps a block other than itself. */
  overlaps(cidr: string): boolean {
    return this.#overlapping(cidr).length > 0;
  }

  /** The addresses allocated in other blocks that overlap the block `cidr` (older records). */
  allocatedInOverlapping(cidr: string): string[] {
    return this.#overlapping(cidr).flatMap((block) => Object.keys(block.value.allocations));
  }

  #overlapping(cidr: string): Versioned<IpamBlock>[] {
    const blocks = this.#inRegionOf(cidr);
    const prefix = parsePrefix(cidr);
    if (!prefix) return [];
    return blocks.filter((block) => {
      const other = parsePrefix(block.value.cidr);
      return other !== undefined && block.value.cidr !== cidr && overlaps(prefix, other);
    });
  }

  /** The blocks of the region of an address or CIDR, and every block wider than a region. */
  #inRegionOf(addressOrCidr: string): Versioned<IpamBlock>[] {
    const region = regionCidrOf(addressOrCidr);
    const blocks = (region && this.#byRegion.get(region)) || [];
    return this.#wide.length === 0 ? blocks : [...blocks, ...this.#wide];
  }
}

function startOf(addressOrCidr: string): Address | undefined {
  const prefix = addressOrCidr.includes("/") ? parsePrefix(addressOrCidr) : undefined;
  if (prefix) return { family: prefix.family, value: prefix.base };
  return parseAddress(addressOrCidr);
}

function overlaps(a: Prefix, b: Prefix): boolean {
  return (
    a.family === b.family && a.base < b.base + prefixSize(b) && b.base < a.base + prefixSize(a)
  );
}
