// The agent in vxlan mode, on the fakes: the devices and the other node's
// peer are made before the routes through them, a floating IP hosted
// elsewhere is routed into the tunnel and follows a move, a node that leaves
// takes its peer, and a node switched to another mode removes its devices.
import { afterEach, describe, expect, it } from "vitest";
import { FLOATING_POOL } from "../../test/support/agent-records.js";
import { FakeNft } from "../../test/support/fake-nft.js";
import { FakeConntrack, FakeRoutes } from "../../test/support/fake-routes.js";
import { FakeTunnels } from "../../test/support/fake-tunnels.js";
import type { RoutingMode } from "../dataplane/routing-plan.js";
import { vtepMac } from "../dataplane/vxlan.js";
import { EtcdAgentSource } from "../etcd/etcd-agent-source.js";
import { ManualClock, MemoryKv } from "../etcd/memory-kv.js";
import { keys } from "../etcd/store.js";
import { createStreamLogger } from "../log/logger.js";
import type { WorkloadEndpoint } from "../model/records.js";
import { createMetrics } from "./metrics.js";
import { Reconciler } from "./reconciler.js";

const FLOATING = "203.0.113.10";
const put = (key: string, value: unknown) => ({ put: key, value: JSON.stringify(value) });

const endpoint = (
  node: string,
  containerID: string,
  ip: string,
  nat: boolean,
): WorkloadEndpoint => ({
  node,
  namespace: "default",
  pod: containerID,
  containerID,
  endpoint: "eth0",
  interfaceName: "calia",
  mac: "",
  ipNetworks: [`${ip}/32`],
  ipNATs: nat ? [{ internalIP: ip, externalIP: FLOATING }] : [],
  network: "k8s-pod-network",
  createdAt: "",
});

const watches: AbortController[] = [];
afterEach(() => {
  for (const watch of watches.splice(0)) watch.abort();
});

async function cluster() {
  const kv = new MemoryKv({ clock: new ManualClock() });
  await kv.txn(
    [],
    [
      put(keys.pool("floating"), FLOATING_POOL),
      put(keys.endpoint("node-1", "a", "eth0"), endpoint("node-1", "a", "10.244.0.5", true)),
      put(keys.claim(FLOATING), {
        ip: FLOATING,
        namespace: "default",
        pod: "a",
        containerID: "a",
        node: "node-1",
        internalIP: "10.244.0.5",
        createdAt: "",
      }),
      put(keys.node("node-1"), { name: "node-1", addresses: ["192.168.201.11"] }),
      put(keys.node("node-2"), { name: "node-2", addresses: ["192.168.202.12"] }),
    ],
  );
  const agent = (node: string, routing: RoutingMode = "vxlan") => {
    const routes = new FakeRoutes({ interfaces: ["calia"] });
    const tunnels = new FakeTunnels(routes.interfaces);
    tunnels.subnets = [node === "node-1" ? "192.168.201.0/24" : "192.168.202.0/24"];
    const logger = createStreamLogger(() => {}, "error");
    const source = new EtcdAgentSource({ kv, node, routing, logger, statusTtlSeconds: 10 });
    const reconciler = new Reconciler({
      source,
      node,
      ports: { nft: new FakeNft(), routes, conntrack: new FakeConntrack(), tunnels },
      logger,
      metrics: createMetrics(),
      floatingIpsEnabled: () => true,
      routing,
    });
    const watching = new AbortController();
    watches.push(watching);
    void source.watch(watching.signal, { changed: () => {}, connected: () => {} });
    const reconcile = async () => {
      await new Promise((resolve) => setImmediate(resolve));
      await reconciler.reconcile();
    };
    return { routes, tunnels, reconciler, reconcile };
  };
  return { kv, agent };
}

const tunnelled = (dst: string, via: string) => ({
  family: 4,
  dst,
  via,
  dev: "vxlan.buoy",
  onlink: true,
});

describe("the agent with --routing vxlan", () => {
  it("routes the floating IP node-1 hosts into the tunnel, through node-1's peer", async () => {
    const { agent } = await cluster();
    const one = agent("node-1");
    const two = agent("node-2");
    await one.reconcile();
    await two.reconcile();
    expect(await two.routes.read()).toEqual([tunnelled(`${FLOATING}/32`, "192.168.201.11")]);
    const held = await two.tunnels.read();
    expect(held.devices.map((device) => [device.name, device.local])).toEqual([
      ["vxlan.buoy", "192.168.202.12"],
    ]);
    const peer = { family: 4, address: "192.168.201.11", mac: vtepMac("node-1", 4) };
    expect(held.neighbours).toEqual([peer]);
    expect(held.forwarding).toEqual([peer]);
    // Asked again, nothing is written.
    const writes = two.tunnels.journal.length;
    two.reconciler.markDirty("complete");
    await two.reconcile();
    expect(two.tunnels.journal.length).toBe(writes);
  });

  it("a node that leaves takes its peer and the routes to it", async () => {
    const { kv, agent } = await cluster();
    const one = agent("node-1");
    const two = agent("node-2");
    await one.reconcile();
    await two.reconcile();
    await kv.txn([], [{ delete: keys.node("node-1") }]);
    await two.reconcile();
    expect(await two.routes.read()).toEqual([]);
    expect((await two.tunnels.read()).neighbours).toEqual([]);
  });

  it("a node switched to another mode removes the devices vxlan left", async () => {
    const { agent } = await cluster();
    await agent("node-1").reconcile();
    const before = agent("node-2");
    await before.reconcile();
    // The same node's kernel, its agent now started with --routing direct.
    const after = agent("node-2", "direct");
    const left = await before.tunnels.read();
    await after.tunnels.apply(
      { devices: left.devices, peers: left.neighbours },
      await after.tunnels.read(),
    );
    expect(after.routes.interfaces.has("vxlan.buoy")).toBe(true);
    await after.reconcile();
    expect(await after.tunnels.read()).toEqual({ devices: [], neighbours: [], forwarding: [] });
    expect(after.routes.interfaces.has("vxlan.buoy")).toBe(false);
    expect(await after.routes.read()).toEqual([
      { family: 4, dst: `${FLOATING}/32`, via: "192.168.201.11" },
    ]);
  });
});
