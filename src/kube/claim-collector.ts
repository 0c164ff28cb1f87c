// The agent's claim collector: claims held on this node by a pod that is
// gone (or replaced), or by a sandbox whose endpoint object is gone, seen so
// for the grace period and confirmed by a fresh read of the pod and the
// endpoint, are deleted on their uid and resourceVersion. The sandbox is the
// endpoint object's, never the pod's annotations (ADR 0008): a tenant who
// writes another pod's container ID into its own pod releases nothing.
import type { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import type { Logger } from "../log/logger.js";
import { BUOY_API_GROUP, BUOY_VERSION } from "../model/api-group.js";
import type { FloatingIpClaim, WorkloadEndpoint } from "../model/records.js";
import { statusOf } from "./describe-kube-error.js";
import { objectsOf, type ListWatchCaches } from "./list-watch-caches.js";
import { endpointObjectName } from "./names.js";
import {
  claimFromObject,
  endpointFromObject,
  isPodOf,
  type KubeObject,
  type PodObject,
} from "./objects.js";

export interface ClaimCollectorOptions {
  core: CoreV1Api;
  custom: CustomObjectsApi;
  caches: ListWatchCaches;
  node: string;
  logger: Logger;
}

export class ClaimCollector {
  /** First time each orphaned claim was seen, by `name@resourceVersion`. */
  #orphans = new Map<string, number>();

  constructor(private readonly options: ClaimCollectorOptions) {}

  /**
   * Claims held on this node by a pod that is gone (or replaced: another uid),
   * seen so for the grace period, deleted on their uid and resourceVersion.
   * Resolves to the floating IPs released.
   */
  async collect(now: number, grace: number): Promise<string[]> {
    const { caches, custom, logger } = this.options;
    const pods = new Map(
      (caches.pods.list() as unknown as PodObject[]).map((pod) => [
        `${pod.metadata.namespace}/${pod.metadata.name}`,
        pod,
      ]),
    );
    const endpoints = caches.endpointRecords().map(({ endpoint }) => endpoint);
    const seen = new Map<string, number>();
    const released: string[] = [];
    for (const object of objectsOf<KubeObject>(caches.claims)) {
      const claim = claimFromObject(object);
      if (claim.node !== this.options.node) continue;
      // A FloatingIP's claim is its controller's to release (it moves it first).
      if (claim.floatingIP !== undefined) continue;
      const cached = pods.get(`${claim.namespace}/${claim.pod}`);
      if (cached && !orphanReason(claim, cached, endpoints)) continue;
      const key = `${object.metadata.name}@${object.metadata.resourceVersion}`;
      const since = this.#orphans.get(key) ?? now;
      seen.set(key, since);
      if (now - since < grace) continue;
      // The cache may lag or be stale: the API server has the last word.
      const [pod, endpoint] = await Promise.all([
        this.#readPod(claim.namespace, claim.pod),
        this.#readEndpoint(claim),
      ]);
      const reason = orphanReason(claim, pod, endpoint ? [endpoint] : []);
      if (!reason) continue;
      try {
        await custom.deleteClusterCustomObject({
          group: BUOY_API_GROUP,
          version: BUOY_VERSION,
          plural: "floatingipclaims",
          name: object.metadata.name,
          body: {
            preconditions: {
              uid: object.metadata.uid ?? "",
              resourceVersion: object.metadata.resourceVersion ?? "",
            },
          },
        });
      } catch (error) {
        if (statusOf(error) === 404 || statusOf(error) === 409) continue;
        throw error;
      }
      seen.delete(key);
      released.push(claim.ip);
      logger.log("info", "agent.gc", {
        released: claim.ip,
        holder: `${claim.namespace}/${claim.pod}`,
        reason,
        orphanedForMs: Math.round(now - since),
      });
    }
    this.#orphans = seen;
    return released;
  }

  /** The endpoint object of the claim's sandbox, from the API server. */
  async #readEndpoint(claim: FloatingIpClaim): Promise<WorkloadEndpoint | undefined> {
    try {
      return endpointFromObject(
        (await this.options.custom.getClusterCustomObject({
          group: BUOY_API_GROUP,
          version: BUOY_VERSION,
          plural: "workloadendpoints",
          name: await endpointObjectName(claim.node, claim.containerID, claim.endpoint ?? "eth0"),
        })) as KubeObject,
      );
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw error;
    }
  }

  async #readPod(namespace: string, name: string): Promise<PodObject | undefined> {
    try {
      return (await this.options.core.readNamespacedPod({
        namespace,
        name,
      })) as unknown as PodObject;
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw error;
    }
  }
}

/**
 * Why `claim` has no holder, given its pod as known (undefined: gone) and the
 * endpoint objects of this node; undefined when it has one. A sandbox with no
 * endpoint object yet is between ADD's claim and its endpoint, or after DEL:
 * the grace period tells the two apart.
 */
export function orphanReason(
  claim: FloatingIpClaim,
  pod: PodObject | undefined,
  endpoints: readonly WorkloadEndpoint[],
): string | undefined {
  if (!pod) return "the holder pod is gone";
  if (claim.podUID !== undefined && pod.metadata.uid !== claim.podUID) {
    return "the holder pod was replaced";
  }
  const own = endpoints.filter((endpoint) => isPodOf(endpoint, pod));
  if (own.some((endpoint) => endpoint.containerID === claim.containerID)) return undefined;
  return own.length > 0
    ? "the pod runs in another sandbox now"
    : "the pod's sandbox is not set up (or was torn down)";
}
