// One IPAM block: which addresses are taken and by whom. Pure: every change
// returns a new block for the caller to write with compare-and-swap.
import { formatAddress, parsePrefix, prefixSize } from "../net/address.js";
import type { AllocationOwner, IpamBlock } from "../model/records.js";

export function emptyBlock(cidr: string, affinity: string): IpamBlock {
  return { cidr, affinity, allocations: {} };
}

/** The lowest free address of the block that is not in `excluded`. */
export function findFreeAddress(
  block: IpamBlock,
  excluded: ReadonlySet<string>,
): string | undefined {
  const prefix = parsePrefix(block.cidr);
  if (!prefix) return undefined;
  const size = prefixSize(prefix);
  for (let offset = 0n; offset < size; offset++) {
    const ip = formatAddress({ family: prefix.family, value: prefix.base + offset });
    if (!(ip in block.allocations) && !excluded.has(ip)) return ip;
  }
  return undefined;
}

export function withAllocation(block: IpamBlock, ip: string, owner: AllocationOwner): IpamBlock {
  return { ...block, allocations: { ...block.allocations, [ip]: owner } };
}

export function withoutHandle(block: IpamBlock, handle: string): IpamBlock {
  const allocations = Object.fromEntries(
    Object.entries(block.allocations).filter(([, owner]) => owner.handle !== handle),
  );
  return { ...block, allocations };
}

export function addressesOfHandle(block: IpamBlock, handle: string): string[] {
  return Object.entries(block.allocations)
    .filter(([, owner]) => owner.handle === handle)
    .map(([ip]) => ip);
}

/** What to do with one block once some nodes have left the cluster. */
export interface DepartedRelease {
  cidr: string;
  /** Addresses given to pods on nodes that are gone. */
  released: string[];
  /** The departed node the block was affine to, if any: its affinity goes. */
  formerAffinity?: string;
  /** The block afterwards; undefined: delete it (no affinity and nothing allocated). */
  after?: IpamBlock;
}

/**
 * The blocks to change when nodes leave the cluster: every address given to
 * a pod on a node that is not `live` is released, and a block affine to such
 * a node loses its affinity (no node announces or routes it any more) and is
 * deleted once nothing in it is allocated; addresses lent to pods on live
 * nodes stay. Blocks with nothing to change are left out.
 */
export function planDepartedReleases(
  blocks: readonly IpamBlock[],
  live: ReadonlySet<string>,
): DepartedRelease[] {
  const plans: DepartedRelease[] = [];
  for (const block of blocks) {
    const gone = Object.entries(block.allocations).filter(([, owner]) => !live.has(owner.node));
    const orphaned = block.affinity !== "" && !live.has(block.affinity);
    if (gone.length === 0 && !orphaned) continue;
    const allocations = Object.fromEntries(
      Object.entries(block.allocations).filter(([, owner]) => live.has(owner.node)),
    );
    const affinity = orphaned ? "" : block.affinity;
    const empty = Object.keys(allocations).length === 0 && affinity === "";
    plans.push({
      cidr: block.cidr,
      released: gone.map(([ip]) => ip),
      ...(orphaned ? { formerAffinity: block.affinity } : {}),
      ...(empty ? {} : { after: { cidr: block.cidr, affinity, allocations } }),
    });
  }
  return plans;
}
