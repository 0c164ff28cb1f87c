// The agent's list-and-watch caches of the Kubernetes API (client-node's
// ListWatch), relisting after 410 Gone and restarted with backoff when the
// API server goes away:
//   - the pods of this node (field selector spec.nodeName);
//   - the WorkloadEndpoints of this node (label buoy.dev/node: ADR 0008),
//     the FloatingIPClaims and IPPools;
//   - the nodes' status Leases in the agent's namespace (lease-status.ts);
//   - in routing modes, the Kubernetes Nodes, BGPPeers and IPAMBlocks.
// What the caches hold is read by the agent source and its collectors; which
// watches are up decides whether the agent may drive the kernel.
import {
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  ListWatch,
  Watch,
  type KubernetesListObject,
  type KubernetesObject,
  type V1Pod,
} from "@kubernetes/client-node";
import type { RoutingMode } from "../dataplane/routing-plan.js";
import type { RawRecord } from "../datastore/agent-source.js";
import type { Logger } from "../log/logger.js";
import { BUOY_API_GROUP, BUOY_API_VERSION, BUOY_VERSION } from "../model/api-group.js";
import type { IpPool, WorkloadEndpoint } from "../model/records.js";
import { keepWatching } from "./keep-watching.js";
import { STATUS_LABEL } from "./labels.js";
import {
  claimFromObject,
  endpointFromObject,
  endpointNodeSelector,
  poolFromObject,
  type KubeObject,
  type PodObject,
} from "./objects.js";

export interface ListWatchCachesOptions {
  kubeConfig: KubeConfig;
  core: CoreV1Api;
  custom: CustomObjectsApi;
  node: string;
  /** Where the nodes' status Leases live (the agent's own namespace). */
  namespace: string;
  logger: Logger;
  /** Routing modes also watch the Kubernetes Nodes, BGP peers and IPAM blocks. */
  routing: RoutingMode;
}

export interface CacheHooks {
  /** Whether every watch is established: called when that changes. */
  connected(up: boolean): void;
  /** A cache's objects changed, or a cache (re)started. */
  changed(): void;
  /** A Lease as far as a reconcile cares: an event that leaves it the same is no change. */
  leaseContent(lease: KubeObject): string;
  /** The Lease watch was established (again). */
  leasesStarted(): void;
}

export class ListWatchCaches {
  readonly pods: ListWatch<V1Pod>;
  /** This node's endpoint objects: a pod's addresses and sandbox as the plugin recorded them. */
  readonly endpoints: ListWatch<KubernetesObject>;
  readonly claims: ListWatch<KubernetesObject>;
  readonly pools: ListWatch<KubernetesObject>;
  readonly leases: ListWatch<KubernetesObject>;
  /** Routing modes only: Kubernetes Nodes, BGPPeers, IPAMBlocks. */
  readonly routing:
    | {
        nodes: ListWatch<KubernetesObject>;
        peers: ListWatch<KubernetesObject>;
        blocks: ListWatch<KubernetesObject>;
      }
    | undefined;
  /** Whether each resource's watch is established, by resource name. */
  readonly #up = new Map<string, boolean>();

  constructor(private readonly options: ListWatchCachesOptions) {
    const { kubeConfig, core, custom: customApi, node, namespace } = options;
    const watch = new Watch(kubeConfig);
    const fieldSelector = `spec.nodeName=${node}`;
    // A cache lists at its start and again only when its resource version is
    // gone (410 Gone: compacted, or an API server restarted with a fresh watch
    // cache); a relist is worth a log line.
    const listed = new Map<string, number>();
    const counted =
      <T>(resource: string, list: () => Promise<T>) =>
      (): Promise<T> => {
        const count = (listed.get(resource) ?? 0) + 1;
        listed.set(resource, count);
        if (count > 1) options.logger.log("info", "agent.watch", { resource, state: "relisted" });
        return list();
      };
    this.pods = new ListWatch<V1Pod>(
      "/api/v1/pods",
      watch,
      counted("pods", () => core.listPodForAllNamespaces({ fieldSelector })),
      false,
      undefined,
      fieldSelector,
    );
    const custom = (plural: string, labelSelector?: string) =>
      new ListWatch<KubernetesObject>(
        `/apis/${BUOY_API_VERSION}/${plural}`,
        watch,
        counted(
          plural,
          () =>
            customApi.listClusterCustomObject({
              group: BUOY_API_GROUP,
              version: BUOY_VERSION,
              plural,
              ...(labelSelector ? { labelSelector } : {}),
            }) as Promise<KubernetesListObject<KubernetesObject>>,
        ),
        false,
        labelSelector,
      );
    // Only this node's: a wake-up per ADD and DEL here, not per one anywhere.
    this.endpoints = custom("workloadendpoints", endpointNodeSelector(node));
    this.claims = custom("floatingipclaims");
    this.pools = custom("ippools");
    const labelSelector = `${STATUS_LABEL}=true`;
    this.leases = new ListWatch<KubernetesObject>(
      `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`,
      watch,
      counted(
        "leases",
        () =>
          customApi.listNamespacedCustomObject({
            group: "coordination.k8s.io",
            version: "v1",
            namespace,
            plural: "leases",
            labelSelector,
          }) as Promise<KubernetesListObject<KubernetesObject>>,
      ),
      false,
      labelSelector,
    );
    this.routing =
      options.routing === "none"
        ? undefined
        : {
            nodes: new ListWatch<KubernetesObject>(
              "/api/v1/nodes",
              watch,
              counted(
                "nodes",
                () => core.listNode() as Promise<KubernetesListObject<KubernetesObject>>,
              ),
              false,
            ),
            peers: custom("bgppeers"),
            // Every allocation changes a block, so every routing agent wakes
            // on every ADD: the price of deriving borrowed addresses here.
            blocks: custom("ipamblocks"),
          };
  }

  /** The node's pods that may hold addresses (not finished). */
  podObjects(): PodObject[] {
    return (this.pods.list() as unknown as PodObject[]).filter(
      (pod) => !isFinished(pod as unknown as V1Pod),
    );
  }

  /** This node's endpoints as the plugin recorded them (their NATs empty). */
  endpointRecords(): { object: KubeObject; endpoint: WorkloadEndpoint }[] {
    return objectsOf<KubeObject>(this.endpoints)
      .map((object) => ({ object, endpoint: endpointFromObject(object) }))
      .filter(({ endpoint }) => endpoint.node === this.options.node);
  }

  claimRecords(): RawRecord[] {
    return objectsOf<KubeObject>(this.claims).map((object) => ({
      key: `floatingipclaims/${object.metadata.name}`,
      version: object.metadata.resourceVersion ?? "",
      value: claimFromObject(object),
    }));
  }

  /** The valid pools (the live-edit controller's view). */
  validPools(): IpPool[] {
    return objectsOf<KubeObject>(this.pools).flatMap((object) => {
      try {
        return [poolFromObject(object)];
      } catch {
        return [];
      }
    });
  }

  /** The resources whose watch is not established now. */
  down(): string[] {
    return [...this.#up].filter(([, up]) => !up).map(([name]) => name);
  }

  /** Keeps every cache watching until `signal` aborts, then stops them. */
  async run(signal: AbortSignal, hooks: CacheHooks): Promise<void> {
    const caches: [string, ListWatch<KubernetesObject>][] = [
      ["pods", this.pods as unknown as ListWatch<KubernetesObject>],
      ["workloadendpoints", this.endpoints],
      ["floatingipclaims", this.claims],
      ["ippools", this.pools],
      ["leases", this.leases],
      ...(this.routing
        ? ([
            ["nodes", this.routing.nodes],
            ["bgppeers", this.routing.peers],
            ["ipamblocks", this.routing.blocks],
          ] as [string, ListWatch<KubernetesObject>][])
        : []),
    ];
    for (const [name] of caches) this.#up.set(name, false);
    let connected = false;
    const update = () => {
      const now = this.down().length === 0;
      if (now !== connected) hooks.connected(now);
      connected = now;
    };
    // A Lease renewal changes only its renewTime: no reason to reconcile
    // (liveness is looked at once a second: kube-agent-source.ts). Its list of IPs is.
    const leaseContent = new Map<string, string>();
    await keepWatching(caches, signal, this.options.logger, {
      logEvent: "agent.watch",
      state: (name, up) => {
        this.#up.set(name, up);
        update();
        if (!up) return;
        if (name === "leases") hooks.leasesStarted();
        hooks.changed();
      },
      event: (name, type, object) => {
        if (name === "leases") {
          const lease = object as unknown as KubeObject;
          if (type === "delete") {
            leaseContent.delete(lease.metadata.name);
          } else {
            const content = hooks.leaseContent(lease);
            if (leaseContent.get(lease.metadata.name) === content) return;
            leaseContent.set(lease.metadata.name, content);
          }
        }
        hooks.changed();
      },
    });
  }
}

/** A cache's objects as the shape the reader reads. */
export function objectsOf<T>(cache: ListWatch<KubernetesObject> | ListWatch<V1Pod>): T[] {
  return [...cache.list()] as unknown as T[];
}

/** A pod whose containers have all ended holds no addresses any more. */
function isFinished(pod: V1Pod): boolean {
  return pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed";
}
