// The agent's claim collector: claims held on this node by a pod that is
// gone (or replaced, or in another sandbox now), seen so for the grace
// period and confirmed by a fresh read of the pod, are deleted on their uid
// and resourceVersion.
import type { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import type { Logger } from "../log/logger.js";
import { BUOY_API_GROUP, BUOY_VERSION } from "../model/api-group.js";
import type { FloatingIpClaim } from "../model/records.js";
import { statusOf } from "./describe-kube-error.js";
import { CONTAINER_ID_ANNOTATION } from "./labels.js";
import { objectsOf, type ListWatchCaches } from "./list-watch-caches.js";
import { claimFromObject, type KubeObject, type PodObject } from "./objects.js";

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
    const seen = new Map<string, number>();
    const released: string[] = [];
    for (const object of objectsOf<KubeObject>(caches.claims)) {
      const claim = claimFromObject(object);
      if (claim.node !== this.options.node) continue;
      const cached = pods.get(`${claim.namespace}/${claim.pod}`);
      if (cached && !orphanReason(claim, cached)) continue;
      const key = `${object.metadata.name}@${object.metadata.resourceVersion}`;
      const since = this.#orphans.get(key) ?? now;
      seen.set(key, since);
      if (now - since < grace) continue;
      // The cache may lag or be stale: the API server has the last word.
      const reason = orphanReason(claim, await this.#readPod(claim.namespace, claim.pod));
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
 * Why `claim` has no holder, given its pod as known (undefined: gone); undefined
 * when it has one. A pod that names no sandbox in its annotations yet is
 * between ADD's claim and its annotation patch, or after DEL: the grace period
 * tells the two apart.
 */
export function orphanReason(
  claim: FloatingIpClaim,
  pod: PodObject | undefined,
): string | undefined {
  if (!pod) return "the holder pod is gone";
  if (claim.podUID !== undefined && pod.metadata.uid !== claim.podUID) {
    return "the holder pod was replaced";
  }
  const sandbox = pod.metadata.annotations?.[CONTAINER_ID_ANNOTATION];
  if (sandbox !== claim.containerID) {
    return sandbox
      ? "the pod runs in another sandbox now"
      : "the pod's sandbox is not set up (or was torn down)";
  }
  return undefined;
}
