// planRouting() in vxlan mode: which routes go through the tunnel, as each
// pool's vxlanMode says, and the devices and peers they need.
import { describe, expect, it } from "vitest";
import type { IpPool, NodeRecord } from "../model/records.js";
import { planRouting, type RoutingInput } from "./routing-plan.js";
import { vtepMac } from "./vxlan.js";

const pool = (name: string, cidr: string, extra: Partial<IpPool> = {}): IpPool => ({
  name,
  cidr,
  blockSize: cidr.includes(":") ? 122 : 26,
  disabled: false,
  nodeSelector: "all()",
  natOutgoing: false,
  disableBGPExport: false,
  ...extra,
});

const NODES: NodeRecord[] = [
  { name: "node-1", addresses: ["192.168.201.11", "fd00:201::11"] },
  { name: "node-2", addresses: ["192.168.202.12", "fd00:202::12"] },
  { name: "node-3", addresses: ["192.168.201.13"] },
];

const input = (extra: Partial<RoutingInput> = {}): RoutingInput => ({
  node: "node-1",
  mode: "vxlan",
  bindings: [{ family: 4, floating: "203.0.113.10", hostIfname: "calia" }],
  nodes: NODES,
  blocks: [
    { cidr: "10.244.0.0/26", affinity: "node-1" },
    { cidr: "10.244.0.64/26", affinity: "node-2" },
    { cidr: "10.244.0.128/26", affinity: "node-3" },
    { cidr: "fd00:244::40/122", affinity: "node-2" },
  ],
  borrowed: [{ ip: "10.244.0.5", node: "node-3" }],
  hosted: [
    { ip: "203.0.113.10", node: "node-1" },
    { ip: "203.0.113.11", node: "node-2" },
  ],
  pools: [
    pool("pods", "10.244.0.0/16"),
    pool("pods6", "fd00:244::/64"),
    pool("floating", "203.0.113.0/24", { disabled: true }),
  ],
  peers: [],
  subnets: ["192.168.201.0/24", "fd00:201::/64"],
  ...extra,
});

const tunnel = (dst: string, via: string) => ({
  family: dst.includes(":") ? 6 : 4,
  dst,
  via,
  dev: dst.includes(":") ? "vxlan6.buoy" : "vxlan.buoy",
  onlink: true,
});

describe("planRouting() in vxlan mode", () => {
  it("tunnels every other node's blocks, borrowed addresses and floating IPs; own blocks blackholed", () => {
    const plan = planRouting(input());
    expect(plan.routes).toEqual([
      { family: 4, dst: "10.244.0.0/26", blackhole: true },
      tunnel("10.244.0.128/26", "192.168.201.13"),
      tunnel("10.244.0.5/32", "192.168.201.13"),
      tunnel("10.244.0.64/26", "192.168.202.12"),
      { family: 4, dst: "203.0.113.10/32", dev: "calia" },
      tunnel("203.0.113.11/32", "192.168.202.12"),
      tunnel("fd00:244::40/122", "fd00:202::12"),
    ]);
    expect(plan.vxlan).toEqual({
      devices: [
        {
          family: 4,
          name: "vxlan.buoy",
          vni: 4100,
          port: 4789,
          local: "192.168.201.11",
          mac: vtepMac("node-1", 4),
        },
        {
          family: 6,
          name: "vxlan6.buoy",
          vni: 6100,
          port: 4789,
          local: "fd00:201::11",
          mac: vtepMac("node-1", 6),
        },
      ],
      peers: [
        { family: 4, address: "192.168.201.13", mac: vtepMac("node-3", 4) },
        { family: 4, address: "192.168.202.12", mac: vtepMac("node-2", 4) },
        { family: 6, address: "fd00:202::12", mac: vtepMac("node-2", 6) },
      ],
    });
    expect(plan.problems).toEqual([]);
    expect(plan.refused).toEqual([]);
  });

  it("CrossSubnet tunnels only to nodes outside this node's subnets; Never routes direct", () => {
    const plan = planRouting(
      input({
        pools: [
          pool("pods", "10.244.0.0/16", { vxlanMode: "CrossSubnet" }),
          pool("pods6", "fd00:244::/64", { vxlanMode: "Never" }),
          pool("floating", "203.0.113.0/24", { disabled: true, vxlanMode: "CrossSubnet" }),
        ],
      }),
    );
    expect(plan.routes).toEqual([
      { family: 4, dst: "10.244.0.0/26", blackhole: true },
      { family: 4, dst: "10.244.0.128/26", via: "192.168.201.13" },
      { family: 4, dst: "10.244.0.5/32", via: "192.168.201.13" },
      tunnel("10.244.0.64/26", "192.168.202.12"),
      { family: 4, dst: "203.0.113.10/32", dev: "calia" },
      tunnel("203.0.113.11/32", "192.168.202.12"),
      { family: 6, dst: "fd00:244::40/122", via: "fd00:202::12" },
    ]);
    // Peers only for the nodes a route goes through the tunnel to.
    expect(plan.vxlan?.peers).toEqual([
      { family: 4, address: "192.168.202.12", mac: vtepMac("node-2", 4) },
    ]);
  });

  it("a node that gives another's address, or one no packet may go to, gets nothing tunnelled", () => {
    const plan = planRouting(
      input({
        nodes: [
          ...NODES,
          { name: "node-0", addresses: ["192.168.202.12"] },
          { name: "node-4", addresses: ["224.0.0.5"] },
          { name: "node-5", addresses: ["192.168.201.11"] },
        ],
        blocks: [
          { cidr: "10.244.0.64/26", affinity: "node-2" },
          { cidr: "10.244.1.0/26", affinity: "node-4" },
          { cidr: "10.244.1.64/26", affinity: "node-5" },
        ],
        borrowed: [],
        hosted: [],
      }),
    );
    // node-0 sorts first: node-2's address is its tunnel endpoint, not node-2's.
    expect(plan.routes).toEqual([{ family: 4, dst: "203.0.113.10/32", dev: "calia" }]);
    expect(plan.refused).toEqual([
      { item: "node-2", reason: "duplicate tunnel endpoint" },
      { item: "node-4", reason: "unusable tunnel endpoint" },
      { item: "node-5", reason: "duplicate tunnel endpoint" },
    ]);
    expect(plan.problems).toEqual([
      "node node-2: its address 192.168.202.12 is node-0's too; nothing is tunnelled to it",
      "node node-4: its address 224.0.0.5 is multicast, not a tunnel endpoint; nothing is tunnelled to it",
      "node node-5: its address 192.168.201.11 is node-1's too; nothing is tunnelled to it",
    ]);
    expect(plan.vxlan?.peers).toEqual([]);
  });

  it("without an address of a family of its own, the node tunnels nothing of it and says why once", () => {
    const plan = planRouting(
      input({ nodes: [{ name: "node-1", addresses: ["192.168.201.11"] }, ...NODES.slice(1)] }),
    );
    expect(plan.vxlan?.devices.map((device) => device.family)).toEqual([4]);
    expect(plan.routes.filter((route) => route.family === 6)).toEqual([]);
    expect(plan.problems).toEqual([
      "node node-1 has no IPv6 address in its Node record: VXLAN needs one as its tunnel endpoint",
    ]);
  });

  it("derives each node's MAC from its name: unicast, locally administered, distinct", () => {
    const macs = ["node-1", "node-2", "node-3"].flatMap((node) => [
      vtepMac(node, 4),
      vtepMac(node, 6),
    ]);
    expect(new Set(macs).size).toBe(6);
    for (const mac of macs) {
      expect(mac).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
      expect(parseInt(mac.slice(0, 2), 16) & 0x03).toBe(0x02);
    }
    expect(vtepMac("node-1", 4)).toBe(vtepMac("node-1", 4));
  });
});
