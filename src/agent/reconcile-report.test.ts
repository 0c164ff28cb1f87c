import { describe, expect, it } from "vitest";
import { storedPool } from "../ipam/pool.js";
import { ipamCounts } from "./reconcile-report.js";

const pool = (name: string, cidr: string) => storedPool(name, { cidr });

describe("ipamCounts", () => {
  it("counts this node's blocks and its pods' addresses per pool, every pool listed", () => {
    const pools = [
      pool("pods", "10.244.0.0/16"),
      pool("pods6", "fd00:244::/64"),
      pool("idle", "10.9.0.0/16"),
    ];
    const counts = ipamCounts(
      "node-1",
      [
        { cidr: "10.244.0.0/26", node: "node-1" },
        { cidr: "10.244.0.64/26", node: "node-1" },
        { cidr: "10.244.1.0/26", node: "node-2" },
        { cidr: "fd00:244::/122", node: "node-1" },
      ],
      [
        { node: "node-1", ipNetworks: ["10.244.0.5/32", "fd00:244::5/128"] },
        { node: "node-1", ipNetworks: ["10.244.0.66/32", "192.0.2.1/32"] },
        { node: "node-2", ipNetworks: ["10.244.1.5/32"] },
      ],
      pools,
    );
    expect(Object.fromEntries(counts)).toEqual({
      pods: { blocks: 2, addresses: 2 },
      pods6: { blocks: 1, addresses: 1 },
      idle: { blocks: 0, addresses: 0 },
    });
  });
});
