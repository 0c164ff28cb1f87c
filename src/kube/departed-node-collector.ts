// The agent's departed-node collector (routing modes): the addresses of nodes
// that left the cluster are released from their IPAM blocks, and a departed
// node's blocks lose their affinity and are deleted once empty.
import type { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { planDepartedReleases } from "../ipam/block.js";
import type { Logger } from "../log/logger.js";
import { BUOY_API_GROUP, BUOY_VERSION } from "../model/api-group.js";
import type { IpamBlock } from "../model/records.js";
import { statusOf } from "./describe-kube-error.js";
import { objectsOf, type ListWatchCaches } from "./list-watch-caches.js";
import { blockFromObject, blockNodeLabels, blockToObject, type KubeObject } from "./objects.js";

export interface DepartedNodeCollectorOptions {
  core: CoreV1Api;
  custom: CustomObjectsApi;
  caches: ListWatchCaches;
  node: string;
  logger: Logger;
}

export class DepartedNodeCollector {
  /** First time each node that holds addresses was seen missing from the Nodes, by name. */
  #departed = new Map<string, number>();

  constructor(private readonly options: DepartedNodeCollectorOptions) {}

  /**
   * Addresses of nodes that left the cluster (no Node object, for the grace
   * period and then by a fresh read): released from their blocks, a departed
   * node's blocks lose their affinity and are deleted once empty
   * (ipam/block.ts planDepartedReleases). Every routing agent runs it; writes
   * compare on resourceVersion, so two agents never both apply one change.
   * Not without the Node and block caches (--routing none).
   */
  async collect(now: number, grace: number): Promise<string[]> {
    const { caches, custom, logger } = this.options;
    if (!caches.routing) return [];
    const live = new Set(
      objectsOf<KubeObject>(caches.routing.nodes).map((object) => object.metadata.name),
    );
    // A cache that has not listed yet must not make the whole cluster look gone.
    if (!live.has(this.options.node)) return [];
    const objects = objectsOf<KubeObject<Partial<IpamBlock>>>(caches.routing.blocks);
    const blocks = objects.map((object) => ({ object, ...blockFromObject(object) }));
    const missing = new Set<string>();
    for (const { value } of blocks) {
      for (const node of [value.affinity, ...Object.values(value.allocations).map((o) => o.node)]) {
        if (node !== "" && !live.has(node)) missing.add(node);
      }
    }
    const departed = new Map<string, number>();
    const gone = new Set<string>();
    for (const node of missing) {
      const since = this.#departed.get(node) ?? now;
      departed.set(node, since);
      if (now - since < grace) continue;
      // The cache may lag: the API server has the last word.
      if (await this.#nodeExists(node)) continue;
      gone.add(node);
    }
    this.#departed = departed;
    if (gone.size === 0) return [];
    const notGone = new Set([...live, ...[...missing].filter((node) => !gone.has(node))]);
    const byCidr = new Map(blocks.map((block) => [block.value.cidr, block]));
    const released: string[] = [];
    for (const plan of planDepartedReleases(
      blocks.map(({ value }) => value),
      notGone,
    )) {
      const { object, revision } = byCidr.get(plan.cidr) as (typeof blocks)[number];
      const preconditions = { uid: object.metadata.uid ?? "", resourceVersion: revision };
      try {
        if (plan.after) {
          await custom.replaceClusterCustomObject({
            group: BUOY_API_GROUP,
            version: BUOY_VERSION,
            plural: "ipamblocks",
            name: object.metadata.name,
            body: {
              ...blockToObject(plan.after, revision),
              // Its node labels from what it holds now (objects.ts blockNodeLabels).
              metadata: { ...object.metadata, labels: blockNodeLabels(plan.after) },
            },
          });
        } else {
          await custom.deleteClusterCustomObject({
            group: BUOY_API_GROUP,
            version: BUOY_VERSION,
            plural: "ipamblocks",
            name: object.metadata.name,
            body: { preconditions },
          });
        }
      } catch (error) {
        if (statusOf(error) === 404 || statusOf(error) === 409) continue;
        throw error;
      }
      if (plan.formerAffinity)
        await this.#deleteAffinity(plan.formerAffinity, object.metadata.name);
      released.push(...plan.released);
      logger.log("info", "agent.gc", {
        block: plan.cidr,
        released: plan.released,
        ...(plan.formerAffinity ? { departedNode: plan.formerAffinity } : {}),
        deleted: plan.after === undefined,
        reason: "the node left the cluster",
      });
    }
    return released;
  }

  async #nodeExists(name: string): Promise<boolean> {
    try {
      await this.options.core.readNode({ name });
      return true;
    } catch (error) {
      if (statusOf(error) === 404) return false;
      throw error;
    }
  }

  async #deleteAffinity(node: string, blockName: string): Promise<void> {
    try {
      await this.options.custom.deleteClusterCustomObject({
        group: BUOY_API_GROUP,
        version: BUOY_VERSION,
        plural: "blockaffinities",
        name: `${node}-${blockName}`,
      });
    } catch (error) {
      if (statusOf(error) !== 404) throw error;
    }
  }
}
