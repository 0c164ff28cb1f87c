// What of an IP pool is in use: its blocks (with and without allocations) and
// the floating-IP claims inside it. Pure.
import type { FloatingIpClaim, IpPool, IpamBlock, Versioned } from "../model/records.js";
import { poolPrefix } from "../ipam/pool.js";
import { CliError } from "./cli-error.js";
import { parseAddress, parsePrefix, prefixContains, type Prefix } from "../net/address.js";

export interface PoolUsage {
  /** Blocks inside the pool that hold at least one address. */
  usedBlocks: Versioned<IpamBlock>[];
  /** Blocks inside the pool that hold nothing: safe to delete with it. */
  emptyBlocks: Versioned<IpamBlock>[];
  /** Addresses allocated in the pool's blocks. */
  allocatedCount: number;
  /** Floating-IP claims whose IP lies in the pool. */
  claims: Versioned<FloatingIpClaim>[];
}

export function poolUsage(
  pool: IpPool,
  blocks: readonly Versioned<IpamBlock>[],
  claims: readonly Versioned<FloatingIpClaim>[],
): PoolUsage {
  const prefix = poolPrefix(pool);
  const inPool = blocks.filter((block) => blockInPrefix(block.value.cidr, prefix));
  const usedBlocks = inPool.filter((block) => Object.keys(block.value.allocations).length > 0);
  return {
    usedBlocks,
    emptyBlocks: inPool.filter((block) => !usedBlocks.includes(block)),
    allocatedCount: usedBlocks.reduce(
      (sum, block) => sum + Object.keys(block.value.allocations).length,
      0,
    ),
    claims: claims.filter((claim) => ipInPrefix(claim.value.ip, prefix)),
  };
}

/** A pool is deleted only when no address is allocated in its blocks and no floating IP inside it is claimed. */
export function refuseDeleteInUse(pool: IpPool, usage: PoolUsage): void {
  if (usage.allocatedCount > 0 || usage.claims.length > 0) {
    throw new CliError(
      `cannot delete IP pool ${pool.name} (${pool.cidr}): ` +
        `${usage.allocatedCount} address(es) are allocated in ${usage.usedBlocks.length} block(s) ` +
        `and ${usage.claims.length} floating IP(s) are claimed inside it`,
    );
  }
}

export function ipInPrefix(ip: string, prefix: Prefix): boolean {
  const address = parseAddress(ip);
  return address !== undefined && prefixContains(prefix, address);
}

function blockInPrefix(cidr: string, prefix: Prefix): boolean {
  const block = parsePrefix(cidr);
  return block !== undefined && prefixContains(prefix, { family: block.family, value: block.base });
}
