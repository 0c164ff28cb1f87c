// The claim checks of ADD and of a live change: a floating IP may not be held
// by another pod, nor be a pod's own address. Pure: the caller hands in what it
// read (a ClaimLookup), and each datastore makes the check binding in its own
// way (etcd: compares in one transaction, ADR 0002; Kubernetes: create if absent).
import type { AllocationSnapshot } from "../datastore/datastore.js";
import type {
  AllocationOwner,
  FloatingIpClaim,
  IpPool,
  IpamBlock,
  IpamRegion,
  Versioned,
} from "../model/records.js";
import { BlockIndex, cidrsHolding, REGION_LENGTH } from "../ipam/region.js";
import { poolPrefix } from "../ipam/pool.js";
import {
  enclosingPrefix,
  familyBits,
  formatPrefix,
  parseAddress,
  prefixContains,
} from "../net/address.js";
import { checkClaimConflict } from "./validate.js";

export interface ClaimHolder {
  namespace: string;
  pod: string;
  containerID: string;
  node: string;
}

/**
 * The records the claim checks look at: the claim of an IP and the blocks
 * holding it, found by containment (ipam/region.ts), never from a pool's
 * current blockSize.
 */
export interface ClaimLookup {
  claim(ip: string): Versioned<FloatingIpClaim> | undefined;
  blocksHolding(ip: string): Versioned<IpamBlock>[];
}

export function snapshotLookup(snapshot: AllocationSnapshot): ClaimLookup {
  const claims = new Map(snapshot.claims.map((claim) => [claim.value.ip, claim]));
  const blocks = new BlockIndex(snapshot.blocks);
  return { claim: (ip) => claims.get(ip), blocksHolding: (ip) => blocks.holding(ip) };
}

/** Throws FloatingIpError when any floating IP is held by another pod or is a pod's own address. */
export function checkClaims(
  floatingIps: readonly string[],
  holder: ClaimHolder,
  lookup: ClaimLookup,
): void {
  for (const externalIP of floatingIps) {
    checkClaimConflict(
      externalIP,
      holder,
      lookup.claim(externalIP)?.value,
      podAllocation(
        lookup.blocksHolding(externalIP).map((block) => block.value),
        externalIP,
      ),
    );
  }
}

/**
 * The CIDRs of the blocks that may hold `ip`, to read: those its region
 * lists, and, for blocks made before regions (listed nowhere), the block of
 * each pool holding it at the pool's blockSize, or, with `everySize`, the
 * prefix around it at every block size there can be (13, more for an older
 * block as wide as its pool: a pool's blockSize may have changed since).
 */
export function blockCidrsToRead(
  ip: string,
  region: IpamRegion | undefined,
  pools: readonly IpPool[],
  everySize = false,
): string[] {
  const address = parseAddress(ip);
  if (!address) return [];
  const holding = pools.filter((pool) => prefixContains(poolPrefix(pool), address));
  // An older buoy let a block be as wide as its pool: from there on.
  const widest = Math.min(
    REGION_LENGTH[address.family],
    ...holding.map((pool) => poolPrefix(pool).length),
  );
  const lengths = everySize
    ? Array.from({ length: familyBits(address.family) - widest + 1 }, (_, i) => widest + i)
    : holding.map((pool) => pool.blockSize);
  const legacy = lengths.map((length) => formatPrefix(enclosingPrefix(address, length)));
  return [...new Set([...cidrsHolding(region?.blocks ?? [], ip), ...legacy])];
}

/** The pod the address is allocated to, in any block holding it. */
export function podAllocation(
  blocks: readonly IpamBlock[],
  ip: string,
): AllocationOwner | undefined {
  return blocks.find((block) => block.allocations[ip])?.allocations[ip];
}
