// `buoy ipam show` (calicoctl's): per IP pool, how many addresses it has,
// how many pods hold (block allocations) and how many floating IPs are held
// in it (claims), and with --show-blocks each block's. Blocks and claims
// belong to the pool that contains them; those in none are listed as such.
// Pure: records in, rows out.
import { formatPrefix } from "../net/address.js";
import { poolPrefix } from "../ipam/pool.js";
import { findPool } from "../floating/validate.js";
import { parsePrefix, prefixSize } from "../net/address.js";
import type { FloatingIpClaim, IpPool, IpamBlock } from "../model/records.js";
import { renderTable } from "../text/table.js";

export interface BlockUsage {
  cidr: string;
  affinity: string;
  total: bigint;
  pods: number;
}

export interface PoolUsage {
  /** The pool's name, or undefined for blocks and claims in no pool. */
  name: string | undefined;
  cidr: string;
  total: bigint;
  /** Addresses allocated to pods (in its blocks). */
  pods: number;
  /** Floating IPs held in it (claims). */
  floating: number;
  blocks: BlockUsage[];
}

export function ipamUsage(
  pools: readonly IpPool[],
  blocks: readonly IpamBlock[],
  claims: readonly Pick<FloatingIpClaim, "ip">[],
): PoolUsage[] {
  const usage = new Map<string, PoolUsage>();
  const of = (pool: IpPool | undefined): PoolUsage => {
    const key = pool?.name ?? "";
    let entry = usage.get(key);
    if (!entry) {
      entry = pool
        ? {
            name: pool.name,
            cidr: formatPrefix(poolPrefix(pool)),
            total: prefixSize(poolPrefix(pool)),
            pods: 0,
            floating: 0,
            blocks: [],
          }
        : { name: undefined, cidr: "", total: 0n, pods: 0, floating: 0, blocks: [] };
      usage.set(key, entry);
    }
    return entry;
  };
  for (const pool of pools) of(pool);
  for (const block of blocks) {
    const prefix = parsePrefix(block.cidr);
    const entry = of(findPool(block.cidr.split("/")[0] ?? "", pools));
    const pods = Object.keys(block.allocations).length;
    entry.pods += pods;
    entry.blocks.push({
      cidr: block.cidr,
      affinity: block.affinity,
      total: prefix ? prefixSize(prefix) : 0n,
      pods,
    });
  }
  for (const claim of claims) of(findPool(claim.ip, pools)).floating += 1;
  const sorted = [...usage.values()].sort((a, b) =>
    a.name === undefined ? 1 : b.name === undefined ? -1 : a.name.localeCompare(b.name),
  );
  for (const entry of sorted) entry.blocks.sort((a, b) => a.cidr.localeCompare(b.cidr));
  return sorted;
}

/** calicoctl's table: GROUPING, CIDR, IPS TOTAL, IPS IN USE, IPS FREE (percentages of the total). */
export function renderIpamUsage(usage: readonly PoolUsage[], showBlocks: boolean): string {
  const share = (part: bigint, total: bigint) =>
    total === 0n ? "" : ` (${((part * 100n) / total).toString()}%)`;
  const rows: string[][] = [];
  for (const pool of usage) {
    const used = BigInt(pool.pods + pool.floating);
    rows.push([
      pool.name === undefined ? "no pool" : `IP pool ${pool.name}`,
      pool.cidr,
      pool.total.toString(),
      `${used}${share(used, pool.total)}`,
      pool.name === undefined ? "" : `${pool.total - used}${share(pool.total - used, pool.total)}`,
      String(pool.floating),
    ]);
    if (!showBlocks) continue;
    for (const block of pool.blocks) {
      const used = BigInt(block.pods);
      rows.push([
        `  block${block.affinity ? ` (${block.affinity})` : ""}`,
        block.cidr,
        block.total.toString(),
        `${used}${share(used, block.total)}`,
        `${block.total - used}${share(block.total - used, block.total)}`,
        "",
      ]);
    }
  }
  return renderTable(["GROUPING", "CIDR", "IPS TOTAL", "IPS IN USE", "IPS FREE", "FLOATING"], rows);
}

/** The same as JSON (totals as strings: an IPv6 pool's exceed a number). */
export function ipamUsageJson(usage: readonly PoolUsage[]): string {
  return (
    JSON.stringify(
      usage.map((pool) => ({
        ...(pool.name !== undefined ? { pool: pool.name, cidr: pool.cidr } : { pool: null }),
        total: pool.total.toString(),
        podAddresses: pool.pods,
        floatingIps: pool.floating,
        blocks: pool.blocks.map((block) => ({ ...block, total: block.total.toString() })),
      })),
      null,
      2,
    ) + "\n"
  );
}
