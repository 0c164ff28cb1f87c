import type { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { describe, expect, it, vi } from "vitest";
import { silentLogger } from "../log/logger.js";
import type { FloatingIpClaim } from "../model/records.js";
import { FLOATING_POOL, webClaim, webEndpoint } from "../../test/support/agent-records.js";
import { ipObjectName } from "./names.js";
import { claimFromObject, type KubeObject, type PodObject } from "./objects.js";
import { currentEndpoint, PodClaimController, type Pass } from "./pod-claims.js";

const ANNOTATION = "cni.projectcalico.org/floatingIPs";
function pod(annotation?: string, uid = "u1", name = "web"): PodObject {
  return {
    metadata: {
      name,
      namespace: "shop",
      uid,
      annotations: annotation === undefined ? {} : { [ANNOTATION]: annotation },
    },
  };
}

const endpoint = (containerID: string, createdAt = "2026-01-01T00:00:00Z", podUID = "u1") =>
  webEndpoint(containerID, { createdAt, podUID });
const claim = webClaim;
const pool = FLOATING_POOL;

describe("currentEndpoint()", () => {
  const older = endpoint("c-old", "2026-01-01T00:00:00Z");
  const newer = endpoint("c-new", "2026-01-02T00:00:00Z");
  it.each([
    { desc: "none before ADD has recorded one", endpoints: [], want: undefined },
    { desc: "the newest of the pod's sandboxes", endpoints: [older, newer], want: "c-new" },
    {
      desc: "of two made at once, the first by container ID (the same on every node)",
      endpoints: [endpoint("c-b"), endpoint("c-a")],
      want: "c-a",
    },
    {
      desc: "none of another pod of that name (another uid: replaced)",
      endpoints: [endpoint("c1", undefined, "u9")],
      want: undefined,
    },
    {
      desc: "none of another pod",
      endpoints: [{ ...endpoint("c1"), pod: "db" }],
      want: undefined,
    },
  ])("currentEndpoint() finds $desc", ({ endpoints, want }) => {
    expect(currentEndpoint(pod(), endpoints)?.containerID).toBe(want);
  });
});

/**
 * A controller of node-1 over the claims in `stored` (by IP, what the API
 * server has) and an API server that finds the pod and its sandbox set up,
 * no IPAM block holding the addresses; `state` is what its caches show.
 */
function controller(state: Pass, options: { enabled?: boolean; stored?: KubeObject[] } = {}) {
  const stored = new Map<string, KubeObject>();
  for (const object of options.stored ?? []) stored.set(String(object.spec?.ip), object);
  const events: { reason: string; message: string }[] = [];
  const deleted: string[] = [];
  const gone = () => Promise.reject(Object.assign(new Error("not found"), { code: 404 }));
  const byName = (name: string) =>
    [...stored.values()].find((object) => object.metadata.name === name);
  const custom = {
    createClusterCustomObject: ({ body }: { body: KubeObject }) => {
      const ip = String(body.spec?.ip);
      if (stored.has(ip)) return Promise.reject(Object.assign(new Error("exists"), { code: 409 }));
      const created = { ...body, metadata: { ...body.metadata, uid: `uid-${ip}` } };
      stored.set(ip, created);
      return Promise.resolve(created);
    },
    getClusterCustomObject: ({ plural, name }: { plural: string; name: string }) => {
      if (plural === "workloadendpoints") return Promise.resolve({ metadata: { name } });
      const object = plural === "floatingipclaims" ? byName(name) : undefined;
      return object ? Promise.resolve(object) : gone();
    },
    deleteClusterCustomObject: ({ name }: { name: string }) => {
      const object = byName(name);
      if (object) stored.delete(String(object.spec?.ip));
      deleted.push(name);
      return Promise.resolve({});
    },
  } as unknown as CustomObjectsApi;
  const core = {
    readNamespacedPod: ({ name }: { name: string }) => {
      const found = state.pods.find((candidate) => candidate.metadata.name === name);
      return found ? Promise.resolve(found) : gone();
    },
    readNode: () => Promise.resolve({ metadata: { uid: "node-uid" } }),
    readNamespace: () => Promise.resolve({ metadata: { labels: {} } }),
    createNamespacedEvent: ({ body }: { body: { reason: string; message: string } }) => {
      events.push({ reason: body.reason, message: body.message });
      return Promise.resolve(body);
    },
  } as unknown as CoreV1Api;
  const claims = new PodClaimController({
    custom,
    core,
    node: "node-1",
    logger: silentLogger,
    floatingIpsEnabled: () => options.enabled ?? true,
    maxFloatingIps: () => 16,
    state: () => state,
  });
  /** Runs one pass and resolves once it has sent an Event (every pass here ends with one). */
  const pass = async () => {
    const before = events.length;
    claims.schedule();
    await vi.waitFor(() => expect(events.length).toBeGreaterThan(before));
  };
  return { pass, stored, events, deleted, claims };
}

/** The claims of the caches, as the agent's list-watch hands them over. */
function cachedClaims(...held: FloatingIpClaim[]) {
  return held.map((value) => ({ key: `floatingipclaims/${value.ip}`, version: "1", value }));
}

describe("PodClaimController", () => {
  it("a pass claims what the annotation adds for the recorded sandbox and address, owned by the Node", async () => {
    const { pass, stored, events } = controller({
      pods: [pod('["203.0.113.1"]')],
      endpoints: [endpoint("c1")],
      claims: [],
      pools: [pool],
    });
    await pass();
    const made = stored.get("203.0.113.1");
    expect(made && claimFromObject(made)).toMatchObject(claim("203.0.113.1"));
    expect(made?.metadata.labels).toEqual({ "buoy.dev/container": "c1" });
    expect(made?.metadata.ownerReferences).toEqual([
      { apiVersion: "v1", kind: "Node", name: "node-1", uid: "node-uid" },
    ]);
    expect(events).toEqual([
      { reason: "FloatingIPsChanged", message: "floating IPs of the pod: 203.0.113.1" },
    ]);
  });

  it("a pass releases what the annotation dropped, only while the claim still names the sandbox", async () => {
    const dropped = claim("203.0.113.2");
    const moved = claim("203.0.113.3");
    const { pass, stored, deleted } = controller(
      {
        pods: [pod("[]")],
        endpoints: [endpoint("c1")],
        claims: cachedClaims(dropped, moved),
        pools: [pool],
      },
      {
        stored: [
          { metadata: { name: "203.0.113.2", uid: "u-2" }, spec: { ...dropped } },
          // Moved to another sandbox since the cache saw it.
          { metadata: { name: "203.0.113.3", uid: "u-3" }, spec: { ...moved, containerID: "c9" } },
        ],
      },
    );
    await pass();
    expect(deleted).toEqual([ipObjectName("203.0.113.2")]);
    expect(stored.has("203.0.113.3")).toBe(true);
  });

  it("a pass leaves a FloatingIP's claim to its controller: the annotation neither keeps nor drops it", async () => {
    const held = claim("203.0.113.4", "c1", { floatingIP: "shop/web" });
    const { pass, deleted, events } = controller(
      {
        pods: [pod('["203.0.113.1"]')],
        endpoints: [endpoint("c1")],
        claims: cachedClaims(held),
        pools: [pool],
      },
      { stored: [{ metadata: { name: "203.0.113.4", uid: "u-4" }, spec: { ...held } }] },
    );
    await pass();
    expect(deleted).toEqual([]);
    expect(events.map((event) => event.message)).toEqual(["floating IPs of the pod: 203.0.113.1"]);
  });

  it.each([
    {
      desc: "with the feature off",
      enabled: false,
      held: [],
      message: "requested feature is not enabled: floating_ips",
    },
    {
      desc: "for an address the cache shows another pod holding, without a write",
      enabled: true,
      held: [claim("203.0.113.1", "c7", { pod: "db" })],
      message: "floating IP 203.0.113.1 is already held by",
    },
  ])(
    "a pass refuses an edit $desc, once per annotation value",
    async ({ enabled, held, message }) => {
      const state: Pass = {
        pods: [pod('["203.0.113.1"]')],
        endpoints: [endpoint("c1")],
        claims: cachedClaims(...held),
        pools: [pool],
      };
      const { pass, stored, events, claims } = controller(state, { enabled });
      await pass();
      expect(events).toEqual([
        { reason: "FloatingIPRefused", message: expect.stringContaining(message) },
      ]);
      // The same value again: no second Event (every fake answers at once: a
      // pass is over by the next timer tick); a new value is reported anew.
      claims.schedule();
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(events).toHaveLength(1);
      state.pods = [pod('["203.0.113.1", "203.0.113.9"]')];
      await pass();
      expect(events).toHaveLength(2);
      expect(stored.size).toBe(0);
    },
  );
});
