// One IPAM block: which addresses are taken and by whom. Pure: every change
// returns a new block for the caller to write with compare-and-swap.
import { formatAddress, parsePrefix, prefixSize } from "../net/address.js";
import type { AllocationOwner, IpamBlock } from "../datastore/model.js";

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
