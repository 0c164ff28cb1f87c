// What the resident CNI server (ADR 0013) keeps in memory for its node, so
// that a served ADD asks the API server only what must be fresh: this
// node's IPAM blocks (by their node label, issue 14: never every block) and
// this node's Node object (its uid owns claims and endpoints), each from a
// list and a watch (kube-watch.ts). Both are written by buoy or the
// kubelet, neither by a tenant. Not the pools: a pool created a moment
// ago and not yet seen would refuse an ADD; they are read once per ADD, in
// parallel with the pod.
//
// A stale cache costs a retry, never a wrong allocation: every block write
// is on the resourceVersion read; a conflict reads the block by name, puts
// it in here and IPAM tries again. The datastore's own writes are put in as
// the API server answers them, so the next ADD does not wait for the watch.
import type { Logger } from "../log/logger.js";
import { apiPaths } from "./api-paths.js";
import type { KubeStreamingHttp } from "./http.js";
import { watchCollection, type WatchedCollection } from "./kube-watch.js";
import { ObjectCache } from "./object-cache.js";
import { blockNodeLabel, type KubeObject } from "./objects.js";

/** What KubernetesDatastore reads from a cache when it has one; undefined: read the API server. */
export interface KubeReadCache {
  /** The blocks labelled with `node`. */
  nodeBlocks(node: string): KubeObject[] | undefined;
  /** The Node's uid; undefined when not known from the cache (null: the Node does not exist). */
  nodeUID(node: string): string | null | undefined;
  /**
   * A block as a write returned it, or as a read by name after a conflict
   * found it (undefined: none by that name); `supersedes`: the version the
   * write was made on, which a late watch event must not bring back.
   */
  blockSeen(name: string, object: KubeObject | undefined, supersedes?: string): void;
}

export class NodeCache implements KubeReadCache {
  readonly #node: string;
  readonly #blocks: WatchedCollection | undefined;
  readonly #nodes: WatchedCollection;

  constructor(http: KubeStreamingHttp, node: string, logger: Logger) {
    this.#node = node;
    const label = blockNodeLabel(node);
    // A node whose name cannot be a label has no label selector: its blocks are read as before.
    this.#blocks =
      label === undefined
        ? undefined
        : watchCollection(
            http,
            "ipamblocks",
            apiPaths.blocks,
            { labelSelector: label },
            new ObjectCache((object) => object.metadata.labels?.[label] !== undefined),
            logger,
          );
    this.#nodes = watchCollection(
      http,
      "nodes",
      "/api/v1/nodes",
      { fieldSelector: `metadata.name=${node}` },
      new ObjectCache(),
      logger,
    );
  }

  nodeBlocks(node: string): KubeObject[] | undefined {
    const blocks = this.#blocks;
    return node === this.#node && blocks?.synced() ? blocks.cache.list() : undefined;
  }

  nodeUID(node: string): string | null | undefined {
    if (node !== this.#node || !this.#nodes.synced()) return undefined;
    const object = this.#nodes.cache.get(node);
    return object ? (object.metadata.uid ?? null) : null;
  }

  blockSeen(name: string, object: KubeObject | undefined, supersedes?: string): void {
    if (object) this.#blocks?.cache.put(object, supersedes);
    else this.#blocks?.cache.remove(name);
  }

  stop(): void {
    for (const collection of [this.#blocks, this.#nodes]) collection?.stop();
  }
}
