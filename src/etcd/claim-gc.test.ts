import { describe, expect, it } from "vitest";
import { ManualClock, MemoryKv } from "./memory-kv.js";
import type { Kv } from "../datastore/kv.js";
import type { FloatingIpClaim, WorkloadEndpoint } from "../model/records.js";
import { keys, Store } from "./store.js";
import { createStreamLogger } from "../log/logger.js";
import { ClaimCollector, findOrphanClaims } from "./claim-gc.js";

const claim = (ip: string, node: string, containerID: string): FloatingIpClaim => ({
  ip,
  namespace: "default",
  pod: `pod-${containerID}`,
  containerID,
  node,
  internalIP: "10.244.0.5",
  createdAt: "2026-11-26T00:00:00.000Z",
});
const endpoint = (node: string, containerID: string): WorkloadEndpoint => ({
  node,
  namespace: "default",
  pod: `pod-${containerID}`,
  containerID,
  endpoint: "eth0",
  interfaceName: "calia",
  mac: "",
  ipNetworks: ["10.244.0.5/32"],
  ipNATs: [],
  network: "k8s-pod-network",
  createdAt: "",
});

describe("findOrphanClaims()", () => {
  it("finds claims whose container has no endpoint on the claim's node", () => {
    const claims = [
      claim("203.0.113.1", "node-1", "alive"),
      claim("203.0.113.2", "node-1", "gone"),
      claim("203.0.113.3", "node-2", "alive"),
    ].map((value, i) => ({ value, revision: String(i + 1) }));
    const endpoints = [endpoint("node-1", "alive")];
    expect(findOrphanClaims(claims, endpoints).map((o) => [o.claim.ip, o.reason])).toEqual([
      ["203.0.113.2", "container gone has no endpoint on node node-1"],
      ["203.0.113.3", "container alive has no endpoint on node node-2"],
    ]);
  });
});

describe("ClaimCollector", () => {
  async function setup() {
    const kv = new MemoryKv();
    const put = (key: string, value: unknown) =>
      kv.txn([], [{ put: key, value: JSON.stringify(value) }]);
    await put(keys.claim("203.0.113.1"), claim("203.0.113.1", "node-1", "alive"));
    await put(keys.endpoint("node-1", "alive", "eth0"), endpoint("node-1", "alive"));
    await put(keys.claim("203.0.113.2"), claim("203.0.113.2", "node-1", "gone"));
    let now = 0;
    const lines: string[] = [];
    const collector = new ClaimCollector({
      store: new Store(kv),
      graceMs: 30_000,
      logger: createStreamLogger((line) => lines.push(line), "info"),
      now: () => now,
    });
    return { kv, put, collector, lines, advance: (ms: number) => (now += ms) };
  }

  it("releases an orphaned claim only after the grace period, and logs why", async () => {
    const { kv, collector, lines, advance } = await setup();
    expect(await collector.sweep()).toEqual([]);
    advance(29_000);
    expect(await collector.sweep()).toEqual([]);
    advance(1_000);
    expect(await collector.sweep()).toEqual(["203.0.113.2"]);
    expect(await kv.get(keys.claim("203.0.113.2"))).toBeUndefined();
    expect(await kv.get(keys.claim("203.0.113.1"))).toBeDefined();
    expect(JSON.parse(lines.at(-1)!)).toMatchObject({
      event: "agent.gc",
      released: "203.0.113.2",
      reason: "container gone has no endpoint on node node-1",
    });
  });

  it("never releases a claim taken over during the grace period", async () => {
    const { kv, put, collector, advance } = await setup();
    await collector.sweep();
    advance(20_000);
    // A new pod takes the IP (a new revision of the claim), with its endpoint.
    await put(keys.claim("203.0.113.2"), claim("203.0.113.2", "node-2", "new"));
    await put(keys.endpoint("node-2", "new", "eth0"), endpoint("node-2", "new"));
    advance(20_000);
    expect(await collector.sweep()).toEqual([]);
    expect(JSON.parse((await kv.get(keys.claim("203.0.113.2")))!.value)).toMatchObject({
      containerID: "new",
    });
  });

  it("restarts the grace period when the holder's endpoint comes back meanwhile", async () => {
    const { kv, put, collector, advance } = await setup();
    await collector.sweep();
    advance(20_000);
    await put(keys.endpoint("node-1", "gone", "eth0"), endpoint("node-1", "gone"));
    await collector.sweep();
    await kv.txn([], [{ delete: keys.endpoint("node-1", "gone", "eth0") }]);
    await collector.sweep();
    advance(20_000);
    expect(await collector.sweep()).toEqual([]);
    advance(10_000);
    expect(await collector.sweep()).toEqual(["203.0.113.2"]);
  });
});

describe("ClaimCollector, a container with a claim intent (ADR 0012)", () => {
  it("leaves the claims of an ADD in parts alone while its intent lives, and releases them once its lease ends", async () => {
    const clock = new ManualClock();
    const kv = new MemoryKv({ clock });
    const lease = await kv.grantLease(30);
    // An ADD that wrote its first part (intent and a claim) and stopped there.
    await kv.txn(
      [],
      [
        {
          put: keys.claimIntent("node-1", "adding"),
          value: JSON.stringify({ node: "node-1", containerID: "adding" }),
          lease,
        },
        {
          put: keys.claim("203.0.113.4"),
          value: JSON.stringify(claim("203.0.113.4", "node-1", "adding")),
        },
      ],
    );
    let now = 0;
    const collector = new ClaimCollector({
      store: new Store(kv),
      graceMs: 10_000,
      logger: createStreamLogger(() => {}, "error"),
      now: () => now,
    });
    for (let sweep = 0; sweep < 3; sweep++) {
      expect(await collector.sweep()).toEqual([]);
      now += 10_000;
      clock.advance(10_000);
    }
    // 30 s: the lease has ended and the intent with it; then the grace runs.
    expect(await kv.get(keys.claimIntent("node-1", "adding"))).toBeUndefined();
    expect(await collector.sweep()).toEqual([]);
    now += 10_000;
    expect(await collector.sweep()).toEqual(["203.0.113.4"]);
  });

  it("does not delete a claim whose holder wrote an intent after the sweep read it", async () => {
    const kv = new MemoryKv();
    const gone = claim("203.0.113.5", "node-1", "again");
    await kv.txn([], [{ put: keys.claim(gone.ip), value: JSON.stringify(gone) }]);
    let now = 0;
    let reads = 0;
    const store = new Store({
      ...kv,
      get: (key) => kv.get(key),
      list: (prefix) => kv.list(prefix),
      listPage: (prefix, after, limit) => kv.listPage(prefix, after, limit),
      readMany: async (many) => {
        const read = await kv.readMany(many);
        // The second sweep's read done, the container's ADD in parts begins.
        if (++reads === 2) {
          await kv.txn(
            [],
            [{ put: keys.claimIntent("node-1", "again"), value: JSON.stringify({}) }],
          );
        }
        return read;
      },
      txn: (compares, ops) => kv.txn(compares, ops),
      ping: () => kv.ping(),
      watch: (prefix, signal) => kv.watch(prefix, signal),
      grantLease: (ttl) => kv.grantLease(ttl),
      keepAliveLease: (id) => kv.keepAliveLease(id),
      revokeLease: (id) => kv.revokeLease(id),
    });
    const collector = new ClaimCollector({
      store,
      graceMs: 1000,
      logger: createStreamLogger(() => {}, "error"),
      now: () => now,
    });
    expect(await collector.sweep()).toEqual([]);
    now += 1000;
    expect(await collector.sweep()).toEqual([]);
    expect(await kv.get(keys.claim(gone.ip))).toBeDefined();
  });
});

describe("ClaimCollector, a page at a time (issue 14)", () => {
  it("looks at a bounded page per sweep, reads only its holders' endpoints, and gets round to every claim", async () => {
    const kv = new MemoryKv();
    const ops = [];
    for (let i = 1; i <= 10; i++) {
      ops.push({
        put: keys.claim(`203.0.113.${i}`),
        value: JSON.stringify(claim(`203.0.113.${i}`, "node-1", `c${i}`)),
      });
      // Every holder but c9's has its endpoint.
      if (i !== 9)
        ops.push({
          put: keys.endpoint("node-1", `c${i}`, "eth0"),
          value: JSON.stringify(endpoint("node-1", `c${i}`)),
        });
    }
    // An endpoint of another container whose ID starts like c9's: not c9's.
    ops.push({
      put: keys.endpoint("node-1", "c90", "eth0"),
      value: JSON.stringify(endpoint("node-1", "c90")),
    });
    await kv.txn([], ops);
    const reads: string[] = [];
    const counting: Kv = {
      get: (key) => kv.get(key),
      list: () => Promise.reject(new Error("a sweep lists no whole prefix")),
      listPage: (prefix, after, limit) => {
        reads.push(`page after ${after ?? "start"}`);
        return kv.listPage(prefix, after, limit);
      },
      readMany: (many) => {
        reads.push(`readMany ${many.length}`);
        return kv.readMany(many);
      },
      txn: (compares, ops) => kv.txn(compares, ops),
      ping: () => kv.ping(),
      watch: (prefix, signal) => kv.watch(prefix, signal),
      grantLease: (ttl) => kv.grantLease(ttl),
      keepAliveLease: (id) => kv.keepAliveLease(id),
      revokeLease: (id) => kv.revokeLease(id),
    };
    let now = 0;
    const collector = new ClaimCollector({
      store: new Store(counting),
      graceMs: 1000,
      logger: createStreamLogger(() => {}, "error"),
      now: () => now,
      pageSize: 4,
    });
    const released: string[] = [];
    for (let sweep = 0; sweep < 6; sweep++) {
      released.push(...(await collector.sweep()));
      now += 600;
    }
    // Pages of 4 (claim keys sort as text: .1, .10, .2, .3 | .4 ... .7 | .8, .9), each
    // with one read of at most 4 holders (endpoints and claim intent each); c9's
    // claim seen at 1200 ms, released at 3000.
    expect(reads.slice(0, 6)).toEqual([
      "page after start",
      "readMany 8",
      `page after ${keys.claim("203.0.113.3")}`,
      "readMany 8",
      `page after ${keys.claim("203.0.113.7")}`,
      "readMany 4",
    ]);
    expect(released).toEqual(["203.0.113.9"]);
    expect(await kv.get(keys.claim("203.0.113.9"))).toBeUndefined();
    expect(await kv.get(keys.claim("203.0.113.8"))).toBeDefined();
  });
});

describe("ClaimCollector, a record whose ip does not match its key", () => {
  it("releases it by the key it is stored under", async () => {
    const kv = new MemoryKv();
    // Written past buoy: the key names .7, the record says .8.
    await kv.txn(
      [],
      [
        {
          put: keys.claim("203.0.113.7"),
          value: JSON.stringify(claim("203.0.113.8", "node-1", "gone")),
        },
      ],
    );
    let now = 0;
    const collector = new ClaimCollector({
      store: new Store(kv),
      graceMs: 1000,
      logger: createStreamLogger(() => {}, "error"),
      now: () => now,
    });
    await collector.sweep();
    now = 2000;
    expect(await collector.sweep()).toEqual(["203.0.113.8"]);
    expect(await kv.get(keys.claim("203.0.113.7"))).toBeUndefined();
  });
});
