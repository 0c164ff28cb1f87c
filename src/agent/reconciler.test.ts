// The move protocol of ADR 0004 with two agents on one store: the new node
// programs a floating IP only after the old node has withdrawn it (or its
// agent's lease has expired), and each node's status record says so.
import { FLOATING_POOL } from "../../test/support/agent-records.js";
import { afterEach, describe, expect, it } from "vitest";
import { ManualClock, MemoryKv } from "../etcd/memory-kv.js";
import type { FloatingIpClaim, WorkloadEndpoint } from "../model/records.js";
import { keys } from "../etcd/store.js";
import { createStreamLogger } from "../log/logger.js";
import { createMetrics } from "./metrics.js";
import { Reconciler } from "./reconciler.js";
import { EtcdAgentSource } from "../etcd/etcd-agent-source.js";
import type { DataplanePorts } from "./sync-dataplane.js";
import { FakeNft } from "../../test/support/fake-nft.js";
import { FakeConntrack, FakeRoutes } from "../../test/support/fake-routes.js";

const FLOATING = "203.0.113.10";

/** A node's kernel as the agent sees it: its nftables, its routes (two pod veths), conntrack. */
function fakeNode() {
  const nft = new FakeNft();
  const routes = new FakeRoutes({ interfaces: ["calia", "calib"] });
  const conntrack = new FakeConntrack();
  const ports: DataplanePorts = { nft, routes, conntrack };
  return { nft, routes, conntrack, ports };
}

const endpoint = (node: string, containerID: string, ip: string, ifname: string, nat: boolean) =>
  ({
    node,
    namespace: "default",
    pod: containerID,
    containerID,
    endpoint: "eth0",
    interfaceName: ifname,
    mac: "",
    ipNetworks: [`${ip}/32`],
    ipNATs: nat ? [{ internalIP: ip, externalIP: FLOATING }] : [],
    network: "k8s-pod-network",
    createdAt: "",
  }) satisfies WorkloadEndpoint;

const claim = (node: string, containerID: string, internalIP: string): FloatingIpClaim => ({
  ip: FLOATING,
  namespace: "default",
  pod: containerID,
  containerID,
  node,
  internalIP,
  createdAt: "",
});

const watches: AbortController[] = [];
afterEach(() => {
  for (const watch of watches.splice(0)) watch.abort();
});

async function setup() {
  const clock = new ManualClock();
  const kv = new MemoryKv({ clock });
  const put = (key: string, value: unknown) => ({ put: key, value: JSON.stringify(value) });
  await kv.txn(
    [],
    [
      put(keys.pool("floating"), FLOATING_POOL),
      put(
        keys.endpoint("node-1", "a", "eth0"),
        endpoint("node-1", "a", "10.244.0.5", "calia", true),
      ),
      put(
        keys.endpoint("node-2", "b", "eth0"),
        endpoint("node-2", "b", "10.244.0.70", "calib", false),
      ),
      put(keys.claim(FLOATING), claim("node-1", "a", "10.244.0.5")),
      put(keys.node("node-1"), { name: "node-1", addresses: ["192.168.200.11"] }),
      put(keys.node("node-2"), { name: "node-2", addresses: ["192.168.200.12"] }),
    ],
  );
  const agent = (
    node: string,
    bird?: { apply(config: string): Promise<void>; sessions(): Promise<never[]> },
    collectGarbage?: () => void,
  ) => {
    const kernel = fakeNode();
    const metrics = createMetrics();
    const logger = createStreamLogger(() => {}, "error");
    const routing = bird ? "bgp" : "direct";
    const source = new EtcdAgentSource({ kv, node, routing, logger, statusTtlSeconds: 10 });
    const reconciler = new Reconciler({
      source,
      node,
      ports: kernel.ports,
      logger,
      metrics,
      floatingIpsEnabled: () => true,
      routing,
      ...(bird ? { bird } : {}),
      ...(collectGarbage ? { collectGarbage } : {}),
    });
    // The watch tells the source what changed, as in the agent.
    const watching = new AbortController();
    watches.push(watching);
    void source.watch(watching.signal, { changed: () => {}, connected: () => {} });
    /** One reconcile, once the watch has heard of every change made so far. */
    const reconcile = async () => {
      await new Promise((resolve) => setImmediate(resolve));
      await reconciler.reconcile();
    };
    return { kernel, reconciler, metrics, reconcile };
  };
  /** `buoy floatingip move`: the claim and both endpoints in one transaction. */
  const move = () =>
    kv.txn(
      [],
      [
        put(
          keys.endpoint("node-1", "a", "eth0"),
          endpoint("node-1", "a", "10.244.0.5", "calia", false),
        ),
        put(
          keys.endpoint("node-2", "b", "eth0"),
          endpoint("node-2", "b", "10.244.0.70", "calib", true),
        ),
        put(keys.claim(FLOATING), claim("node-2", "b", "10.244.0.70")),
      ],
    );
  const statusNodes = async () =>
    (await kv.list(keys.statuses)).map((entry) => JSON.parse(entry.value).node as string);
  return { clock, kv, move, statusNodes, agent, one: agent("node-1"), two: agent("node-2") };
}

describe("a floating IP moving between nodes", () => {
  it("is programmed on the new node only after the old node has withdrawn it", async () => {
    const { move, statusNodes, one, two } = await setup();
    await one.reconcile();
    await two.reconcile();
    expect(one.kernel.nft.translates(FLOATING)).toBe("10.244.0.5");
    expect(await statusNodes()).toEqual(["node-1"]);
    // node-2 routes it to node-1 (direct mode), by node-1's status record.
    expect(await two.kernel.routes.read()).toEqual([
      { family: 4, dst: `${FLOATING}/32`, via: "192.168.200.11" },
    ]);

    await move();
    // node-2 sees the move first: node-1 still translates, so it waits.
    await two.reconcile();
    expect(two.kernel.nft.translates(FLOATING)).toBeUndefined();
    expect(two.reconciler.lastPlan?.waiting).toEqual([
      { floatingIP: FLOATING, pod: "default/b", node: "node-1" },
    ]);
    expect(await two.metrics.registry.getSingleMetricAsString("buoy_floating_ip_waiting")).toMatch(
      /^buoy_floating_ip_waiting 1$/m,
    );

    // node-1 withdraws (element, route, conntrack) and then drops its record.
    await one.reconcile();
    expect(one.kernel.nft.translates(FLOATING)).toBeUndefined();
    expect(await one.kernel.routes.read()).toEqual([]);
    expect(one.kernel.conntrack.flushed).toContain(FLOATING);
    expect(await statusNodes()).toEqual([]);

    await two.reconcile();
    expect(two.kernel.nft.translates(FLOATING)).toBe("10.244.0.70");
    expect(await two.kernel.routes.read()).toEqual([
      { family: 4, dst: `${FLOATING}/32`, dev: "calib" },
    ]);
    expect(await statusNodes()).toEqual(["node-2"]);
    await one.reconcile();
    expect(await one.kernel.routes.read()).toEqual([
      { family: 4, dst: `${FLOATING}/32`, via: "192.168.200.12" },
    ]);
  });

  it("moves away from a dead node once its agent's lease has expired", async () => {
    const { clock, move, statusNodes, one, two } = await setup();
    await one.reconcile();
    await move();
    // node-1's agent is dead: it never reconciles or keeps its lease alive again.
    await two.reconcile();
    expect(two.kernel.nft.translates(FLOATING)).toBeUndefined();
    clock.advance(9_000);
    await two.reconcile();
    expect(two.kernel.nft.translates(FLOATING)).toBeUndefined();
    clock.advance(2_000);
    expect(await statusNodes()).toEqual([]);
    // node-2 did not keep its own lease alive either: it takes a new one.
    await two.reconcile();
    expect(two.kernel.nft.translates(FLOATING)).toBe("10.244.0.70");
  });

  it("a live agent keeps its records past the TTL by keeping its lease alive", async () => {
    const { clock, statusNodes, one } = await setup();
    await one.reconcile();
    for (let i = 0; i < 5; i++) {
      clock.advance(3_000);
      await one.reconciler.keepAlive();
    }
    expect(await statusNodes()).toEqual(["node-1"]);
  });
});

describe("BGP announcements", () => {
  it("withdraws everything from BIRD when this node's Node record goes, rather than keep announcing", async () => {
    const { kv, agent } = await setup();
    const configs: string[] = [];
    const one = agent("node-1", {
      apply: async (config) => void configs.push(config),
      sessions: async () => [],
    });
    await one.reconcile();
    expect(configs.at(-1)).toContain(`route ${FLOATING}/32 blackhole;`);
    await kv.txn([], [{ delete: keys.node("node-1") }]);
    await one.reconcile();
    // Still translated here (the claim is node-1's), but no longer announced.
    expect(one.kernel.nft.translates(FLOATING)).toBe("10.244.0.5");
    expect(configs.at(-1)).not.toContain(FLOATING);
    expect(configs.at(-1)).toContain("router id 192.168.200.11;");
  });
});

describe("setFenced()", () => {
  it("setFenced() withdraws the floating IPs from BIRD without reading the datastore, keeps the blocks, and a reconcile after unfencing announces again", async () => {
    const { kv, agent } = await setup();
    const configs: string[] = [];
    const one = agent("node-1", {
      apply: async (config) => void configs.push(config),
      sessions: async () => [],
    });
    await kv.txn(
      [],
      [
        {
          put: keys.pool("pods"),
          value: JSON.stringify({
            name: "pods",
            cidr: "10.244.0.0/16",
            blockSize: 26,
            disabled: false,
            nodeSelector: "all()",
            natOutgoing: false,
            disableBGPExport: false,
          }),
        },
        {
          put: keys.affinity("node-1", "10.244.0.0/26"),
          value: JSON.stringify({ cidr: "10.244.0.0/26", node: "node-1" }),
        },
      ],
    );
    await one.reconcile();
    expect(configs.at(-1)).toContain(`route ${FLOATING}/32 blackhole;`);
    const reads = configs.length;
    await one.reconciler.setFenced(true);
    expect(one.reconciler.fenced).toBe(true);
    expect(configs).toHaveLength(reads + 1);
    expect(configs.at(-1)).not.toContain(FLOATING);
    expect(configs.at(-1)).toContain("route 10.244.0.0/26 blackhole;");
    // A reconcile while fenced (the datastore answers again before the
    // renewal does) still leaves the floating IP out, and records it as not announced.
    await one.reconcile();
    expect(configs.at(-1)).not.toContain(FLOATING);
    const status = await kv.get(keys.status("node-1", FLOATING));
    expect(JSON.parse(status?.value ?? "{}")).not.toHaveProperty("announced");
    expect(one.kernel.nft.translates(FLOATING)).toBe("10.244.0.5");
    await one.reconciler.setFenced(false);
    await one.reconcile();
    expect(configs.at(-1)).toContain(`route ${FLOATING}/32 blackhole;`);
    expect(
      JSON.parse((await kv.get(keys.status("node-1", FLOATING)))?.value ?? "{}"),
    ).toMatchObject({
      announced: "bgp",
    });
  });

  it("setFenced() that BIRD refuses is not fenced yet, so it is tried again", async () => {
    const { agent } = await setup();
    let refuse = false;
    const one = agent("node-1", {
      apply: async () => {
        if (refuse) throw new Error("birdc: connection refused");
      },
      sessions: async () => [],
    });
    await one.reconcile();
    refuse = true;
    await expect(one.reconciler.setFenced(true)).rejects.toThrow("birdc: connection refused");
    expect(one.reconciler.fenced).toBe(false);
    refuse = false;
    await one.reconciler.setFenced(true);
    expect(one.reconciler.fenced).toBe(true);
  });
});

describe("a failing reconcile", () => {
  it("keeps the reason for /readyz until a reconcile succeeds", async () => {
    const { agent } = await setup();
    let refuse = true;
    const one = agent("node-1", {
      apply: async () => {
        if (refuse) throw new Error("birdc: bird.conf:3:1 syntax error");
      },
      sessions: async () => [],
    });
    const controller = new AbortController();
    const running = one.reconciler.run(controller.signal);
    while (one.reconciler.lastError === undefined) await new Promise((r) => setTimeout(r, 5));
    expect(one.reconciler.lastError).toBe("birdc: bird.conf:3:1 syntax error");
    // NAT is programmed all the same: only the announcement failed.
    expect(one.kernel.nft.translates(FLOATING)).toBe("10.244.0.5");
    refuse = false;
    one.reconciler.markDirty();
    while (one.reconciler.lastError !== undefined) await new Promise((r) => setTimeout(r, 5));
    controller.abort();
    await running;
  });
});

describe("one bad record", () => {
  it("is skipped and counted while the rest of the node is programmed", async () => {
    const { kv, agent } = await setup();
    const put = (key: string, value: unknown) => ({ put: key, value: JSON.stringify(value) });
    const second = "203.0.113.11";
    await kv.txn(
      [],
      [
        // Pod c claims pod a's address as its own (a stale record): both opt in to egress.
        put(keys.endpoint("node-1", "a", "eth0"), {
          ...endpoint("node-1", "a", "10.244.0.5", "calia", true),
          egress: true,
        }),
        put(keys.endpoint("node-1", "c", "eth0"), {
          ...endpoint("node-1", "c", "10.244.0.5", "calib", false),
          ipNATs: [{ internalIP: "10.244.0.5", externalIP: second }],
          egress: true,
        }),
        put(keys.claim(second), { ...claim("node-1", "c", "10.244.0.5"), ip: second }),
        // Node "peer" at .20 and BGPPeer "192.168.200.20" are both neighbor peer_192.168.200.20.
        put(keys.node("peer"), { name: "peer", addresses: ["192.168.200.20"] }),
        put(keys.bgpPeer("192.168.200.20"), {
          name: "192.168.200.20",
          peerIP: "192.168.200.254",
          asNumber: 64513,
        }),
      ],
    );
    const configs: string[] = [];
    const one = agent("node-1", {
      apply: async (config) => void configs.push(config),
      sessions: async () => [],
    });
    await one.reconcile();
    expect(one.kernel.nft.translates(FLOATING)).toBe("10.244.0.5");
    expect(one.kernel.nft.translates(second)).toBe("10.244.0.5");
    expect(
      one.reconciler.lastPlan?.bindings.filter((b) => b.egress).map((b) => b.floating),
    ).toEqual([FLOATING]);
    expect(configs.at(-1)?.match(/protocol bgp peer_peer_192_168_200_20 /g)).toHaveLength(1);
    expect(configs.at(-1)).toContain("neighbor 192.168.200.20 as 64512;");
    const refused = await one.metrics.registry.getSingleMetricAsString("buoy_floating_ip_refused");
    expect(refused).toMatch(/reason="duplicate egress source"} 1$/m);
    expect(refused).toMatch(/reason="duplicate BGP neighbor name"} 1$/m);
    // Nothing is left to do: the next reconcile reads the kernel back and changes nothing.
    one.reconciler.markDirty("verify");
    const journal = one.kernel.nft.journal.length;
    await one.reconcile();
    expect(one.kernel.nft.journal.length).toBe(journal);
  });
});

describe("collectGarbage", () => {
  it("runs after a complete read, after its plan, between its kernel sync and its status writes and at its end; before, within (between the tables and the routes) and after a read-back; not for a change", async () => {
    const { kv, agent } = await setup();
    let collections = 0;
    const one = agent("node-1", undefined, () => (collections += 1));
    await one.reconcile();
    expect(collections).toBe(4);
    await kv.txn([], [{ delete: keys.endpoint("node-1", "a", "eth0") }]);
    await one.reconcile();
    expect(collections).toBe(4);
    // The resync timer's read-back: before, between its two listings, after.
    one.reconciler.markDirty("verify");
    await one.reconcile();
    expect(collections).toBe(7);
  });
});

describe("a change after the first sync (issue 14)", () => {
  it("makes only what it touches: one element batch, one route, its own status; nothing read back", async () => {
    const { kv, one } = await setup();
    const put = (key: string, value: unknown) => ({ put: key, value: JSON.stringify(value) });
    // node-1 holds 40 floating IPs; one more is the change.
    const floating = (i: number) => `203.0.113.${100 + i}`;
    const bind = (i: number) => [
      put(keys.endpoint("node-1", `p${i}`, "eth0"), {
        ...endpoint("node-1", `p${i}`, `10.244.1.${i}`, "calia", false),
        ipNATs: [{ internalIP: `10.244.1.${i}`, externalIP: floating(i) }],
      }),
      put(keys.claim(floating(i)), {
        ...claim("node-1", `p${i}`, `10.244.1.${i}`),
        ip: floating(i),
      }),
    ];
    await kv.txn([], Array.from({ length: 40 }, (_, i) => bind(i)).flat());
    await one.reconcile();
    expect(one.reconciler.lastPlan?.bindings).toHaveLength(41);
    const statusRevision = (await kv.get(keys.status("node-1", floating(3))))?.modRevision;
    const { nft, routes } = one.kernel;
    nft.reads = 0;
    nft.journal.length = 0;
    const journal: string[] = [];
    const apply = routes.apply.bind(routes);
    routes.apply = async (added, removed) => {
      journal.push(
        `routes +${added.map((r) => r.dst).join()} -${removed.map((r) => r.dst).join()}`,
      );
      return apply(added, removed);
    };

    await kv.txn([], bind(40));
    await one.reconcile();
    await one.reconcile(); // its own status write comes back through the watch: nothing to do
    expect(nft.reads).toBe(0);
    expect(nft.journal).toEqual(["elements ipv4"]);
    expect(journal).toEqual([`routes +${floating(40)}/32 -`]);
    expect(nft.translates(floating(40))).toBe("10.244.1.40");
    expect(JSON.parse((await kv.get(keys.status("node-1", floating(40))))!.value).internalIP).toBe(
      "10.244.1.40",
    );
    expect((await kv.get(keys.status("node-1", floating(3))))?.modRevision).toBe(statusRevision);

    // The claim taken away: the binding, its route and its status go, the rest stays.
    await kv.txn([], [{ delete: keys.claim(floating(7)) }]);
    await one.reconcile();
    expect(nft.translates(floating(7))).toBeUndefined();
    expect(nft.translates(floating(8))).toBe("10.244.1.8");
    expect(journal.at(-1)).toBe(`routes + -${floating(7)}/32`);
    const gauges = async (name: string) => one.metrics.registry.getSingleMetricAsString(name);
    expect(await gauges("buoy_routes")).toMatch(/kind="pod"} 41$/m);
    expect(await gauges("buoy_floating_ip_bindings")).toMatch(/family="ipv4"} 41$/m);
    expect(await kv.get(keys.status("node-1", floating(7)))).toBeUndefined();
    expect(nft.reads).toBe(0);

    // The resync timer reads the kernel back and finds nothing to change.
    nft.journal.length = 0;
    one.reconciler.markDirty("verify");
    await one.reconcile();
    expect(nft.reads).toBeGreaterThan(0);
    expect(nft.journal).toEqual([]);
  });

  it("writes its status record again when someone else deletes it, touching nothing else", async () => {
    const { kv, one } = await setup();
    await one.reconcile();
    await one.reconcile(); // its own writes coming back
    const journal = one.kernel.nft.journal.length;
    await kv.txn([], [{ delete: keys.status("node-1", FLOATING) }]);
    await one.reconcile();
    expect(JSON.parse((await kv.get(keys.status("node-1", FLOATING)))!.value).internalIP).toBe(
      "10.244.0.5",
    );
    expect(one.kernel.nft.journal.length).toBe(journal);
  });

  it("replaces the table when the kernel refuses the element batch, and keeps going", async () => {
    const { kv, one } = await setup();
    await one.reconcile();
    one.kernel.nft.refuseElementChanges = true;
    await kv.txn(
      [],
      [
        {
          put: keys.claim(FLOATING),
          value: JSON.stringify(claim("node-1", "someone-else", "10.244.0.5")),
        },
      ],
    );
    await one.reconcile();
    expect(one.kernel.nft.translates(FLOATING)).toBeUndefined();
    expect(one.kernel.nft.journal.at(-1)).toBe("replace ipv4");
  });
});
