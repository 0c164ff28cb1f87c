// The claim checks of ADD and of a live change: a floating IP may not be held
// by another pod, nor be a pod's own address. Pure: the caller hands in what it
// read (a ClaimLookup), and each datastore makes the check binding in its own
// way (etcd: compares in one transaction, ADR 0002; Kubernetes: create if absent).
import type { AllocationSnapshot } from "../datastore/datastore.js";
import type { FloatingIpClaim, IpPool, IpamBlock, Versioned } from "../model/records.js";
import { blockCidrFor } from "../ipam/pool.js";
import { checkClaimConflict, findPool } from "./validate.js";

export interface ClaimHolder {
  namespace: string;
  pod: string;
  containerID: string;
  node: string;
}

/** The records the claim checks look at: the claim of an IP and the block holding it. */
export interface ClaimLookup {
  claim(ip: string): Versioned<FloatingIpClaim> | undefined;
  block(cidr: string): Versioned<IpamBlock> | undefined;
}

export function snapshotLookup(snapshot: AllocationSnapshot): ClaimLookup {
  const claims = new Map(snapshot.claims.map((claim) => [claim.value.ip, claim]));
  const blocks = new Map(snapshot.blocks.map((block) => [block.value.cidr, block]));
  return { claim: (ip) => claims.get(ip), block: (cidr) => blocks.get(cidr) };
}

/** Throws FloatingIpError when any floating IP is held by another pod or is a pod's own address. */
export function checkClaims(
  pools: readonly IpPool[],
  floatingIps: readonly string[],
  holder: ClaimHolder,
  lookup: ClaimLookup,
): void {
  for (const externalIP of floatingIps) {
    const blockCidr = blockCidrOf(externalIP, pools);
    checkClaimConflict(
      externalIP,
      holder,
      lookup.claim(externalIP)?.value,
      blockCidr ? lookup.block(blockCidr)?.value.allocations[externalIP] : undefined,
    );
  }
}

/** The block CIDR that holds `ip`, if a pool holds it. */
export function blockCidrOf(ip: string, pools: readonly IpPool[]): string | undefined {
  const pool = findPool(ip, pools);
  return pool && blockCidrFor(pool, ip);
}
