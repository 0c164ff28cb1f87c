// A live change past one etcd transaction (ADR 0012) against a real etcd:
// a pod grown from 1 to 200 floating IPs and back, as `buoy floatingip set`
// commits it (src/etcd/commit-live-change.ts).
import { afterAll, beforeAll, expect, it } from "vitest";
import { commitLiveChange } from "../../src/etcd/commit-live-change.js";
import { EtcdKv } from "../../src/etcd/etcd-kv.js";
import { planFloatingIpSet } from "../../src/etcd/live-change.js";
import { keys, Store } from "../../src/etcd/store.js";
import { validatePool } from "../../src/ipam/pool.js";
import type { WorkloadEndpoint } from "../../src/model/records.js";
import { startEtcd, type Etcd } from "../support/harness.js";

let etcd: Etcd;
beforeAll(async () => {
  etcd = await startEtcd();
});
afterAll(async () => {
  await etcd?.stop();
});

const range = (first: number, count: number) =>
  Array.from({ length: count }, (_, i) => `203.0.113.${first + i}`);

it("a pod grows from 1 to 200 floating IPs and back on real etcd, claims and endpoint together", async () => {
  const store = new Store(new EtcdKv({ endpoints: [etcd.endpoint] }));
  await store.putPool(validatePool("pods", { cidr: "10.244.0.0/16" }));
  await store.putPool(validatePool("floating", { cidr: "203.0.113.0/24", disabled: true }));
  const endpoint: WorkloadEndpoint = {
    node: "node-1",
    namespace: "default",
    pod: "many",
    containerID: "c-many",
    endpoint: "eth0",
    interfaceName: "calimany",
    mac: "02:00:00:00:00:01",
    ipNetworks: ["10.244.0.5/32"],
    ipNATs: [],
    network: "k8s-pod-network",
    createdAt: "",
  };
  await store.kv.txn(
    [],
    [{ put: keys.endpoint("node-1", "c-many", "eth0"), value: JSON.stringify(endpoint) }],
  );
  const set = async (ips: string[]) => {
    const started = performance.now();
    const plan = planFloatingIpSet(await store.readLiveState(), "default/many", ips, 240);
    expect(await commitLiveChange(store.kv, plan)).toBe(true);
    const state = await store.readLiveState();
    const nats = state.endpoints[0]?.value.ipNATs.map((nat) => nat.externalIP).sort();
    expect(nats).toEqual([...ips].sort());
    expect(state.claims.map((claim) => claim.value.ip).sort()).toEqual([...ips].sort());
    expect(state.claims.every((claim) => claim.value.containerID === "c-many")).toBe(true);
    return performance.now() - started;
  };
  await set(range(1, 1));
  const grownMs = await set(range(1, 200));
  const shrunkMs = await set(range(200, 1));
  console.info(
    `live change on real etcd: 1 to 200 floating IPs in ${grownMs.toFixed(0)} ms, back to 1 in ${shrunkMs.toFixed(0)} ms`,
  );
}, 60_000);
