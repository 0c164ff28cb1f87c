// The resync tick with the kernel's change notices (issue 14): a tick reads
// the kernel back only when the notices cannot vouch for it, and a change
// reads no interface listing. On the fakes, whose notices pass the same
// conformance suite as the kernel's.
import { afterEach, describe, expect, it } from "vitest";
import { FLOATING_POOL } from "../../test/support/agent-records.js";
import { FakeKernelMonitor } from "../../test/support/fake-kernel-monitor.js";
import { FakeNft } from "../../test/support/fake-nft.js";
import { FakeConntrack, FakeRoutes } from "../../test/support/fake-routes.js";
import { kernelMonitorConformance } from "../../test/support/kernel-monitor-conformance.js";
import { EtcdAgentSource } from "../etcd/etcd-agent-source.js";
import { MemoryKv } from "../etcd/memory-kv.js";
import { keys } from "../etcd/store.js";
import { createStreamLogger } from "../log/logger.js";
import type { WorkloadEndpoint } from "../model/records.js";
import { KernelWatch } from "./kernel-watch.js";
import { createMetrics } from "./metrics.js";
import { Reconciler } from "./reconciler.js";

kernelMonitorConformance("FakeKernelMonitor over FakeNft and FakeRoutes", async () => {
  const nft = new FakeNft();
  const routes = new FakeRoutes({ interfaces: ["lo", "calia"] });
  return {
    monitor: new FakeKernelMonitor(nft, routes),
    nft,
    routes,
    link: "calia",
    spareLink: "calix",
    addLink: async (name) => routes.addInterface(name),
    removeLink: async (name) => routes.removeInterface(name),
    deleteTranslation: async (family, floating) => nft.deleteTranslation(family, floating),
    waitMs: 100,
  };
});

describe("KernelWatch", () => {
  const held = (bindings: Record<string, string>, routes: string[] = []) => ({
    binding: (floating: string) =>
      bindings[floating] ? { family: 4 as const, pod: bindings[floating] } : undefined,
    hasRoute: (key: string) => routes.includes(key),
  });
  const dnat = (key: string, value: string, present: boolean) =>
    ({ kind: "element", family: 4, map: "fip_dnat", key, value, present }) as const;

  it("reads back until a read-back with the monitor running set the baseline", () => {
    const watch = new KernelWatch();
    expect(watch.mustReadBack(held({}))).toBe(true);
    watch.readBack(watch.generation); // no monitor: no baseline
    expect(watch.mustReadBack(held({}))).toBe(true);
    watch.started(new Map([[1, "lo"]]));
    const generation = watch.generation;
    watch.started(new Map([[1, "lo"]])); // restarted while the read ran
    watch.readBack(generation);
    expect(watch.mustReadBack(held({}))).toBe(true);
    watch.readBack(watch.generation);
    expect(watch.mustReadBack(held({}))).toBe(false);
  });

  it("compares each element and route by its last notice", () => {
    const watch = new KernelWatch();
    watch.started(new Map());
    watch.readBack(watch.generation);
    // Its own move of 1.1.1.1 from .5 to .6: deleted, then added.
    watch.take([dnat("1.1.1.1", "10.0.0.5", false), dnat("1.1.1.1", "10.0.0.6", true)]);
    watch.take([{ kind: "route", key: "1.1.1.1/32 dev calib", present: true }]);
    expect(watch.mustReadBack(held({ "1.1.1.1": "10.0.0.6" }, ["1.1.1.1/32 dev calib"]))).toBe(
      false,
    );
    // Someone deleted it: the held binding is not in the kernel.
    watch.take([dnat("1.1.1.1", "10.0.0.6", false)]);
    expect(watch.mustReadBack(held({ "1.1.1.1": "10.0.0.6" }))).toBe(true);
    // Someone added one buoy does not hold.
    watch.take([dnat("9.9.9.9", "10.0.0.9", true)]);
    expect(watch.mustReadBack(held({}))).toBe(true);
    watch.take([{ kind: "route", key: "1.1.1.1/32 dev calib", present: false }]);
    expect(watch.mustReadBack(held({}, ["1.1.1.1/32 dev calib"]))).toBe(true);
    watch.take([{ kind: "table" }]);
    expect(watch.mustReadBack(held({}))).toBe(true);
    watch.lost();
    expect(watch.interfaces()).toBeUndefined();
  });

  it("keeps the interfaces by index, and says when a name came, went or changed", () => {
    const watch = new KernelWatch();
    watch.started(new Map([[1, "lo"]]));
    expect(watch.take([{ kind: "link", index: 1, name: "lo", present: true }])).toBe(false);
    expect(watch.take([{ kind: "link", index: 7, name: "calia", present: true }])).toBe(true);
    expect(watch.take([{ kind: "link", index: 7, name: "calib", present: true }])).toBe(true);
    expect([...(watch.interfaces() ?? [])]).toEqual(["lo", "calib"]);
    expect(watch.take([{ kind: "link", index: 7, name: "calib", present: false }])).toBe(true);
    expect([...(watch.interfaces() ?? [])]).toEqual(["lo"]);
  });
});

const FLOATING = "203.0.113.10";
const endpoint = (containerID: string, ip: string, ifname: string, floating?: string) =>
  ({
    node: "node-1",
    namespace: "default",
    pod: containerID,
    containerID,
    endpoint: "eth0",
    interfaceName: ifname,
    mac: "",
    ipNetworks: [`${ip}/32`],
    ipNATs: floating ? [{ internalIP: ip, externalIP: floating }] : [],
    network: "k8s-pod-network",
    createdAt: "",
  }) satisfies WorkloadEndpoint;
const claim = (containerID: string, ip: string, internalIP: string) => ({
  ip,
  namespace: "default",
  pod: containerID,
  containerID,
  node: "node-1",
  internalIP,
  createdAt: "",
});

const running: AbortController[] = [];
afterEach(() => {
  for (const run of running.splice(0)) run.abort();
});

async function until(what: string, condition: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function agentWithMonitor() {
  const kv = new MemoryKv();
  const put = (key: string, value: unknown) => ({ put: key, value: JSON.stringify(value) });
  await kv.txn(
    [],
    [
      put(keys.pool("floating"), FLOATING_POOL),
      put(keys.endpoint("node-1", "a", "eth0"), endpoint("a", "10.244.0.5", "calia", FLOATING)),
      put(keys.claim(FLOATING), claim("a", FLOATING, "10.244.0.5")),
    ],
  );
  const nft = new FakeNft();
  const routes = new FakeRoutes({ interfaces: ["lo", "calia"] });
  const monitor = new FakeKernelMonitor(nft, routes);
  const logger = createStreamLogger(() => {}, "error");
  const source = new EtcdAgentSource({
    kv,
    node: "node-1",
    routing: "none",
    logger,
    statusTtlSeconds: 10,
  });
  const reconciler = new Reconciler({
    source,
    node: "node-1",
    ports: { nft, routes, conntrack: new FakeConntrack() },
    monitor,
    logger,
    metrics: createMetrics(),
    floatingIpsEnabled: () => true,
  });
  const run = new AbortController();
  running.push(run);
  void source.watch(run.signal, { changed: () => reconciler.markDirty(), connected: () => {} });
  void reconciler.run(run.signal);
  await until("the first sync and the monitor", () => reconciler.synced && monitor.running);
  let ticks = 0;
  /** A resync tick, and its reconcile done. */
  const tick = async () => {
    const before = reconciler.lastSuccessAt;
    ticks += 1;
    await new Promise((resolve) => setTimeout(resolve, 2));
    reconciler.markDirty("verify");
    await until(`tick ${ticks}`, () => reconciler.lastSuccessAt > before);
  };
  return { kv, put, nft, routes, monitor, reconciler, tick };
}

describe("the resync tick with the kernel's notices", () => {
  it("reads back once after the monitor starts, then only what the notices cannot vouch for", async () => {
    const { nft, routes, tick } = await agentWithMonitor();
    await tick(); // the baseline
    const [reads, listings, journal] = [nft.reads, routes.interfaceReads, nft.journal.length];
    await tick();
    await tick();
    expect(nft.reads).toBe(reads);
    expect(routes.interfaceReads).toBe(listings);
    expect(nft.journal.length).toBe(journal);
    // Someone deletes the translation: the next tick reads back and repairs it.
    nft.deleteTranslation(4, FLOATING);
    expect(nft.translates(FLOATING)).toBeUndefined();
    await tick();
    expect(nft.reads).toBeGreaterThan(reads);
    expect(nft.translates(FLOATING)).toBe("10.244.0.5");
  });

  it("takes its own changes as they come back, and a new pod's interface from the notices", async () => {
    const { kv, put, nft, routes, reconciler, tick } = await agentWithMonitor();
    await tick();
    const [reads, listings] = [nft.reads, routes.interfaceReads];
    routes.addInterface("calib");
    await kv.txn(
      [],
      [
        put(
          keys.endpoint("node-1", "b", "eth0"),
          endpoint("b", "10.244.0.6", "calib", "203.0.113.11"),
        ),
        put(keys.claim("203.0.113.11"), claim("b", "203.0.113.11", "10.244.0.6")),
      ],
    );
    await until("the new binding", () => nft.translates("203.0.113.11") === "10.244.0.6");
    await tick();
    expect(nft.reads).toBe(reads);
    expect(routes.interfaceReads).toBe(listings);
    // Its veth goes: the binding waits, without a listing.
    routes.removeInterface("calib");
    await until("the binding withdrawn", () => nft.translates("203.0.113.11") === undefined);
    expect(routes.interfaceReads).toBe(listings);
    expect(reconciler.lastError).toBeUndefined();
  });

  it("reads back whole while the monitor is lost, and starts it again", async () => {
    const { nft, monitor, tick } = await agentWithMonitor();
    await tick();
    monitor.lose();
    const reads = nft.reads;
    await tick();
    expect(nft.reads).toBeGreaterThan(reads);
    await until("the monitor started again", () => monitor.starts === 2 && monitor.running, 3000);
  });
});
