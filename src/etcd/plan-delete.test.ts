import { describe, expect, it } from "vitest";
import type {
  FloatingIpClaim,
  IpPool,
  IpamBlock,
  Versioned,
  WorkloadEndpoint,
} from "../model/records.js";
import { keys } from "./store.js";
import type { EtcdDatastoreState } from "./etcd-state.js";
import { planDelete } from "./plan-delete.js";

const at = <T>(value: T, revision = "7"): Versioned<T> => ({ value, revision });
const state = (parts: Partial<EtcdDatastoreState>): EtcdDatastoreState => ({
  statuses: [],
  regions: [],
  pools: [],
  blocks: [],
  claims: [],
  endpoints: [],
  nodes: [],
  peers: [],
  ...parts,
});
const pool = (name: string, cidr: string): IpPool => ({
  name,
  cidr,
  blockSize: 26,
  disabled: false,
  nodeSelector: "all()",
  natOutgoing: false,
  disableBGPExport: false,
});
const block = (cidr: string, allocated: string[] = []): IpamBlock => ({
  cidr,
  affinity: "node-1",
  allocations: Object.fromEntries(allocated.map((ip) => [ip, { handle: "c1", node: "node-1" }])),
});
const claim = (ip: string): FloatingIpClaim => ({
  ip,
  namespace: "default",
  pod: "web-0",
  containerID: "c1",
  node: "node-1",
  internalIP: "10.244.0.5",
  createdAt: "2025-01-01T00:00:00.000Z",
});
const endpoint = { node: "node-1", pod: "web-0" } as WorkloadEndpoint;

describe("planDelete()", () => {
  it("planDelete() deletes a pool together with its empty blocks", () => {
    const plan = planDelete(
      state({
        pools: [at(pool("a", "10.0.0.0/24"), "3")],
        blocks: [at(block("10.0.0.64/26"), "5"), at(block("10.9.0.0/26"), "6")],
      }),
      [{ kind: "IPPool", name: "a" }],
    );
    expect(plan).toEqual({
      compares: [
        { key: keys.block("10.0.0.64/26"), modRevision: 5 },
        { key: keys.pool("a"), modRevision: 3 },
      ],
      ops: [
        { delete: keys.block("10.0.0.64/26") },
        { delete: keys.affinity("node-1", "10.0.0.64/26") },
        { delete: keys.pool("a") },
      ],
    });
  });

  it("planDelete() takes a deleted block out of its region, and deletes a region left empty", () => {
    const plan = planDelete(
      state({
        pools: [at(pool("a", "10.0.0.0/24"), "3")],
        blocks: [at(block("10.0.0.0/26"), "5"), at(block("10.0.0.64/26"), "6")],
        regions: [
          at({ cidr: "10.0.0.0/20", blocks: ["10.0.0.0/26", "10.0.0.64/26", "10.0.1.0/26"] }, "8"),
        ],
      }),
      [{ kind: "IPPool", name: "a" }],
    );
    expect(plan.compares).toContainEqual({ key: keys.region("10.0.0.0/20"), modRevision: 8 });
    expect(plan.ops).toContainEqual({
      put: keys.region("10.0.0.0/20"),
      value: JSON.stringify({ cidr: "10.0.0.0/20", blocks: ["10.0.1.0/26"] }),
    });
    const emptied = planDelete(
      state({
        pools: [at(pool("a", "10.0.0.0/24"), "3")],
        blocks: [at(block("10.0.0.0/26"), "5")],
        regions: [at({ cidr: "10.0.0.0/20", blocks: ["10.0.0.0/26"] }, "8")],
      }),
      [{ kind: "IPPool", name: "a" }],
    );
    expect(emptied.ops).toContainEqual({ delete: keys.region("10.0.0.0/20") });
  });

  it("planDelete() deletes a BGP peer against the revision it read", () => {
    const plan = planDelete(
      state({ peers: [at({ name: "tor", peerIP: "192.0.2.1", asNumber: 65001 }, "4")] }),
      [
        { kind: "BGPPeer", name: "tor" },
        { kind: "BGPPeer", name: "tor" },
      ],
    );
    expect(plan).toEqual({
      compares: [{ key: keys.bgpPeer("tor"), modRevision: 4 }],
      ops: [{ delete: keys.bgpPeer("tor") }],
    });
  });

  const refused: {
    desc: string;
    state: EtcdDatastoreState;
    kind: "IPPool" | "Node" | "BGPPeer";
    message: string;
  }[] = [
    {
      desc: "refuses a pool with allocated addresses and claims, giving the counts",
      state: state({
        pools: [at(pool("a", "10.0.0.0/24"))],
        blocks: [
          at(block("10.0.0.0/26", ["10.0.0.1", "10.0.0.2"])),
          at(block("10.0.0.64/26", ["10.0.0.65"])),
          at(block("10.0.0.128/26")),
        ],
        claims: [at(claim("10.0.0.200")), at(claim("10.1.0.1"))],
      }),
      kind: "IPPool",
      message:
        "cannot delete IP pool a (10.0.0.0/24): 3 address(es) are allocated in 2 block(s) and 1 floating IP(s) are claimed inside it",
    },
    {
      desc: "refuses a pool whose only use is a floating-IP claim",
      state: state({ pools: [at(pool("a", "10.0.0.0/24"))], claims: [at(claim("10.0.0.7"))] }),
      kind: "IPPool",
      message:
        "cannot delete IP pool a (10.0.0.0/24): 0 address(es) are allocated in 0 block(s) and 1 floating IP(s) are claimed inside it",
    },
    {
      desc: "names a pool that does not exist",
      state: state({ pools: [at(pool("b", "10.0.0.0/24"))] }),
      kind: "IPPool",
      message: "IP pool a does not exist",
    },
    {
      desc: "refuses a node that still has workload endpoints",
      state: state({
        nodes: [at({ name: "a", addresses: [] })],
        endpoints: [at({ ...endpoint, node: "a" })],
      }),
      kind: "Node",
      message: "cannot delete node a: 1 workload endpoint(s) are still on it",
    },
    {
      desc: "names a BGP peer that does not exist",
      state: state({ nodes: [at({ name: "a", addresses: [] })] }),
      kind: "BGPPeer",
      message: "BGP peer a does not exist",
    },
  ];
  for (const { desc, state: given, kind, message } of refused) {
    it(`planDelete() ${desc}`, () => {
      expect(() => planDelete(given, [{ kind, name: "a" }])).toThrow(message);
    });
  }
});
