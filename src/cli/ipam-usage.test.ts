import { describe, expect, it } from "vitest";
import { storedPool } from "../ipam/pool.js";
import { ipamUsage, ipamUsageJson, renderIpamUsage } from "./ipam-usage.js";

const pools = [
  storedPool("pods", { cidr: "10.244.0.0/16" }),
  storedPool("floating", { cidr: "10.96.0.0/24", disabled: true }),
  storedPool("pods6", { cidr: "fd00:244::/64" }),
];
const owner = { handle: "h", node: "node-1" };
const blocks = [
  { cidr: "10.244.0.64/26", affinity: "node-2", allocations: { "10.244.0.65": owner } },
  {
    cidr: "10.244.0.0/26",
    affinity: "node-1",
    allocations: { "10.244.0.1": owner, "10.244.0.2": owner },
  },
  { cidr: "10.9.0.0/26", affinity: "", allocations: { "10.9.0.1": owner } },
];
const claims = [{ ip: "10.96.0.10" }, { ip: "10.96.0.11" }, { ip: "192.0.2.1" }];

describe("ipam show", () => {
  it("counts pod addresses per pool and block, floating IPs per pool, and what lies in no pool", () => {
    const usage = ipamUsage(pools, blocks, claims);
    expect(usage.map((pool) => [pool.name, pool.pods, pool.floating, pool.blocks.length])).toEqual([
      ["floating", 0, 2, 0],
      ["pods", 3, 0, 2],
      ["pods6", 0, 0, 0],
      [undefined, 1, 1, 1],
    ]);
    expect(renderIpamUsage(usage, true)).toBe(
      [
        "GROUPING          CIDR            IPS TOTAL             IPS IN USE  IPS FREE                     FLOATING",
        "IP pool floating  10.96.0.0/24    256                   2 (0%)      254 (99%)                    2",
        "IP pool pods      10.244.0.0/16   65536                 3 (0%)      65533 (99%)                  0",
        "  block (node-1)  10.244.0.0/26   64                    2 (3%)      62 (96%)",
        "  block (node-2)  10.244.0.64/26  64                    1 (1%)      63 (98%)",
        "IP pool pods6     fd00:244::/64   18446744073709551616  0 (0%)      18446744073709551616 (100%)  0",
        "no pool                           0                     2                                        1",
        "  block           10.9.0.0/26     64                    1 (1%)      63 (98%)",
        "",
      ].join("\n"),
    );
    expect(renderIpamUsage(usage, false)).not.toContain("block");
    expect(JSON.parse(ipamUsageJson(usage))[2]).toEqual({
      pool: "pods6",
      cidr: "fd00:244::/64",
      total: "18446744073709551616",
      podAddresses: 0,
      floatingIps: 0,
      blocks: [],
    });
  });
});
