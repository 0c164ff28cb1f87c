import type { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { silentLogger } from "../log/logger.js";
import type { FloatingIpClaim, WorkloadEndpoint } from "../model/records.js";
import { webClaim, webEndpoint } from "../../test/support/agent-records.js";
import { ClaimCollector, orphanReason } from "./claim-collector.js";
import type { ListWatchCaches } from "./list-watch-caches.js";
import { claimToObject, endpointToObject, type KubeObject, type PodObject } from "./objects.js";

const claim = webClaim("10.96.0.1");
const pod = (uid: string, annotations: Record<string, string> = {}) => ({
  metadata: { name: "web", namespace: "shop", uid, annotations },
});
const endpoint = (containerID: string, podUID = "u1") => webEndpoint(containerID, { podUID });

describe("orphanReason()", () => {
  it("has no reason while the pod of that uid has an endpoint object of the claim's sandbox", () => {
    expect(orphanReason(claim, pod("u1"), [endpoint("c1")])).toBeUndefined();
  });

  it("names why a claim has no holder: pod gone, replaced, in another sandbox, or none", () => {
    expect(orphanReason(claim, undefined, [endpoint("c1")])).toBe("the holder pod is gone");
    expect(orphanReason(claim, pod("u2"), [endpoint("c1")])).toBe("the holder pod was replaced");
    expect(orphanReason(claim, pod("u1"), [endpoint("c2")])).toBe(
      "the pod runs in another sandbox now",
    );
    expect(orphanReason(claim, pod("u1"), [])).toBe(
      "the pod's sandbox is not set up (or was torn down)",
    );
  });

  it("reads the sandbox from the endpoint objects, never from the pod's annotations", () => {
    const forged = (containerID: string) =>
      pod("u1", { "cni.projectcalico.org/containerID": containerID });
    // A forged container ID neither orphans the real sandbox's claim...
    expect(orphanReason(claim, forged("c9"), [endpoint("c1")])).toBeUndefined();
    // ...nor keeps a torn-down sandbox's claim alive.
    expect(orphanReason(claim, forged("c1"), [])).toBe(
      "the pod's sandbox is not set up (or was torn down)",
    );
    // Another pod's endpoint of that container (its uid) is no holder either.
    expect(orphanReason(claim, pod("u1"), [endpoint("c1", "u9")])).toBe(
      "the pod's sandbox is not set up (or was torn down)",
    );
  });
});

const GRACE_MS = 60_000;

/** The claim object of `held` as the API server has it. */
function claimObject(held: FloatingIpClaim, resourceVersion = "7"): KubeObject {
  const object = claimToObject(held, undefined);
  return { ...object, metadata: { ...object.metadata, uid: `uid-${held.ip}`, resourceVersion } };
}

/**
 * A collector of node-1 over caches holding `cached` (pods, endpoints,
 * claims), the API server answering `fresh` (pods by name, endpoints: any
 * there is) and `onDelete` deciding each delete; records the deletes.
 */
function collector(state: {
  cached: { pods: PodObject[]; endpoints: WorkloadEndpoint[]; claims: KubeObject[] };
  fresh?: { pods: PodObject[]; endpoints: WorkloadEndpoint[] };
  onDelete?: () => void;
}) {
  const deletes: unknown[] = [];
  const fresh = state.fresh ?? { pods: [], endpoints: [] };
  const gone = () => Promise.reject(Object.assign(new Error("not found"), { code: 404 }));
  const caches = {
    pods: { list: () => state.cached.pods },
    claims: { list: () => state.cached.claims },
    endpointRecords: () => state.cached.endpoints.map((endpoint) => ({ object: {}, endpoint })),
  } as unknown as ListWatchCaches;
  const core = {
    readNamespacedPod: ({ namespace, name }: { namespace: string; name: string }) => {
      const pod = fresh.pods.find(
        (candidate) =>
          candidate.metadata.name === name && candidate.metadata.namespace === namespace,
      );
      return pod ? Promise.resolve(pod) : gone();
    },
  } as unknown as CoreV1Api;
  const custom = {
    getClusterCustomObject: () => {
      const [endpoint] = fresh.endpoints;
      return endpoint ? Promise.resolve(endpointToObject(endpoint, "name", undefined)) : gone();
    },
    deleteClusterCustomObject: (request: unknown) => {
      deletes.push(request);
      try {
        state.onDelete?.();
        return Promise.resolve({});
      } catch (error) {
        return Promise.reject(error as Error);
      }
    },
  } as unknown as CustomObjectsApi;
  const collecting = new ClaimCollector({
    core,
    custom,
    caches,
    node: "node-1",
    logger: silentLogger,
  });
  return { deletes, collect: (now: number) => collecting.collect(now, GRACE_MS) };
}

describe("ClaimCollector.collect()", () => {
  it("collect() releases a claim whose pod is gone once the grace has passed, on its uid and resourceVersion", async () => {
    const { collect, deletes } = collector({
      cached: { pods: [], endpoints: [], claims: [claimObject(claim)] },
    });
    expect(await collect(1_000)).toEqual([]);
    expect(await collect(1_000 + GRACE_MS - 1)).toEqual([]);
    expect(deletes).toEqual([]);
    expect(await collect(1_000 + GRACE_MS)).toEqual(["10.96.0.1"]);
    expect(deletes).toEqual([
      expect.objectContaining({
        plural: "floatingipclaims",
        name: "10.96.0.1",
        body: { preconditions: { uid: "uid-10.96.0.1", resourceVersion: "7" } },
      }),
    ]);
  });

  it("collect() starts the grace again for a claim that changed (another resourceVersion)", async () => {
    const claims = [claimObject(claim, "7")];
    const { collect, deletes } = collector({ cached: { pods: [], endpoints: [], claims } });
    await collect(0);
    claims[0] = claimObject(claim, "8");
    expect(await collect(GRACE_MS)).toEqual([]);
    expect(await collect(2 * GRACE_MS)).toEqual(["10.96.0.1"]);
    expect(deletes).toHaveLength(1);
  });

  it.each([
    { desc: "another node's claim", held: { ...claim, node: "node-2" } },
    {
      desc: "a FloatingIP's claim (its controller's to release)",
      held: { ...claim, floatingIP: "shop/web" },
    },
  ])("collect() leaves $desc alone", async ({ held }) => {
    const { collect, deletes } = collector({
      cached: { pods: [], endpoints: [], claims: [claimObject(held)] },
    });
    await collect(0);
    expect(await collect(GRACE_MS)).toEqual([]);
    expect(deletes).toEqual([]);
  });

  it("collect() keeps a claim the API server shows held, whatever the cache says", async () => {
    // The cache lags: no pod there, but the API server has the pod and its sandbox.
    const { collect, deletes } = collector({
      cached: { pods: [], endpoints: [], claims: [claimObject(claim)] },
      fresh: { pods: [pod("u1")], endpoints: [endpoint("c1")] },
    });
    await collect(0);
    expect(await collect(GRACE_MS)).toEqual([]);
    expect(deletes).toEqual([]);
  });

  it.each([
    { desc: "gone meanwhile (404)", code: 404 },
    { desc: "changed meanwhile (409)", code: 409 },
  ])("collect() counts a claim $desc as not released, and goes on", async ({ code }) => {
    const other = { ...claim, ip: "10.96.0.2" };
    let calls = 0;
    const { collect, deletes } = collector({
      cached: { pods: [], endpoints: [], claims: [claimObject(claim), claimObject(other)] },
      onDelete: () => {
        if (calls++ === 0) throw Object.assign(new Error("refused"), { code });
      },
    });
    await collect(0);
    expect(await collect(GRACE_MS)).toEqual(["10.96.0.2"]);
    expect(deletes).toHaveLength(2);
  });
});
