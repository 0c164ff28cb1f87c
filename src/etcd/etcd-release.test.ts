import { describe, expect, it } from "vitest";
import { MemoryKv } from "./memory-kv.js";
import type { FloatingIpClaim, WorkloadEndpoint } from "../model/records.js";
import { keys, Store } from "./store.js";
import { releaseContainer } from "./etcd-release.js";

const endpoint = (ifname: string, ip: string, floating: string): WorkloadEndpoint => ({
  node: "node-1",
  namespace: "default",
  pod: "multi",
  containerID: "c1",
  endpoint: ifname,
  interfaceName: `cali${ifname}`,
  mac: "",
  ipNetworks: [`${ip}/32`],
  ipNATs: [{ internalIP: ip, externalIP: floating }],
  network: ifname === "eth0" ? "k8s-pod-network" : "second",
  createdAt: "",
});
const claim = (ip: string, internalIP: string): FloatingIpClaim => ({
  ip,
  namespace: "default",
  pod: "multi",
  containerID: "c1",
  node: "node-1",
  internalIP,
  createdAt: "",
});

async function twoInterfaces() {
  const kv = new MemoryKv();
  const put = (key: string, value: unknown) => ({ put: key, value: JSON.stringify(value) });
  await kv.txn(
    [],
    [
      put(keys.endpoint("node-1", "c1", "eth0"), endpoint("eth0", "10.244.0.5", "203.0.113.1")),
      put(keys.endpoint("node-1", "c1", "net1"), endpoint("net1", "10.245.0.5", "203.0.113.2")),
      put(keys.claim("203.0.113.1"), claim("203.0.113.1", "10.244.0.5")),
      put(keys.claim("203.0.113.2"), claim("203.0.113.2", "10.245.0.5")),
    ],
  );
  return { kv, store: new Store(kv) };
}

describe("releaseContainer()", () => {
  it("a DEL of one interface releases only the floating IPs of that interface's addresses", async () => {
    const { kv, store } = await twoInterfaces();
    const released = await releaseContainer(store, {
      node: "node-1",
      containerID: "c1",
      ifname: "net1",
    });
    expect(released.floatingIps).toEqual(["203.0.113.2"]);
    expect(await kv.get(keys.claim("203.0.113.1"))).toBeDefined();
    expect(await kv.get(keys.endpoint("node-1", "c1", "eth0"))).toBeDefined();
    expect(await kv.get(keys.endpoint("node-1", "c1", "net1"))).toBeUndefined();
    // Idempotent: the interface is gone, nothing more is released.
    expect(
      (await releaseContainer(store, { node: "node-1", containerID: "c1", ifname: "net1" }))
        .floatingIps,
    ).toEqual([]);
  });

  it("without an interface (GC) releases every claim of the container", async () => {
    const { kv, store } = await twoInterfaces();
    const released = await releaseContainer(store, { node: "node-1", containerID: "c1" });
    expect(released.floatingIps.sort()).toEqual(["203.0.113.1", "203.0.113.2"]);
    expect(await kv.list(keys.endpoints)).toEqual([]);
  });
});
