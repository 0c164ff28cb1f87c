// Review of the incremental agent (issue 14): sequences after which the
// agent's kernel differs from what a complete plan from the datastore gives,
// and stays so (the resync timer only reads the kernel back against the plan
// the agent holds).
import { FLOATING_POOL } from "../../test/support/agent-records.js";
import { afterEach, describe, expect, it } from "vitest";
import { MemoryKv } from "../etcd/memory-kv.js";
import type { Kv, KvRead, WatchSignal } from "../datastore/kv.js";
import type { FloatingIpClaim, WorkloadEndpoint } from "../model/records.js";
import { keys } from "../etcd/store.js";
import { createStreamLogger } from "../log/logger.js";
import { createMetrics } from "./metrics.js";
import { Reconciler } from "./reconciler.js";
import { EtcdAgentSource } from "../etcd/etcd-agent-source.js";
import type { RoutingMode } from "../dataplane/routing-plan.js";
import { FakeNft } from "../../test/support/fake-nft.js";
import { FakeConntrack, FakeRoutes } from "../../test/support/fake-routes.js";

const put = (key: string, value: unknown) => ({ put: key, value: JSON.stringify(value) });

const endpoint = (
  node: string,
  containerID: string,
  ip: string,
  ifname: string,
  floating: string[],
  extra: Partial<WorkloadEndpoint> = {},
): WorkloadEndpoint => ({
  node,
  namespace: "default",
  pod: containerID,
  containerID,
  endpoint: "eth0",
  interfaceName: ifname,
  mac: "",
  ipNetworks: [`${ip}/32`],
  ipNATs: floating.map((externalIP) => ({ internalIP: ip, externalIP })),
  network: "k8s-pod-network",
  createdAt: "",
  ...extra,
});

const claim = (
  ip: string,
  node: string,
  containerID: string,
  internalIP: string,
): FloatingIpClaim => ({
  ip,
  namespace: "default",
  pod: containerID,
  containerID,
  node,
  internalIP,
  createdAt: "",
});

const POOL = put(keys.pool("floating"), FLOATING_POOL);

/** The store holds the pool and pod `a` on n1, asking for .10 and holding its claim. */
const podA = () => [
  POOL,
  put(
    keys.endpoint("n1", "a", "eth0"),
    endpoint("n1", "a", "10.244.0.5", "calia", ["203.0.113.10"]),
  ),
  put(keys.claim("203.0.113.10"), claim("203.0.113.10", "n1", "a", "10.244.0.5")),
];

/** A MemoryKv whose key reads can be made to fail and whose watches can be cut. */
class FlakyKv {
  readonly inner = new MemoryKv();
  /** The next readMany fails when this says so. */
  failRead: ((reads: readonly KvRead[]) => boolean) | undefined;
  /** Prefixes whose next event is lost and whose stream then ends (re-watched at once). */
  readonly cut = new Set<string>();

  kv(): Kv {
    const inner = this.inner;
    return {
      get: (key) => inner.get(key),
      list: (prefix) => inner.list(prefix),
      listPage: (prefix, after, limit) => inner.listPage(prefix, after, limit),
      readMany: async (reads) => {
        if (this.failRead?.(reads)) {
          this.failRead = undefined;
          throw new Error("etcd unavailable");
        }
        return inner.readMany(reads);
      },
      txn: (compares, ops) => inner.txn(compares, ops),
      ping: () => inner.ping(),
      watch: (prefix, signal) => this.#watch(prefix, signal),
      grantLease: (ttl) => inner.grantLease(ttl),
      keepAliveLease: (id) => inner.keepAliveLease(id),
      revokeLease: (id) => inner.revokeLease(id),
    };
  }

  async *#watch(prefix: string, signal: AbortSignal): AsyncIterable<WatchSignal> {
    const controller = new AbortController();
    signal.addEventListener("abort", () => controller.abort(), { once: true });
    try {
      for await (const event of this.inner.watch(prefix, controller.signal)) {
        if (event !== "ready" && this.cut.has(prefix)) {
          this.cut.delete(prefix);
          throw new Error("watch stream ended");
        }
        yield event;
      }
    } finally {
      controller.abort();
    }
  }
}

const watches: AbortController[] = [];
afterEach(() => {
  for (const watch of watches.splice(0)) watch.abort();
});

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

function agentOn(
  kv: Kv,
  node: string,
  routing: RoutingMode = "none",
  interfaces = ["calia", "calib", "calic"],
  enabled = () => true,
) {
  const nft = new FakeNft();
  const routes = new FakeRoutes({ interfaces });
  const conntrack = new FakeConntrack();
  const logger = createStreamLogger(() => {}, "error");
  const source = new EtcdAgentSource({ kv, node, routing, logger, statusTtlSeconds: 10 });
  const reconciler = new Reconciler({
    source,
    node,
    ports: { nft, routes, conntrack },
    logger,
    metrics: createMetrics(),
    floatingIpsEnabled: enabled,
    routing,
  });
  const watching = new AbortController();
  watches.push(watching);
  void source.watch(watching.signal, { changed: () => {}, connected: () => {} });
  const reconcile = async () => {
    await tick();
    await reconciler.reconcile();
  };
  /** Reconciles until one succeeds (as the agent's loop retries). */
  const settle = async () => {
    for (let i = 0; i < 5; i++) {
      try {
        await reconcile();
        return;
      } catch {
        // retried
      }
    }
    throw new Error("never succeeded");
  };
  return { nft, routes, source, reconciler, reconcile, settle };
}

/** What a freshly started agent (a complete plan from the datastore) translates. */
async function complete(kv: Kv, node: string, routing: RoutingMode = "none", enabled = () => true) {
  const fresh = agentOn(kv, node, routing, undefined, enabled);
  await fresh.reconcile();
  return fresh;
}

describe("incremental agent vs a complete plan", () => {
  it("a readChanges that fails reading a newly wanted claim loses the endpoint change for good", async () => {
    const flaky = new FlakyKv();
    const kv = flaky.kv();
    await kv.txn([], podA());
    const one = agentOn(kv, "n1");
    await one.reconcile();
    expect(one.nft.translates("203.0.113.10")).toBe("10.244.0.5");

    // A new pod on this node with a floating IP (CNI ADD: claim and endpoint in one txn).
    await kv.txn(
      [],
      [
        put(
          keys.endpoint("n1", "b", "eth0"),
          endpoint("n1", "b", "10.244.0.6", "calib", ["203.0.113.11"]),
        ),
        put(keys.claim("203.0.113.11"), claim("203.0.113.11", "n1", "b", "10.244.0.6")),
      ],
    );
    // etcd hiccups while the agent reads the claim the new endpoint asks for.
    flaky.failRead = (reads) => reads.every((read) => "key" in read);
    await expect(one.reconcile()).rejects.toThrow("etcd unavailable");
    await one.settle(); // retried, etcd is back
    one.reconciler.markDirty("verify"); // and the resync timer
    await one.settle();

    expect((await complete(kv, "n1")).nft.translates("203.0.113.11")).toBe("10.244.0.6");
    expect(one.nft.translates("203.0.113.11")).toBe("10.244.0.6");
  });

  it("a complete read after a re-established watch that fails leaves what the watch missed unread for good", async () => {
    const flaky = new FlakyKv();
    const kv = flaky.kv();
    await kv.txn([], podA());
    const one = agentOn(kv, "n1");
    await one.reconcile();
    expect(one.nft.translates("203.0.113.10")).toBe("10.244.0.5");

    // The claim watch's stream ends, losing the event of the claim's release;
    // the watch is re-established at once (a gap: the next read is complete)...
    flaky.cut.add(keys.claims);
    await kv.txn([], [{ delete: keys.claim("203.0.113.10") }]);
    await tick();
    // ...but that complete read fails (etcd still flaky).
    flaky.failRead = () => true;
    await expect(one.reconcile()).rejects.toThrow("etcd unavailable");
    await one.settle();
    one.reconciler.markDirty("verify");
    await one.settle();

    expect((await complete(kv, "n1")).nft.translates("203.0.113.10")).toBeUndefined();
    expect(one.nft.translates("203.0.113.10")).toBeUndefined();
  });

  it("with floating IPs switched off, a change programs the endpoint it touches", async () => {
    const kv = new MemoryKv();
    await kv.txn([], podA());
    const off = () => false;
    const one = agentOn(kv, "n1", "none", undefined, off);
    await one.reconcile();
    expect(one.nft.translates("203.0.113.10")).toBeUndefined();

    // A new pod with a floating IP while the switch is off.
    await kv.txn(
      [],
      [
        put(
          keys.endpoint("n1", "b", "eth0"),
          endpoint("n1", "b", "10.244.0.6", "calib", ["203.0.113.11"]),
        ),
        put(keys.claim("203.0.113.11"), claim("203.0.113.11", "n1", "b", "10.244.0.6")),
      ],
    );
    await one.reconcile();
    one.reconciler.markDirty("verify");
    await one.reconcile();

    expect((await complete(kv, "n1", "none", off)).nft.translates("203.0.113.11")).toBeUndefined();
    expect(one.nft.translates("203.0.113.11")).toBeUndefined();
    expect(await kv.get(keys.status("n1", "203.0.113.11"))).toBeUndefined();
  });
});
