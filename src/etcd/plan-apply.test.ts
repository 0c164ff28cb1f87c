import { describe, expect, it } from "vitest";
import type {
  BgpPeer,
  FloatingIpClaim,
  IpPool,
  IpamBlock,
  NodeRecord,
  Versioned,
} from "../model/records.js";
import { keys } from "./store.js";
import type { EtcdDatastoreState } from "./etcd-state.js";
import type { Resource } from "../cli/manifest.js";
import { planApply } from "./plan-apply.js";

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
const pool = (name: string, cidr: string, extra: Partial<IpPool> = {}): IpPool => ({
  name,
  cidr,
  blockSize: 26,
  disabled: false,
  nodeSelector: "all()",
  natOutgoing: false,
  disableBGPExport: false,
  ...extra,
});
const applyPool = (value: IpPool, source = "document 1"): Resource => ({
  kind: "IPPool",
  pool: value,
  source,
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

describe("planApply()", () => {
  it("planApply() creates a new pool only if nobody created it meanwhile", () => {
    const created = pool("a", "10.0.0.0/24");
    expect(planApply(state({}), [applyPool(created)])).toEqual({
      compares: [
        { key: keys.pool("a"), createRevision: 0 },
        { key: keys.poolWrites, createRevision: 0 },
      ],
      ops: [
        { put: keys.pool("a"), value: JSON.stringify(created) },
        { put: keys.poolWrites, value: JSON.stringify({ pools: ["a"] }) },
      ],
    });
  });

  it("planApply() updates a pool and a node against the revisions it read", () => {
    const node: NodeRecord = { name: "node-1", addresses: ["192.0.2.10"] };
    const plan = planApply(
      state({
        pools: [at(pool("a", "10.0.0.0/24"), "3")],
        nodes: [at(node, "4")],
        poolWritesRevision: "3",
      }),
      [
        applyPool(pool("a", "10.0.0.0/24", { disabled: true })),
        { kind: "Node", node: { ...node, asNumber: 64512 }, source: "document 2" },
      ],
    );
    expect(plan.compares).toEqual([
      { key: keys.pool("a"), modRevision: 3 },
      { key: keys.node("node-1"), modRevision: 4 },
      { key: keys.poolWrites, modRevision: 3 },
    ]);
    expect(plan.ops.map((op) => ("put" in op ? op.put : op.delete))).toEqual([
      keys.pool("a"),
      keys.node("node-1"),
      keys.poolWrites,
    ]);
  });

  it("planApply() creates a BGP peer and updates another against the revision it read", () => {
    const tor: BgpPeer = { name: "tor", peerIP: "192.0.2.1", asNumber: 65001 };
    const rack: BgpPeer = { name: "rack-1", peerIP: "192.0.2.2", asNumber: 65002, node: "node-1" };
    const plan = planApply(state({ peers: [at(tor, "5")] }), [
      { kind: "BGPPeer", peer: { ...tor, asNumber: 65010 }, source: "document 1" },
      { kind: "BGPPeer", peer: rack, source: "document 2" },
    ]);
    expect(plan).toEqual({
      compares: [
        { key: keys.bgpPeer("tor"), modRevision: 5 },
        { key: keys.bgpPeer("rack-1"), createRevision: 0 },
      ],
      ops: [
        { put: keys.bgpPeer("tor"), value: JSON.stringify({ ...tor, asNumber: 65010 }) },
        { put: keys.bgpPeer("rack-1"), value: JSON.stringify(rack) },
      ],
    });
  });

  it("planApply() writes a Namespace's labels against the revision it read", () => {
    const shop = { name: "shop", labels: { team: "a" } };
    const lab = { name: "lab", labels: {} };
    expect(
      planApply(state({ namespaces: [at({ name: "shop", labels: {} }, "9")] }), [
        { kind: "Namespace", namespace: shop, source: "document 1" },
        { kind: "Namespace", namespace: lab, source: "document 2" },
      ]),
    ).toEqual({
      compares: [
        { key: keys.namespace("shop"), modRevision: 9 },
        { key: keys.namespace("lab"), createRevision: 0 },
      ],
      ops: [
        { put: keys.namespace("shop"), value: JSON.stringify(shop) },
        { put: keys.namespace("lab"), value: JSON.stringify(lab) },
      ],
    });
  });

  it("planApply() keeps a BGP peer and a node of the same name apart", () => {
    const plan = planApply(state({}), [
      { kind: "Node", node: { name: "tor", addresses: [] }, source: "document 1" },
      {
        kind: "BGPPeer",
        peer: { name: "tor", peerIP: "192.0.2.1", asNumber: 65001 },
        source: "document 2",
      },
    ]);
    expect(plan.compares.map((compare) => compare.key)).toEqual([
      keys.node("tor"),
      keys.bgpPeer("tor"),
    ]);
  });

  const refused: {
    desc: string;
    state: EtcdDatastoreState;
    resources: Resource[];
    message: string;
  }[] = [
    {
      desc: "refuses a pool that overlaps an existing one, naming both",
      state: state({ pools: [at(pool("pods", "10.244.0.0/16"))] }),
      resources: [applyPool(pool("floating", "10.244.3.0/24"))],
      message: "IP pool floating (10.244.3.0/24) overlaps IP pool pods (10.244.0.0/16)",
    },
    {
      desc: "refuses two new pools that overlap each other",
      state: state({}),
      resources: [
        applyPool(pool("a", "10.0.0.0/8")),
        applyPool(pool("b", "10.1.0.0/16"), "document 2"),
      ],
      message: "IP pool a (10.0.0.0/8) overlaps IP pool b (10.1.0.0/16)",
    },
    {
      desc: "refuses the same pool twice in one apply",
      state: state({}),
      resources: [
        applyPool(pool("a", "10.0.0.0/24")),
        applyPool(pool("a", "10.0.1.0/24"), "document 2"),
      ],
      message: "document 2: IPPool a is also defined in document 1",
    },
    {
      desc: "refuses the same BGP peer twice in one apply",
      state: state({}),
      resources: [
        { kind: "BGPPeer", peer: { name: "a", peerIP: "192.0.2.1", asNumber: 1 }, source: "d1" },
        { kind: "BGPPeer", peer: { name: "a", peerIP: "192.0.2.2", asNumber: 1 }, source: "d2" },
      ],
      message: "d2: BGPPeer a is also defined in d1",
    },
    {
      desc: "refuses a cidr change while addresses are allocated in the pool",
      state: state({
        pools: [at(pool("a", "10.0.0.0/24"))],
        blocks: [at(block("10.0.0.0/26", ["10.0.0.1", "10.0.0.2"])), at(block("10.0.0.64/26"))],
      }),
      resources: [applyPool(pool("a", "10.0.0.0/23"))],
      message:
        "cannot change cidr 10.0.0.0/24 -> 10.0.0.0/23 of IP pool a: 2 address(es) are allocated in 1 of its block(s)",
    },
    {
      desc: "refuses a blockSize change while addresses are allocated in the pool",
      state: state({
        pools: [at(pool("a", "10.0.0.0/24"))],
        blocks: [at(block("10.0.0.0/26", ["10.0.0.1"]))],
      }),
      resources: [applyPool(pool("a", "10.0.0.0/24", { blockSize: 28 }))],
      message:
        "cannot change blockSize 26 -> 28 of IP pool a: 1 address(es) are allocated in 1 of its block(s)",
    },
    {
      desc: "refuses a cidr change that leaves claimed floating IPs outside",
      state: state({
        pools: [at(pool("a", "10.0.0.0/24"))],
        claims: [at(claim("10.0.0.200"))],
      }),
      resources: [applyPool(pool("a", "10.0.0.0/25"))],
      message:
        "cannot change cidr 10.0.0.0/24 -> 10.0.0.0/25 of IP pool a: floating IP(s) 10.0.0.200 are claimed outside the new cidr",
    },
  ];
  for (const { desc, state: given, resources, message } of refused) {
    it(`planApply() ${desc}`, () => {
      expect(() => planApply(given, resources)).toThrow(message);
    });
  }

  it("planApply() lets IPv4 and IPv6 pools coexist and a pool be re-applied unchanged", () => {
    const given = state({
      pools: [at(pool("v4", "10.0.0.0/8"))],
      blocks: [at(block("10.0.0.0/26", ["10.0.0.1"]))],
    });
    expect(() =>
      planApply(given, [
        applyPool(pool("v4", "10.0.0.0/8")),
        applyPool(pool("v6", "::/0", { blockSize: 122 })),
      ]),
    ).not.toThrow();
  });

  it("planApply() has two applies of different pools compare one key, so one replans", () => {
    const plan = planApply(state({ poolWritesRevision: "11" }), [
      applyPool(pool("b", "10.1.0.0/24")),
    ]);
    expect(plan.compares).toContainEqual({ key: keys.poolWrites, modRevision: 11 });
    expect(plan.ops).toContainEqual({
      put: keys.poolWrites,
      value: JSON.stringify({ pools: ["b"] }),
    });
    const nodeOnly = planApply(state({}), [
      { kind: "Node", node: { name: "n", addresses: [] }, source: "d1" },
    ]);
    expect(nodeOnly.compares.map((compare) => compare.key)).toEqual([keys.node("n")]);
  });

  it("planApply() deletes the old empty blocks when the geometry of an unused pool changes", () => {
    const plan = planApply(
      state({
        pools: [at(pool("a", "10.0.0.0/24"), "3")],
        blocks: [at(block("10.0.0.0/26"), "5"), at(block("10.1.0.0/26", ["10.1.0.1"]), "6")],
      }),
      [applyPool(pool("a", "10.0.0.0/24", { blockSize: 28 }))],
    );
    expect(plan.compares).toEqual([
      { key: keys.block("10.0.0.0/26"), modRevision: 5 },
      { key: keys.pool("a"), modRevision: 3 },
      { key: keys.poolWrites, createRevision: 0 },
    ]);
    expect(plan.ops[0]).toEqual({ delete: keys.block("10.0.0.0/26") });
  });
});

describe("planApply() of FloatingIPs", () => {
  const floating = pool("floating", "203.0.113.0/24", { disabled: true });
  const teamOnly = pool("team", "198.51.100.0/24", {
    disabled: true,
    namespaceSelector: "team == 'a'",
  });
  const applyFip = (name: string, address: string, namespace = "shop"): Resource => ({
    kind: "FloatingIP",
    floatingIp: {
      namespace,
      name,
      spec: { address, podSelector: { matchLabels: { app: name } }, egress: false },
    },
    source: "document 1",
  });
  const written = (plan: ReturnType<typeof planApply>) =>
    plan.ops.flatMap((op) =>
      "put" in op ? [JSON.parse(op.value) as Record<string, unknown>] : [],
    );

  it("creates one with a fresh uid and generation 1, only if nobody created it meanwhile", () => {
    const plan = planApply(state({ pools: [at(floating)] }), [applyFip("web", "203.0.113.10")]);
    expect(plan.compares).toEqual([{ key: keys.floatingIp("shop", "web"), createRevision: 0 }]);
    expect(written(plan)[0]).toMatchObject({
      namespace: "shop",
      name: "web",
      generation: 1,
      uid: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
  });

  it("keeps its uid; its generation goes up only when the spec changed", () => {
    const record = {
      namespace: "shop",
      name: "web",
      uid: "u-1",
      generation: 3,
      createdAt: "2026-01-01T00:00:00.000Z",
      spec: {
        address: "203.0.113.10",
        podSelector: { matchLabels: { app: "web" } },
        egress: false,
      },
    };
    const existing = state({ pools: [at(floating)], floatingIpResources: [at(record, "9")] });
    const same = planApply(existing, [applyFip("web", "203.0.113.10")]);
    expect(same.compares).toEqual([{ key: keys.floatingIp("shop", "web"), modRevision: 9 }]);
    expect(written(same)[0]).toMatchObject({ uid: "u-1", generation: 3 });
    const moved = planApply(existing, [applyFip("web", "203.0.113.11")]);
    expect(written(moved)[0]).toMatchObject({ uid: "u-1", generation: 4 });
  });

  it("refuses an address outside every pool, and one of a pool the namespace may not use", () => {
    const pools = state({ pools: [at(floating), at(teamOnly)] });
    expect(() => planApply(pools, [applyFip("web", "192.0.2.1")])).toThrow(
      "FloatingIP shop/web: floating IP 192.0.2.1 is not within any configured IP pool",
    );
    expect(() => planApply(pools, [applyFip("web", "198.51.100.1")])).toThrow(
      /^FloatingIP shop\/web: .*198\.51\.100\.1.*team/,
    );
    const labelled: Resource = {
      kind: "Namespace",
      namespace: { name: "shop", labels: { team: "a" } },
      source: "document 2",
    };
    expect(() => planApply(pools, [applyFip("web", "198.51.100.1"), labelled])).not.toThrow();
  });

  it("refuses an address another FloatingIP names, in the datastore or the same file", () => {
    const other = {
      namespace: "bank",
      name: "vault",
      uid: "u-2",
      generation: 1,
      createdAt: "2026-01-01T00:00:00.000Z",
      spec: { address: "203.0.113.10", podSelector: {}, egress: false },
    };
    const existing = state({ pools: [at(floating)], floatingIpResources: [at(other)] });
    expect(() => planApply(existing, [applyFip("web", "203.0.113.10")])).toThrow(
      "FloatingIP shop/web: 203.0.113.10 is already the address of FloatingIP bank/vault",
    );
    expect(() =>
      planApply(state({ pools: [at(floating)] }), [
        applyFip("web", "203.0.113.10"),
        applyFip("db", "203.0.113.10", "other"),
      ]),
    ).toThrow("FloatingIP shop/web: 203.0.113.10 is already the address of FloatingIP other/db");
  });
});
