// The agent's datastore side over the Kubernetes API (ADR 0006), with
// @kubernetes/client-node, composed of:
//   - list-watch-caches.ts: the caches of this node's pods and endpoint
//     objects (a pod's addresses and sandbox as the plugin recorded them with
//     the node's credentials, never Calico's annotations: ADR 0008), the
//     FloatingIPClaims and IPPools, the nodes' status Leases and, in routing
//     modes, the Nodes, BGPPeers and IPAMBlocks;
//   - lease-status.ts: one Lease per node, renewed by its agent, listing the
//     floating IPs the node translates (ADR 0004's acknowledgements), and the
//     claims' status subresource;
//   - pod-claims.ts: live annotation edits, claimed as ADD claims;
//   - claim-collector.ts and departed-node-collector.ts: claims of pods that
//     are gone, and addresses of nodes that left the cluster;
//   - network-policy-probe.ts: whether the cluster has NetworkPolicy objects
//     (buoy enforces none).
import { CoreV1Api, CustomObjectsApi, KubeConfig } from "@kubernetes/client-node";
import type { FloatingIpClaim, FloatingIpStatus, IpamBlock } from "../model/records.js";
import type { RoutingMode } from "../dataplane/routing-plan.js";
import type {
  AgentSource,
  AgentState,
  RawRecord,
  WatchHandlers,
} from "../datastore/agent-source.js";
import type { Logger } from "../log/logger.js";
import { ClaimCollector } from "./claim-collector.js";
import { DepartedNodeCollector } from "./departed-node-collector.js";
import { describeKubeError } from "./describe-kube-error.js";
import { LeaseStatus } from "./lease-status.js";
import { ListWatchCaches, objectsOf } from "./list-watch-caches.js";
import { NetworkPolicyProbe } from "./network-policy-probe.js";
import { PodClaimController } from "./pod-claims.js";
import {
  blockFromObject,
  blockRoutes,
  isPodOf,
  nodeFromObject,
  peerFromObject,
  poolFromObject,
  type KubeNodeObject,
  withRequest,
  type KubeObject,
} from "./objects.js";

/** The kubeconfig file, or (undefined) the pod's service account in the cluster. */
export function loadKubeConfig(file: string | undefined): KubeConfig {
  const config = new KubeConfig();
  if (file) config.loadFromFile(file);
  else config.loadFromCluster();
  return config;
}

export interface KubeAgentSourceOptions {
  kubeConfig: KubeConfig;
  node: string;
  /** Where the nodes' status Leases live (the agent's own namespace). */
  namespace: string;
  logger: Logger;
  /** How long a node's Lease counts without renewal (s). */
  leaseSeconds: number;
  /** Release claims whose holder pod is gone after this long (ms); 0 turns the collector off. */
  claimGcGraceMs: number;
  /** Whether floating IPs are on for this node (annotation edits are refused when off). */
  floatingIpsEnabled: () => boolean;
  /** The most floating IPs an annotation edit may give one pod (the conflist's bound). */
  maxFloatingIps: () => number;
  /** Routing modes also read the nodes (Kubernetes Nodes), BGP peers and IPAM blocks. */
  routing: RoutingMode;
  /** Monotonic milliseconds (tests). */
  now?: () => number;
}

export class KubeAgentSource implements AgentSource {
  readonly #caches: ListWatchCaches;
  readonly #status: LeaseStatus;
  readonly #controller: PodClaimController;
  readonly #claimCollector: ClaimCollector;
  readonly #departedNodes: DepartedNodeCollector;
  readonly #networkPolicies: NetworkPolicyProbe;
  #lastLive = "";

  constructor(private readonly options: KubeAgentSourceOptions) {
    const { kubeConfig, node, namespace, logger } = options;
    const core = kubeConfig.makeApiClient(CoreV1Api);
    const custom = kubeConfig.makeApiClient(CustomObjectsApi);
    const caches = new ListWatchCaches({
      kubeConfig,
      core,
      custom,
      node,
      namespace,
      logger,
      routing: options.routing,
    });
    this.#caches = caches;
    this.#status = new LeaseStatus({
      custom,
      caches,
      node,
      namespace,
      leaseSeconds: options.leaseSeconds,
      now: () => this.#now(),
    });
    this.#controller = new PodClaimController({
      custom,
      core,
      node,
      logger,
      floatingIpsEnabled: options.floatingIpsEnabled,
      maxFloatingIps: options.maxFloatingIps,
      state: () => ({
        pods: caches.podObjects(),
        endpoints: caches.endpointRecords().map(({ endpoint }) => endpoint),
        claims: caches.claimRecords(),
        pools: caches.validPools(),
      }),
    });
    this.#claimCollector = new ClaimCollector({ core, custom, caches, node, logger });
    this.#departedNodes = new DepartedNodeCollector({ core, custom, caches, node, logger });
    this.#networkPolicies = new NetworkPolicyProbe(kubeConfig);
  }

  #now(): number {
    return (this.options.now ?? performance.now.bind(performance))();
  }

  async read(): Promise<AgentState> {
    // Caches that are not being kept up to date must not drive the kernel:
    // the reconcile fails and the dataplane stays as it is (as with etcd away).
    const down = this.#caches.down();
    if (down.length > 0) {
      throw new Error(
        `the Kubernetes API watch of ${down.join(", ")} is down; keeping the dataplane`,
      );
    }
    const claims = this.#caches.claimRecords();
    const claimValues = claims.map(({ value }) => value as FloatingIpClaim);
    const endpoints: RawRecord[] = [];
    const pods = new Map(
      this.#caches
        .podObjects()
        .map((pod) => [`${pod.metadata.namespace}/${pod.metadata.name}`, pod]),
    );
    for (const { object, endpoint } of this.#caches.endpointRecords()) {
      const pod = pods.get(`${endpoint.namespace}/${endpoint.pod}`);
      // A pod that is gone, finished or replaced has no endpoint here.
      if (!pod || !isPodOf(endpoint, pod)) continue;
      const value = withRequest(endpoint, pod, claimValues);
      endpoints.push({
        key: `workloadendpoints/${object.metadata.name}`,
        // Its ipNATs come from the claims: the version covers what they gave.
        version: `${object.metadata.resourceVersion ?? ""}/${pod.metadata.resourceVersion ?? ""}/${JSON.stringify(value.ipNATs)}`,
        value,
      });
    }
    const pools = objectsOf<KubeObject>(this.#caches.pools).map((object) => {
      let value: unknown;
      try {
        value = poolFromObject(object);
      } catch {
        value = undefined; // reported by the reconciler as malformed
      }
      return {
        key: `ippools/${object.metadata.name}`,
        version: object.metadata.resourceVersion ?? "",
        value,
      };
    });
    return {
      endpoint: endpoints,
      claim: claims,
      pool: pools,
      status: this.#status.liveStatuses(),
      ...this.#routingRecords(),
    };
  }

  #routingRecords(): Pick<AgentState, "node" | "affinity" | "peer" | "borrowed"> {
    const records = { node: [], affinity: [], peer: [], borrowed: [] } as Pick<
      AgentState,
      "node" | "affinity" | "peer" | "borrowed"
    >;
    const routing = this.#caches.routing;
    if (!routing) return records;
    const { nodes, peers, blocks } = routing;
    for (const object of objectsOf<KubeNodeObject>(nodes)) {
      const version = object.metadata.resourceVersion ?? "";
      records.node.push({
        key: `nodes/${object.metadata.name}`,
        version,
        value: nodeFromObject(object),
      });
    }
    for (const object of objectsOf<KubeObject>(peers)) {
      const version = object.metadata.resourceVersion ?? "";
      records.peer.push({
        key: `bgppeers/${object.metadata.name}`,
        version,
        value: peerFromObject(object),
      });
    }
    for (const object of objectsOf<KubeObject<Partial<IpamBlock>>>(blocks)) {
      const { value: block, revision } = blockFromObject(object);
      const key = `ipamblocks/${object.metadata.name}`;
      const { affinity, borrowed } = blockRoutes(block);
      if (affinity) records.affinity.push({ key, version: revision, value: affinity });
      for (const entry of borrowed) {
        records.borrowed.push({ key: `${key}#${entry.ip}`, version: revision, value: entry });
      }
    }
    return records;
  }

  async watch(signal: AbortSignal, handlers: WatchHandlers): Promise<void> {
    let connected = false;
    signal.addEventListener("abort", () => this.#controller.stop(), { once: true });
    // A node's Lease lapsing is no event: look for it once a second.
    const expiry = setInterval(() => {
      if (!connected) return;
      const live = this.#status
        .liveStatuses()
        .map((record) => record.key)
        .join(",");
      if (live !== this.#lastLive) handlers.changed();
      this.#lastLive = live;
    }, 1000);
    signal.addEventListener("abort", () => clearInterval(expiry), { once: true });
    await this.#caches.run(signal, {
      connected: (up) => {
        handlers.connected(up);
        connected = up;
      },
      changed: () => {
        handlers.changed();
        if (connected) this.#controller.schedule();
      },
      leaseContent: (lease) => LeaseStatus.content(lease),
      leasesStarted: () => this.#status.leasesStarted(),
    });
  }

  recordStatus(
    desired: readonly FloatingIpStatus[],
    recorded: readonly FloatingIpStatus[],
  ): Promise<void> {
    return oneLine(() => this.#status.recordStatus(desired, recorded));
  }

  keepAlive(): Promise<boolean> {
    return oneLine(() => this.#status.keepAlive());
  }

  networkPoliciesPresent(): Promise<boolean> {
    return oneLine(() => this.#networkPolicies.readPresent());
  }

  collect(): Promise<string[]> {
    return oneLine(async () => {
      const grace = this.options.claimGcGraceMs;
      if (grace <= 0) return [];
      const now = this.#now();
      const released = await this.#claimCollector.collect(now, grace);
      return [...released, ...(await this.#departedNodes.collect(now, grace))];
    });
  }
}

/** Errors of the API as one line (for logs and /readyz), not client-node's dump of headers. */
async function oneLine<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw new Error(describeKubeError(error), { cause: error });
  }
}
