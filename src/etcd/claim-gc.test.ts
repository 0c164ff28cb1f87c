import { describe, expect, it } from "vitest";
import { MemoryKv } from "./memory-kv.js";
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
