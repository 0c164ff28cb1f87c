import { describe, expect, it } from "vitest";
import type { IpPool } from "../model/records.js";
import { renderBirdNodeConfig } from "./bird-config.js";
import { routeKey } from "./node-routes.js";
import { planRouting, type RoutingInput, type RoutingPlan } from "./routing-plan.js";

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

const input = (mode: RoutingInput["mode"], extra: Partial<RoutingInput> = {}): RoutingInput => ({
  node: "node-1",
  mode,
  bindings: [{ family: 4, floating: "203.0.113.10", hostIfname: "calia" }],
  nodes: [
    { name: "node-1", addresses: ["192.168.200.11", "fd00:200::11"] },
    { name: "node-2", addresses: ["192.168.200.12", "fd00:200::12"], asNumber: 64600 },
  ],
  blocks: [
    { cidr: "10.244.0.0/26", affinity: "node-1" },
    { cidr: "10.244.0.64/26", affinity: "node-2" },
    { cidr: "fd00:244::40/122", affinity: "node-2" },
    { cidr: "10.244.0.128/26", affinity: "" },
  ],
  hosted: [
    { ip: "203.0.113.10", node: "node-1" },
    { ip: "203.0.113.11", node: "node-2" },
    { ip: "2001:db8:f100::5", node: "node-2" },
  ],
  pools: [
    pool("pods", "10.244.0.0/16"),
    pool("pods6", "fd00:244::/64"),
    pool("floating", "203.0.113.0/24", { disabled: true }),
    pool("private", "198.51.100.0/24", { disableBGPExport: true }),
  ],
  peers: [
    { name: "tor", peerIP: "192.168.200.254", asNumber: 64513 },
    { name: "elsewhere", peerIP: "192.168.200.253", asNumber: 64514, node: "node-2" },
  ],
  ...extra,
});

describe("planRouting()", () => {
  it("none: only the routes of floating IPs hosted here, to the pod's interface", () => {
    expect(planRouting(input("none"))).toEqual({
      routes: [{ family: 4, dst: "203.0.113.10/32", dev: "calia" }],
      problems: [],
      refused: [],
    });
  });

  it("direct: other nodes' blocks and floating IPs via their address, own blocks blackholed", () => {
    const plan = planRouting(input("direct"));
    expect(plan.routes).toEqual([
      { family: 4, dst: "10.244.0.0/26", blackhole: true },
      { family: 4, dst: "10.244.0.64/26", via: "192.168.200.12" },
      { family: 4, dst: "203.0.113.10/32", dev: "calia" },
      { family: 4, dst: "203.0.113.11/32", via: "192.168.200.12" },
      { family: 6, dst: "2001:db8:f100::5/128", via: "fd00:200::12" },
      { family: 6, dst: "fd00:244::40/122", via: "fd00:200::12" },
    ]);
    expect(plan.bird).toBeUndefined();
    expect(plan.problems).toEqual([]);
  });

  it("direct: a floating IP reported by two other nodes mid-move is routed to one of them", () => {
    const plan = planRouting(
      input("direct", {
        nodes: [...input("direct").nodes, { name: "node-3", addresses: ["192.168.200.13"] }],
        hosted: [
          { ip: "203.0.113.11", node: "node-3" },
          { ip: "203.0.113.11", node: "node-2" },
        ],
      }),
    );
    expect(plan.routes.filter((route) => route.dst === "203.0.113.11/32")).toEqual([
      { family: 4, dst: "203.0.113.11/32", via: "192.168.200.12" },
    ]);
  });

  it("direct: a node without an address of the family is reported, not routed", () => {
    const plan = planRouting(
      input("direct", { nodes: [{ name: "node-2", addresses: ["192.168.200.12"] }] }),
    );
    expect(plan.problems).toEqual([
      "block fd00:244::40/122: node node-2 has no IPv6 address",
      "floating IP 2001:db8:f100::5: node node-2 has no IPv6 address",
    ]);
    expect(plan.routes.some((route) => route.family === 6)).toBe(false);
  });

  it("bgp: BIRD announces own blocks and floating IPs to the other nodes and this node's peers", () => {
    const plan = planRouting(input("bgp"));
    expect(plan.routes).toEqual([
      { family: 4, dst: "10.244.0.0/26", blackhole: true },
      { family: 4, dst: "203.0.113.10/32", dev: "calia" },
    ]);
    expect(plan.bird).toEqual({
      routerId: "192.168.200.11",
      asNumber: 64512,
      neighbors: [
        { name: "node-2_192.168.200.12", address: "192.168.200.12", asNumber: 64600 },
        { name: "node-2_fd00:200::12", address: "fd00:200::12", asNumber: 64600 },
        { name: "peer_tor", address: "192.168.200.254", asNumber: 64513 },
      ],
      exports: ["10.244.0.0/26", "203.0.113.10/32"],
    });
  });

  it("direct: a block or borrowed address in no pool is never routed (a planted record cannot take host traffic)", () => {
    const base = input("direct");
    const plan = planRouting({
      ...base,
      blocks: [...base.blocks, { cidr: "0.0.0.0/1", affinity: "node-2" }],
      borrowed: [{ ip: "169.254.169.254", node: "node-2" }],
    });
    expect(plan.routes.some((route) => route.dst === "0.0.0.0/1")).toBe(false);
    expect(plan.routes.some((route) => route.dst === "169.254.169.254/32")).toBe(false);
    expect(plan.refused).toEqual(
      expect.arrayContaining([
        { item: "0.0.0.0/1", reason: "outside every pool" },
        { item: "169.254.169.254", reason: "outside every pool" },
      ]),
    );
  });

  it("bgp: --as-number is the AS of every node whose record names none, this one too", () => {
    const plan = planRouting(
      input("bgp", {
        defaultAsNumber: 65010,
        nodes: [
          { name: "node-1", addresses: ["192.168.200.11"] },
          { name: "node-2", addresses: ["192.168.200.12"] },
          { name: "node-3", addresses: ["192.168.200.13"], asNumber: 64600 },
        ],
        peers: [],
      }),
    );
    expect(plan.bird?.asNumber).toBe(65010);
    expect(plan.bird?.neighbors.map((neighbor) => neighbor.asNumber)).toEqual([65010, 64600]);
  });

  it("bgp: a neighbor address given twice or at this node's own address is reported and skipped", () => {
    const plan = planRouting(
      input("bgp", {
        nodes: [
          { name: "node-1", addresses: ["192.168.200.11"] },
          { name: "node-2", addresses: ["192.168.200.12", "192.168.200.12"] },
        ],
        peers: [
          { name: "self", peerIP: "192.168.200.11", asNumber: 64513 },
          { name: "tor", peerIP: "192.168.200.254", asNumber: 64513 },
          { name: "tor-again", peerIP: "192.168.200.254", asNumber: 64513 },
        ],
      }),
    );
    expect(plan.bird?.neighbors.map((neighbor) => neighbor.name)).toEqual([
      "node-2_192.168.200.12",
      "peer_tor",
    ]);
    expect(plan.problems).toEqual([
      "BGP neighbor node-2_192.168.200.12: 192.168.200.12 is already node-2_192.168.200.12's",
      "BGP neighbor peer_self: 192.168.200.11 is this node's own address",
      "BGP neighbor peer_tor-again: 192.168.200.254 is already peer_tor's",
    ]);
  });

  it("an address borrowed from another node's block is routed to its pod's node as a /32", () => {
    const borrowed = [
      { ip: "10.244.0.70", node: "node-1" }, // from node-2's block, for a pod on node-1
      { ip: "10.244.0.10", node: "node-2" }, // from node-1's block, for a pod on node-2
    ];
    const direct = planRouting(input("direct", { borrowed }));
    expect(direct.routes).toContainEqual({
      family: 4,
      dst: "10.244.0.10/32",
      via: "192.168.200.12",
    });
    expect(direct.routes.some((route) => route.dst === "10.244.0.70/32")).toBe(false);
    const bgp = planRouting(input("bgp", { borrowed }));
    expect(bgp.bird?.exports).toContain("10.244.0.70/32");
    expect(bgp.bird?.exports).not.toContain("10.244.0.10/32");
  });

  it("a block of one address gets no blackhole: it would replace the pod's own route", () => {
    const plan = planRouting(
      input("direct", { blocks: [{ cidr: "10.244.9.5/32", affinity: "node-1" }], hosted: [] }),
    );
    expect(plan.routes).toEqual([{ family: 4, dst: "203.0.113.10/32", dev: "calia" }]);
  });

  it("bgp: a floating IP in a pool with disableBGPExport is programmed but not announced", () => {
    const plan = planRouting(
      input("bgp", { bindings: [{ family: 4, floating: "198.51.100.7", hostIfname: "calib" }] }),
    );
    expect(plan.routes).toContainEqual({ family: 4, dst: "198.51.100.7/32", dev: "calib" });
    expect(plan.bird?.exports).toEqual(["10.244.0.0/26"]);
  });

  it("bgp: without an IPv4 address for the router ID, BGP is reported and left alone", () => {
    const plan = planRouting(input("bgp", { nodes: [{ name: "node-1", addresses: ["fd00::1"] }] }));
    expect(plan.bird).toBeUndefined();
    expect(plan.problems).toEqual([
      "node node-1 has no IPv4 address in its Node record: BGP needs one as router ID",
    ]);
  });
});

describe("planRouting() with records that ask for one key twice", () => {
  const cases: {
    desc: string;
    input: RoutingInput;
    /** The routes to the destinations in question, as routeKey() writes them. */
    routes?: { dsts: string[]; want: string[] };
    /** The BGP neighbors' names. */
    neighbors?: string[];
    refused: RoutingPlan["refused"];
  }[] = [
    {
      desc: "routes a block affine to two other nodes via the first by name, on every node",
      input: input("direct", {
        nodes: [...input("direct").nodes, { name: "node-0", addresses: ["192.168.200.10"] }],
        blocks: [
          { cidr: "10.244.0.64/26", affinity: "node-2" },
          { cidr: "10.244.0.64/26", affinity: "node-0" },
        ],
        hosted: [],
      }),
      routes: { dsts: ["10.244.0.64/26"], want: ["10.244.0.64/26 via 192.168.200.10"] },
      refused: [{ item: "10.244.0.64/26", reason: "duplicate route" }],
    },
    {
      desc: "routes a block affine to this node and a later one as its own (blackhole)",
      input: input("direct", {
        blocks: [
          { cidr: "10.244.0.0/26", affinity: "node-2" },
          { cidr: "10.244.0.0/26", affinity: "node-1" },
        ],
        hosted: [],
      }),
      routes: { dsts: ["10.244.0.0/26"], want: ["blackhole 10.244.0.0/26"] },
      refused: [{ item: "10.244.0.0/26", reason: "duplicate route" }],
    },
    {
      desc: "takes one block given in two spellings as one destination",
      input: input("direct", {
        blocks: [
          { cidr: "fd00:244:0::40/122", affinity: "node-2" },
          { cidr: "fd00:244::40/122", affinity: "node-2" },
        ],
        hosted: [],
      }),
      routes: { dsts: ["fd00:244::40/122"], want: ["fd00:244::40/122 via fd00:200::12"] },
      refused: [{ item: "fd00:244::40/122", reason: "duplicate route" }],
    },
    {
      desc: "keeps a floating IP hosted here over an address another node borrowed",
      input: input("direct", {
        borrowed: [{ ip: "203.0.113.10", node: "node-2" }],
        hosted: [],
      }),
      routes: { dsts: ["203.0.113.10/32"], want: ["203.0.113.10/32 dev calia"] },
      refused: [{ item: "203.0.113.10/32", reason: "duplicate route" }],
    },
    {
      desc: "keeps a borrowed address over a floating IP another node reports at it",
      input: input("direct", {
        borrowed: [{ ip: "10.244.0.70", node: "node-2" }],
        hosted: [{ ip: "10.244.0.70", node: "node-3" }],
        nodes: [...input("direct").nodes, { name: "node-3", addresses: ["192.168.200.13"] }],
      }),
      routes: { dsts: ["10.244.0.70/32"], want: ["10.244.0.70/32 via 192.168.200.12"] },
      refused: [{ item: "10.244.0.70/32", reason: "duplicate route" }],
    },
    {
      desc: "skips a BGP peer whose neighbor name a node's already is",
      input: input("bgp", {
        nodes: [
          { name: "node-1", addresses: ["192.168.200.11"] },
          { name: "peer", addresses: ["10.0.0.1"] },
        ],
        peers: [{ name: "10.0.0.1", peerIP: "192.168.200.254", asNumber: 64513 }],
      }),
      neighbors: ["peer_10.0.0.1"],
      refused: [{ item: "peer_10.0.0.1", reason: "duplicate BGP neighbor name" }],
    },
    {
      desc: "skips a neighbor whose BIRD protocol name, hashed, another's plain name already is",
      input: input("bgp", {
        nodes: [{ name: "node-1", addresses: ["192.168.200.11"] }],
        peers: [
          // Too long: cut to `peer_peer_` and 29 x's, then `_` and a hash of the name.
          { name: "x".repeat(60), peerIP: "192.168.200.253", asNumber: 64513 },
          {
            name: `${"x".repeat(29)}_${fnv1aForTest(`peer_${"x".repeat(60)}`)}`,
            peerIP: "192.168.200.254",
            asNumber: 64513,
          },
        ],
      }),
      neighbors: [`peer_${"x".repeat(29)}_${fnv1aForTest(`peer_${"x".repeat(60)}`)}`],
      refused: [{ item: `peer_${"x".repeat(60)}`, reason: "duplicate BGP neighbor name" }],
    },
    {
      desc: "skips a neighbor with an AS number BIRD refuses",
      input: input("bgp", {
        peers: [
          { name: "zero", peerIP: "192.168.200.252", asNumber: 0 },
          { name: "tor", peerIP: "192.168.200.254", asNumber: 64513 },
        ],
      }),
      neighbors: ["node-2_192.168.200.12", "node-2_fd00:200::12", "peer_tor"],
      refused: [{ item: "peer_zero", reason: "invalid AS number" }],
    },
    {
      desc: "counts a neighbor address given twice",
      input: input("bgp", {
        peers: [
          { name: "tor", peerIP: "192.168.200.254", asNumber: 64513 },
          { name: "tor-again", peerIP: "192.168.200.254", asNumber: 64513 },
        ],
      }),
      neighbors: ["node-2_192.168.200.12", "node-2_fd00:200::12", "peer_tor"],
      refused: [{ item: "peer_tor-again", reason: "duplicate BGP neighbor address" }],
    },
  ];
  for (const { desc, input: given, routes, neighbors, refused } of cases) {
    it(`planRouting() ${desc}`, () => {
      const plan = planRouting(given);
      expect(plan.refused).toEqual(refused);
      expect(plan.problems).toHaveLength(refused.length);
      if (routes) {
        expect(
          plan.routes.filter((route) => routes.dsts.includes(route.dst)).map(routeKey),
        ).toEqual(routes.want);
      }
      // One route per destination: the kernel's key.
      const dsts = plan.routes.map((route) => route.dst);
      expect(new Set(dsts).size).toBe(dsts.length);
      if (neighbors) {
        expect(plan.bird?.neighbors.map((neighbor) => neighbor.name)).toEqual(neighbors);
        // BIRD takes the config: the renderer throws on what BIRD would refuse.
        expect(() =>
          renderBirdNodeConfig(plan.bird as NonNullable<RoutingPlan["bird"]>),
        ).not.toThrow();
      }
      // The same item wins whatever order the records come in.
      const reversed = planRouting({
        ...given,
        nodes: [...given.nodes].reverse(),
        blocks: [...given.blocks].reverse(),
        borrowed: [...(given.borrowed ?? [])].reverse(),
        hosted: [...given.hosted].reverse(),
        peers: [...given.peers].reverse(),
      });
      expect(reversed).toEqual(plan);
    });
  }

  it("planRouting() reports this node's own AS number BIRD refuses and leaves BGP alone", () => {
    const plan = planRouting(
      input("bgp", { nodes: [{ name: "node-1", addresses: ["192.168.200.11"], asNumber: -1 }] }),
    );
    expect(plan.bird).toBeUndefined();
    expect(plan.refused).toEqual([{ item: "node-1", reason: "invalid AS number" }]);
  });
});

/** bird-config.ts's protocol-name hash (32-bit FNV-1a, 8 hex digits). */
function fnv1aForTest(value: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < value.length; i++) {
    hash ^= value.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, "0");
}
