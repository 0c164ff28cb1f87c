// The FloatingIP controller on the etcd datastore (issue 15 item 4), against
// a real etcd: records as `buoy apply` writes them (FloatingIP, Pod), the
// endpoints and claims as the CNI plugin writes them, nodes' liveness keys
// under leases as the agents hold them. The agents' side (programming the
// move, the kernel) is the lab's test (test/e2e/failover.test.ts).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseManifests } from "../../src/cli/manifest.js";
import { createControllerMetrics } from "../../src/controller/controller-metrics.js";
import { applyInParts } from "../../src/etcd/apply-in-parts.js";
import { commitLiveChange } from "../../src/etcd/commit-live-change.js";
import { EtcdFloatingIpController } from "../../src/etcd/etcd-floating-ip-controller.js";
import { EtcdKv } from "../../src/etcd/etcd-kv.js";
import { EtcdLeaderLease } from "../../src/etcd/etcd-leader-lease.js";
import { commitPlan } from "../../src/etcd/etcd-state.js";
import { planDelete } from "../../src/etcd/plan-delete.js";
import { planFloatingIpSet } from "../../src/etcd/live-change.js";
import { keys, Store } from "../../src/etcd/store.js";
import type { FloatingIpStatusShape } from "../../src/model/floating-ip-resource.js";
import type { FloatingIpClaim, WorkloadEndpoint } from "../../src/model/records.js";
import { silentLogger } from "../../src/log/logger.js";
import { startEtcd, type Etcd } from "../support/harness.js";

const ADDRESS = "203.0.113.10";
let etcd: Etcd;
let store: Store;
const stop = new AbortController();
const metrics = createControllerMetrics();
const leases = new Map<string, string>();
let keepAlive: ReturnType<typeof setInterval> | undefined;

beforeAll(async () => {
  etcd = await startEtcd();
  store = new Store(new EtcdKv({ endpoints: [etcd.endpoint] }));
  await apply(`
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: pods}
spec: {cidr: 10.244.0.0/16}
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: floating}
spec: {cidr: 203.0.113.0/24, disabled: true}
`);
  for (const node of ["node-1", "node-2"]) await nodeUp(node);
  keepAlive = setInterval(() => {
    for (const lease of leases.values()) void store.kv.keepAliveLease(lease).catch(() => false);
  }, 500);
  // web-a Ready longest, web-b later; an intruder of another namespace with the same labels.
  await pod("shop", "web-a", "node-1", "2026-12-04T06:00:00Z");
  await pod("shop", "web-b", "node-2", "2026-12-04T06:01:00Z");
  await pod("other", "intruder", "node-1", "2026-12-04T05:00:00Z");
  await endpoint("shop", "web-a", "node-1", "10.244.0.5");
  await endpoint("shop", "web-b", "node-2", "10.244.1.5");
  await endpoint("other", "intruder", "node-1", "10.244.0.9");
  // A victim in another namespace holding 203.0.113.99 by its annotation.
  await endpoint("bank", "vault", "node-2", "10.244.1.9");
  const live = await store.readLiveState();
  expect(
    await commitLiveChange(store.kv, planFloatingIpSet(live, "bank/vault", ["203.0.113.99"])),
  ).toBe(true);
  void new EtcdFloatingIpController({
    store,
    logger: silentLogger,
    metrics,
    now: () => performance.now(),
  }).run(stop.signal);
});

afterAll(async () => {
  stop.abort();
  if (keepAlive) clearInterval(keepAlive);
  await etcd?.stop();
});

async function apply(text: string): Promise<void> {
  await applyInParts(store, parseManifests(text), "apply");
}

/** `buoy delete floatingip <namespace/name>`, as the CLI plans and commits it. */
async function deleteFloatingIp(name: string): Promise<void> {
  await commitPlan(store, (state) => planDelete(state, [{ kind: "FloatingIP", name }]), "delete");
}

async function nodeUp(node: string): Promise<void> {
  const lease = await store.kv.grantLease(2);
  leases.set(node, lease);
  await store.kv.txn([], [{ put: keys.nodeAlive(node), value: "{}", lease }]);
}

async function nodeLost(node: string): Promise<void> {
  const lease = leases.get(node);
  leases.delete(node);
  if (lease) await store.kv.revokeLease(lease);
}

const uid = (pod: string) => `uid-${pod}`;

async function pod(
  namespace: string,
  name: string,
  node: string,
  readySince: string,
  ready = true,
) {
  await apply(`
apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${namespace}, uid: ${uid(name)}, labels: {app: web}, creationTimestamp: "2026-12-04T05:00:00Z"}
spec: {nodeName: ${node}}
status: {conditions: [{type: Ready, status: "${ready ? "True" : "False"}", lastTransitionTime: "${readySince}"}]}
`);
}

async function endpoint(namespace: string, name: string, node: string, ip: string) {
  const value: WorkloadEndpoint = {
    node,
    namespace,
    pod: name,
    containerID: `c-${name}`,
    endpoint: "eth0",
    interfaceName: `cali${name}`,
    mac: "02:00:00:00:00:01",
    ipNetworks: [`${ip}/32`],
    ipNATs: [],
    network: "k8s-pod-network",
    createdAt: "2026-12-04T05:00:00.000Z",
    podUID: uid(name),
  };
  await store.kv.txn(
    [],
    [{ put: keys.endpoint(node, value.containerID, "eth0"), value: JSON.stringify(value) }],
  );
}

async function read<T>(key: string): Promise<T | undefined> {
  const entry = await store.kv.get(key);
  return entry && (JSON.parse(entry.value) as T);
}

const claim = () => read<FloatingIpClaim>(keys.claim(ADDRESS));
const status = (namespace = "shop", name = "web") =>
  read<FloatingIpStatusShape>(keys.floatingIpStatus(namespace, name));
const natsOf = async (name: string, node: string) =>
  (await read<WorkloadEndpoint>(keys.endpoint(node, `c-${name}`, "eth0")))?.ipNATs ?? [];
const condition = async (type: string, namespace?: string, name?: string) =>
  (await status(namespace, name))?.conditions?.find((c) => c.type === type);

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function metric(name: string, labels: string): Promise<number> {
  const text = await metrics.registry.metrics();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.split(" ").at(-1)) : 0;
}

async function programmedOn(node: string, internalIP: string) {
  await store.kv.txn(
    [],
    [
      {
        put: keys.status(node, ADDRESS),
        value: JSON.stringify({
          ip: ADDRESS,
          node,
          internalIP,
          programmedSince: new Date().toISOString(),
        }),
      },
    ],
  );
}

describe("the FloatingIP controller on etcd", () => {
  it("gives a FloatingIP to the pod Ready longest it selects in its namespace, claim and endpoint together", async () => {
    await apply(`
apiVersion: buoy.dev/v1
kind: FloatingIP
metadata: {name: web, namespace: shop}
spec: {address: ${ADDRESS}, podSelector: {matchLabels: {app: web}}}
`);
    const held = await until("the claim", async () => (await claim())?.pod === "web-a" && claim());
    expect(held).toMatchObject({
      namespace: "shop",
      node: "node-1",
      internalIP: "10.244.0.5",
      floatingIP: "shop/web",
    });
    expect(await natsOf("web-a", "node-1")).toEqual([
      { internalIP: "10.244.0.5", externalIP: ADDRESS },
    ]);
    expect(await natsOf("intruder", "node-1")).toEqual([]);
    await until("status Assigned", async () => (await condition("Assigned"))?.status === "True");
    expect(await condition("Programmed")).toMatchObject({ status: "False", reason: "Pending" });
    await programmedOn("node-1", "10.244.0.5");
    await until(
      "status Programmed",
      async () => (await condition("Programmed"))?.status === "True",
    );
    expect(await status()).toMatchObject({ holder: { pod: "web-a", node: "node-1" }, ready: true });
  });

  it("moves it when the holder turns NotReady, and not back when it recovers", async () => {
    await pod("shop", "web-a", "node-1", "2026-12-04T06:05:00Z", false);
    await until("the move to web-b", async () => (await claim())?.pod === "web-b");
    expect(await claim()).toMatchObject({
      node: "node-2",
      internalIP: "10.244.1.5",
      floatingIP: "shop/web",
    });
    expect(await natsOf("web-a", "node-1")).toEqual([]);
    expect(await natsOf("web-b", "node-2")).toEqual([
      { internalIP: "10.244.1.5", externalIP: ADDRESS },
    ]);
    expect(await metric("buoy_floating_ip_failovers_total", 'reason="NotReady"')).toBe(1);
    await programmedOn("node-2", "10.244.1.5");
    await until(
      "the failover timed",
      async () =>
        (await metric("buoy_floating_ip_failover_seconds_count", 'reason="NotReady"')) === 1,
    );
    await pod("shop", "web-a", "node-1", "2026-12-04T06:06:00Z");
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await claim())?.pod).toBe("web-b");
  });

  it("moves it when the holder's node is lost (its liveness key expires)", async () => {
    await nodeLost("node-2");
    // The key's deletion is the event: moved well before any retry would (loose bound).
    await until("the move to web-a", async () => (await claim())?.pod === "web-a", 2000);
    expect(await natsOf("web-b", "node-2")).toEqual([]);
    expect(await metric("buoy_floating_ip_failovers_total", 'reason="NodeLost"')).toBe(1);
  });

  it("with its holder deleted and no other pod eligible, no one holds it until one is", async () => {
    // The DEL of web-a: its claims and endpoint go (etcd-release.ts does so in one transaction).
    await store.kv.txn(
      [],
      [{ delete: keys.claim(ADDRESS) }, { delete: keys.endpoint("node-1", "c-web-a", "eth0") }],
    );
    await until("NoReadyPod", async () => (await condition("Assigned"))?.reason === "NoReadyPod");
    expect(await claim()).toBeUndefined();
    await nodeUp("node-2");
    await until("web-b holding it again", async () => (await claim())?.pod === "web-b", 2000);
    expect(await metric("buoy_floating_ip_failovers_total", 'reason="Deleted"')).toBe(1);
  });

  it("spec.egress marks its claim in place, holder unchanged, and unmarks it", async () => {
    const web = (egress: boolean) =>
      apply(`
apiVersion: buoy.dev/v1
kind: FloatingIP
metadata: {name: web, namespace: shop}
spec: {address: ${ADDRESS}, podSelector: {matchLabels: {app: web}}, egress: ${egress}}
`);
    await web(true);
    const marked = await until("the claim marked", async () => (await claim())?.egress && claim());
    expect(marked).toMatchObject({ pod: "web-b", node: "node-2", floatingIP: "shop/web" });
    expect(await natsOf("web-b", "node-2")).toEqual([
      { internalIP: "10.244.1.5", externalIP: ADDRESS },
    ]);
    await web(false);
    await until("the mark gone", async () => (await claim())?.egress === undefined);
    expect((await claim())?.pod).toBe("web-b");
    expect(await metric("buoy_floating_ip_failovers_total", 'reason="Deleted"')).toBe(1);
  });

  it("a FloatingIP asking for another namespace's held address is refused, and the holder keeps it", async () => {
    await pod("evil", "grabber", "node-1", "2026-12-04T05:00:00Z");
    await endpoint("evil", "grabber", "node-1", "10.244.0.66");
    await apply(`
apiVersion: buoy.dev/v1
kind: FloatingIP
metadata: {name: grab, namespace: evil}
spec: {address: 203.0.113.99, podSelector: {}}
`);
    await until(
      "AddressInUse",
      async () => (await condition("Assigned", "evil", "grab"))?.reason === "AddressInUse",
    );
    expect((await condition("Assigned", "evil", "grab"))?.message).not.toContain("vault");
    expect(await read<FloatingIpClaim>(keys.claim("203.0.113.99"))).toMatchObject({
      namespace: "bank",
      pod: "vault",
    });
    expect(await natsOf("grabber", "node-1")).toEqual([]);
  });

  it("deleting the FloatingIP releases its claim, its endpoint's NAT and its status", async () => {
    await deleteFloatingIp("shop/web");
    await until("the claim released", async () => !(await claim()));
    expect(await natsOf("web-b", "node-2")).toEqual([]);
    expect(await status()).toBeUndefined();
  });
});

describe("a FloatingIP with spec.pool on etcd", () => {
  const statusOf = (name: string) => status("shop", name);
  const pooled = (name: string) =>
    apply(`
apiVersion: buoy.dev/v1
kind: FloatingIP
metadata: {name: ${name}, namespace: shop}
spec: {pool: tiny, podSelector: {matchLabels: {app: web}}}
`);

  it("gets the pool's free address, keeps it while no pod holds it, and frees it when deleted", async () => {
    // tiny offers 198.51.100.1 and .2; bank/vault's annotation holds .1.
    await apply(`
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: tiny}
spec: {cidr: 198.51.100.0/30, blockSize: 30, disabled: true}
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: bankonly}
spec: {cidr: 198.51.100.64/28, blockSize: 28, disabled: true, namespaceSelector: "tier == 'bank'"}
`);
    const live = await store.readLiveState();
    expect(
      await commitLiveChange(
        store.kv,
        planFloatingIpSet(live, "bank/vault", ["203.0.113.99", "198.51.100.1"]),
      ),
    ).toBe(true);
    await pooled("pooled");
    const held = await until("the claim of 198.51.100.2", async () => {
      const claim = await read<FloatingIpClaim>(keys.claim("198.51.100.2"));
      return claim?.floatingIP === "shop/pooled" && claim;
    });
    expect(held).toMatchObject({ pod: "web-b", node: "node-2" });
    expect(await natsOf("web-b", "node-2")).toContainEqual({
      internalIP: "10.244.1.5",
      externalIP: "198.51.100.2",
    });
    await until(
      "status.address",
      async () => (await statusOf("pooled"))?.address === "198.51.100.2",
    );
    expect(await read<FloatingIpClaim>(keys.claim("198.51.100.1"))).toMatchObject({ pod: "vault" });

    // A second one finds the pool full, and says so.
    await pooled("second");
    await until(
      "PoolExhausted",
      async () => (await condition("Assigned", "shop", "second"))?.reason === "PoolExhausted",
    );
    expect((await condition("Assigned", "shop", "second"))?.message).toBe(
      "no free address in IP pool tiny (32 tried)",
    );

    // No pod it selects: the claim goes, the address stays the FloatingIP's.
    await apply(`
apiVersion: v1
kind: Pod
metadata: {name: web-b, namespace: shop, uid: ${uid("web-b")}, labels: {app: other}, creationTimestamp: "2026-12-04T05:00:00Z"}
spec: {nodeName: node-2}
status: {conditions: [{type: Ready, status: "True", lastTransitionTime: "2026-12-04T06:10:00Z"}]}
`);
    await until("released", async () => !(await read(keys.claim("198.51.100.2"))));
    expect((await statusOf("pooled"))?.address).toBe("198.51.100.2");
    await pod("shop", "web-b", "node-2", "2026-12-04T06:11:00Z");
    await until("held again, the same address", async () => {
      const claim = await read<FloatingIpClaim>(keys.claim("198.51.100.2"));
      return claim?.floatingIP === "shop/pooled";
    });

    // Deleted: its address is free, and the waiting one gets it (on its retry).
    await deleteFloatingIp("shop/pooled");
    const next = await until(
      "the second one holding 198.51.100.2",
      async () => {
        const claim = await read<FloatingIpClaim>(keys.claim("198.51.100.2"));
        return claim?.floatingIP === "shop/second" && claim;
      },
      10_000,
    );
    expect(next.pod).toBe("web-b");
  });

  it("refuses at apply a pool the namespace may not use, and one that does not exist", async () => {
    const ask = (pool: string) =>
      apply(`
apiVersion: buoy.dev/v1
kind: FloatingIP
metadata: {name: grab, namespace: shop}
spec: {pool: ${pool}, podSelector: {}}
`);
    await expect(ask("bankonly")).rejects.toThrow(
      "FloatingIP shop/grab: IP pool bankonly is not one namespace shop may use",
    );
    await expect(ask("nowhere")).rejects.toThrow(
      "FloatingIP shop/grab: spec.pool names no IP pool: 'nowhere'",
    );
    expect(await read(keys.floatingIp("shop", "grab"))).toBeUndefined();
  });
});

describe("the controller's election on etcd", () => {
  it("one replica holds the key; a clean stop hands it to the other at once", async () => {
    const now = () => performance.now();
    const first = new EtcdLeaderLease({ kv: store.kv, identity: "a", ttlSeconds: 3, now });
    const second = new EtcdLeaderLease({ kv: store.kv, identity: "b", ttlSeconds: 3, now });
    expect(await first.tryAcquireOrRenew()).toBe(true);
    expect(await second.tryAcquireOrRenew()).toBe(false);
    expect(await first.tryAcquireOrRenew()).toBe(true);
    expect([first.leading, second.leading]).toEqual([true, false]);
    await first.release();
    expect(await second.tryAcquireOrRenew()).toBe(true);
    expect(await first.tryAcquireOrRenew()).toBe(false);
    await second.release();
  });
});
