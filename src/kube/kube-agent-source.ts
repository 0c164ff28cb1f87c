// The agent's datastore side over the Kubernetes API (ADR 0006), with
// @kubernetes/client-node: list-and-watch caches (relisting after 410 Gone,
// restarted with backoff when the API server goes away) of
//   - the pods of this node (field selector spec.nodeName): the endpoints,
//     derived from Calico's annotations as the plugin wrote them;
//   - the FloatingIPClaims and IPPools;
//   - the nodes' status Leases in the agent's namespace: one Lease per node,
//     renewed by its agent, whose annotation lists the floating IPs the node
//     translates (ADR 0004's acknowledgements). A Lease not renewed within its
//     duration, as observed here, no longer counts: a dead node's IPs move.
// Objects are written as plain JSON through the custom-objects API: a Lease's
// MicroTime needs six fractional digits, which the typed client cannot write.
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
import type { FloatingIpClaim, FloatingIpStatus, IpamBlock } from "../model/records.js";
import type { RoutingMode } from "../dataplane/routing-plan.js";
import type {
  AgentSource,
  AgentState,
  RawRecord,
  WatchHandlers,
} from "../datastore/agent-source.js";
import { hostInterfaceName } from "../dataplane/pod-network.js";
import type { Logger } from "../log/logger.js";
import { planDepartedReleases } from "../ipam/block.js";
import { BUOY_API_GROUP, BUOY_API_VERSION, BUOY_VERSION } from "../model/api-group.js";
import { CONTAINER_ID_ANNOTATION, PROGRAMMED_ANNOTATION, STATUS_LABEL } from "./labels.js";
import { describeKubeError, statusOf } from "./describe-kube-error.js";
import { PodClaimController } from "./pod-claims.js";
import {
  blockFromObject,
  blockRoutes,
  blockToObject,
  claimFromObject,
  endpointFromPod,
  nodeFromObject,
  peerFromObject,
  poolFromObject,
  type KubeNodeObject,
  type KubeObject,
  type PodObject,
} from "./objects.js";

const RESTART_MS = [200, 500, 1000, 2000, 5000];

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
  /** Routing modes also read the nodes (Kubernetes Nodes), BGP peers and IPAM blocks. */
  routing: RoutingMode;
  /** Monotonic milliseconds (tests). */
  now?: () => number;
}

interface LeaseObject extends KubeObject {
  spec?: { holderIdentity?: string; leaseDurationSeconds?: number; renewTime?: string };
}

export class KubeAgentSource implements AgentSource {
  readonly #core: CoreV1Api;
  readonly #custom: CustomObjectsApi;
  readonly #pods: ListWatch<V1Pod>;
  readonly #claims: ListWatch<KubernetesObject>;
  readonly #pools: ListWatch<KubernetesObject>;
  readonly #leases: ListWatch<KubernetesObject>;
  /** Routing modes only: Kubernetes Nodes, BGPPeers, IPAMBlocks. */
  readonly #routing:
    | {
        nodes: ListWatch<KubernetesObject>;
        peers: ListWatch<KubernetesObject>;
        blocks: ListWatch<KubernetesObject>;
      }
    | undefined;
  /** When each Lease was last seen to change (monotonic ms), by name and resourceVersion. */
  readonly #observed = new Map<string, { version: string; at: number }>();
  #renewedAt = 0;
  readonly #controller: PodClaimController;
  /** First time each orphaned claim was seen, by `name@resourceVersion`. */
  #orphans = new Map<string, number>();
  /** First time each node that holds addresses was seen missing from the Nodes, by name. */
  #departed = new Map<string, number>();

  constructor(private readonly options: KubeAgentSourceOptions) {
    const { kubeConfig, node, namespace } = options;
    this.#core = kubeConfig.makeApiClient(CoreV1Api);
    this.#custom = kubeConfig.makeApiClient(CustomObjectsApi);
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
    this.#pods = new ListWatch<V1Pod>(
      "/api/v1/pods",
      watch,
      counted("pods", () => this.#core.listPodForAllNamespaces({ fieldSelector })),
      false,
      undefined,
      fieldSelector,
    );
    const custom = (plural: string) =>
      new ListWatch<KubernetesObject>(
        `/apis/${BUOY_API_VERSION}/${plural}`,
        watch,
        counted(
          plural,
          () =>
            this.#custom.listClusterCustomObject({
              group: BUOY_API_GROUP,
              version: BUOY_VERSION,
              plural,
            }) as Promise<KubernetesListObject<KubernetesObject>>,
        ),
        false,
      );
    this.#claims = custom("floatingipclaims");
    this.#pools = custom("ippools");
    const labelSelector = `${STATUS_LABEL}=true`;
    this.#leases = new ListWatch<KubernetesObject>(
      `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`,
      watch,
      counted(
        "leases",
        () =>
          this.#custom.listNamespacedCustomObject({
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
    this.#routing =
      options.routing === "none"
        ? undefined
        : {
            nodes: new ListWatch<KubernetesObject>(
              "/api/v1/nodes",
              watch,
              counted(
                "nodes",
                () => this.#core.listNode() as Promise<KubernetesListObject<KubernetesObject>>,
              ),
              false,
            ),
            peers: custom("bgppeers"),
            // Every allocation changes a block, so every routing agent wakes
            // on every ADD: the price of deriving borrowed addresses here.
            blocks: custom("ipamblocks"),
          };
    this.#controller = new PodClaimController({
      custom: this.#custom,
      core: this.#core,
      node,
      logger: options.logger,
      floatingIpsEnabled: options.floatingIpsEnabled,
      state: () => ({
        pods: this.#podObjects(),
        claims: this.#claimObjects(),
        pools: this.#poolsForController(),
      }),
    });
  }

  #now(): number {
    return (this.options.now ?? performance.now.bind(performance))();
  }

  async read(): Promise<AgentState> {
    // Caches that are not being kept up to date must not drive the kernel:
    // the reconcile fails and the dataplane stays as it is (as with etcd away).
    const down = this.#down();
    if (down.length > 0) {
      throw new Error(
        `the Kubernetes API watch of ${down.join(", ")} is down; keeping the dataplane`,
      );
    }
    const claims = this.#claimObjects();
    const claimValues = claims.map(({ value }) => value as FloatingIpClaim);
    const endpoints: RawRecord[] = [];
    for (const pod of this.#podObjects()) {
      const containerID = pod.metadata.annotations?.[CONTAINER_ID_ANNOTATION];
      if (!containerID) continue;
      const namespace = pod.metadata.namespace ?? "default";
      const interfaceName = await hostInterfaceName(namespace, pod.metadata.name, containerID);
      const endpoint = endpointFromPod(
        pod,
        { node: this.options.node, containerID, ifname: "eth0", interfaceName },
        claimValues,
      );
      if (!endpoint) continue;
      endpoints.push({
        key: `pods/${namespace}/${pod.metadata.name}`,
        version: pod.metadata.resourceVersion ?? "",
        value: endpoint,
      });
    }
    const pools = objectsOf<KubeObject>(this.#pools).map((object) => {
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
      status: this.#liveStatuses(),
      ...this.#routingRecords(),
    };
  }

  #routingRecords(): Pick<AgentState, "node" | "affinity" | "peer" | "borrowed"> {
    const records = { node: [], affinity: [], peer: [], borrowed: [] } as Pick<
      AgentState,
      "node" | "affinity" | "peer" | "borrowed"
    >;
    if (!this.#routing) return records;
    const { nodes, peers, blocks } = this.#routing;
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

  #podObjects(): PodObject[] {
    return (this.#pods.list() as unknown as PodObject[]).filter(
      (pod) => !isFinished(pod as unknown as V1Pod),
    );
  }

  #claimObjects(): RawRecord[] {
    return objectsOf<KubeObject>(this.#claims).map((object) => ({
      key: `floatingipclaims/${object.metadata.name}`,
      version: object.metadata.resourceVersion ?? "",
      value: claimFromObject(object),
    }));
  }

  /**
   * The statuses of every node whose Lease was renewed within its duration
   * (this node's always). Time is this node's own, and only time in which it
   * saw its own renewals come back through the Lease watch counts: another
   * node's Lease lapses only when this node's did not. So an API server that
   * is away, slow, or a watch that has stalled makes no node look dead
   * (otherwise every node would withdraw every other's floating IPs at once).
   */
  #liveStatuses(): RawRecord[] {
    const now = this.#now();
    const records: RawRecord[] = [];
    const present = new Set<string>();
    const leases = objectsOf<LeaseObject>(this.#leases);
    for (const lease of leases) {
      const name = lease.metadata.name;
      present.add(name);
      const version = lease.metadata.resourceVersion ?? "";
      if (this.#observed.get(name)?.version !== version) {
        this.#observed.set(name, { version, at: now });
      }
    }
    // The last time this node's own renewal was seen: the clock others are judged by.
    const judged = this.#observed.get(this.#leaseName())?.at ?? 0;
    for (const lease of leases) {
      const name = lease.metadata.name;
      const version = lease.metadata.resourceVersion ?? "";
      const at = Math.max(this.#observed.get(name)?.at ?? now, this.#leasesUpSince);
      const holder = lease.spec?.holderIdentity ?? "";
      const duration = (lease.spec?.leaseDurationSeconds ?? this.options.leaseSeconds) * 1000;
      if (holder !== this.options.node && judged - at > duration) continue;
      let statuses: unknown;
      try {
        statuses = JSON.parse(lease.metadata.annotations?.[PROGRAMMED_ANNOTATION] ?? "[]");
      } catch {
        statuses = [undefined];
      }
      for (const [index, status] of (Array.isArray(statuses) ? statuses : [undefined]).entries()) {
        records.push({ key: `leases/${name}#${index}`, version, value: status });
      }
    }
    for (const name of this.#observed.keys()) if (!present.has(name)) this.#observed.delete(name);
    return records;
  }

  /** The resources whose watch is not established now. */
  #down(): string[] {
    return [...this.#up].filter(([, up]) => !up).map(([name]) => name);
  }

  async watch(signal: AbortSignal, handlers: WatchHandlers): Promise<void> {
    const caches: [string, ListWatch<KubernetesObject>][] = [
      ["pods", this.#pods as unknown as ListWatch<KubernetesObject>],
      ["floatingipclaims", this.#claims],
      ["ippools", this.#pools],
      ["leases", this.#leases],
      ...(this.#routing
        ? ([
            ["nodes", this.#routing.nodes],
            ["bgppeers", this.#routing.peers],
            ["ipamblocks", this.#routing.blocks],
          ] as [string, ListWatch<KubernetesObject>][])
        : []),
    ];
    for (const [name] of caches) this.#up.set(name, false);
    let connected = false;
    const update = () => {
      const now = this.#down().length === 0;
      if (now !== connected) handlers.connected(now);
      connected = now;
    };
    const changed = () => {
      handlers.changed();
      if (connected) this.#controller.schedule();
    };
    const timers = new Set<NodeJS.Timeout>();
    const stopped = new Promise<void>((resolve) =>
      signal.addEventListener("abort", () => resolve(), { once: true }),
    );
    signal.addEventListener(
      "abort",
      () => {
        for (const timer of timers) clearTimeout(timer);
        this.#controller.stop();
      },
      { once: true },
    );
    for (const [name, cache] of caches) {
      let failures = 0;
      let failed = false;
      let timer: NodeJS.Timeout | undefined;
      // A Lease renewal changes only its renewTime: no reason to reconcile
      // (liveness is looked at once a second below). Its list of IPs is.
      const leaseContent = new Map<string, string>();
      const onChange = (object: KubernetesObject) => {
        if (cache === this.#leases) {
          const lease = object as unknown as LeaseObject;
          const content = `${lease.spec?.holderIdentity}|${lease.metadata.annotations?.[PROGRAMMED_ANNOTATION]}`;
          if (leaseContent.get(lease.metadata.name) === content) return;
          leaseContent.set(lease.metadata.name, content);
        }
        changed();
      };
      cache.on("add", onChange);
      cache.on("update", onChange);
      cache.on("delete", (object) => {
        if (cache === this.#leases) leaseContent.delete(object.metadata?.name ?? "");
        changed();
      });
      const fail = (error: unknown) => {
        failed = true;
        this.#up.set(name, false);
        update();
        failures += 1;
        const delay = RESTART_MS[Math.min(failures - 1, RESTART_MS.length - 1)] as number;
        this.options.logger.log("warn", "agent.watch", {
          resource: name,
          error: describeKubeError(error),
          retryInMs: delay,
        });
        if (timer) timers.delete(timer);
        clearTimeout(timer);
        if (signal.aborted) return;
        timer = setTimeout(() => void start(), delay);
        timers.add(timer);
      };
      cache.on("error", fail);
      const start = async () => {
        if (signal.aborted) return;
        failed = false;
        try {
          await cache.start();
        } catch (error) {
          if (!failed) fail(error); // thrown outside the library's own error path
          return;
        }
        if (failed || signal.aborted) return;
        failures = 0;
        if (cache === this.#leases) this.#leasesUpSince = this.#now();
        this.#up.set(name, true);
        update();
        changed();
      };
      void start();
    }
    // A node's Lease lapsing is no event: look for it once a second.
    const expiry = setInterval(() => {
      if (!connected) return;
      const live = this.#liveStatuses()
        .map((record) => record.key)
        .join(",");
      if (live !== this.#lastLive) handlers.changed();
      this.#lastLive = live;
    }, 1000);
    await stopped;
    clearInterval(expiry);
    await Promise.all(caches.map(([, cache]) => cache.stop()));
  }

  #lastLive = "";
  /** Whether each resource's watch is established, by resource name. */
  readonly #up = new Map<string, boolean>();
  /** When the Lease watch was last established (monotonic ms). */
  #leasesUpSince = 0;

  #poolsForController() {
    return objectsOf<KubeObject>(this.#pools).flatMap((object) => {
      try {
        return [poolFromObject(object)];
      } catch {
        return [];
      }
    });
  }

  recordStatus(
    desired: readonly FloatingIpStatus[],
    recorded: readonly FloatingIpStatus[],
  ): Promise<void> {
    return oneLine(() => this.#recordStatus(desired, recorded));
  }

  keepAlive(): Promise<boolean> {
    return oneLine(() => this.#keepAlive());
  }

  collect(): Promise<string[]> {
    return oneLine(() => this.#collect());
  }

  async #recordStatus(
    desired: readonly FloatingIpStatus[],
    recorded: readonly FloatingIpStatus[],
  ): Promise<void> {
    const changed =
      desired.length !== recorded.length ||
      JSON.stringify(sorted(desired)) !== JSON.stringify(sorted(recorded));
    if (changed || !this.#ownLease()) await this.#writeLease(desired);
    await this.#writeClaimStatuses(desired);
  }

  async #keepAlive(): Promise<boolean> {
    const lapsed = this.#now() - this.#renewedAt > this.options.leaseSeconds * 1000;
    const lease = this.#ownLease();
    if (!lease) return false;
    await this.#writeLease(undefined);
    return !lapsed;
  }

  #leaseName(): string {
    return `buoy-node.${this.options.node}`;
  }

  #ownLease(): LeaseObject | undefined {
    return this.#leases.get(this.#leaseName(), this.options.namespace) as LeaseObject | undefined;
  }

  /** Creates or renews this node's Lease; `statuses` undefined keeps the recorded ones. */
  async #writeLease(statuses: readonly FloatingIpStatus[] | undefined): Promise<void> {
    const { namespace, node, leaseSeconds } = this.options;
    const name = this.#leaseName();
    const params = { group: "coordination.k8s.io", version: "v1", namespace, plural: "leases" };
    for (let attempt = 0; attempt < 5; attempt++) {
      // The cache's copy first (one call per renewal); after a conflict, the server's.
      let current: LeaseObject | undefined = attempt === 0 ? this.#ownLease() : undefined;
      try {
        current ??= (await this.#custom.getNamespacedCustomObject({
          ...params,
          name,
        })) as LeaseObject;
      } catch (error) {
        if (statusOf(error) !== 404) throw error;
      }
      const annotation =
        statuses === undefined
          ? (current?.metadata.annotations?.[PROGRAMMED_ANNOTATION] ?? "[]")
          : JSON.stringify(sorted(statuses));
      const body = {
        apiVersion: "coordination.k8s.io/v1",
        kind: "Lease",
        metadata: {
          name,
          namespace,
          labels: { [STATUS_LABEL]: "true" },
          annotations: { [PROGRAMMED_ANNOTATION]: annotation },
          ...(current?.metadata.resourceVersion
            ? { resourceVersion: current.metadata.resourceVersion }
            : {}),
        },
        spec: {
          holderIdentity: node,
          leaseDurationSeconds: leaseSeconds,
          renewTime: microTime(new Date()),
        },
      };
      try {
        if (current) await this.#custom.replaceNamespacedCustomObject({ ...params, name, body });
        else await this.#custom.createNamespacedCustomObject({ ...params, body });
        this.#renewedAt = this.#now();
        return;
      } catch (error) {
        if (statusOf(error) !== 409) throw error; // a conflict: read again
      }
    }
    throw new Error(`renewing Lease ${namespace}/${name} kept conflicting`);
  }

  /** The claims' status subresource: programmed, announced, since, as this node sees them. */
  async #writeClaimStatuses(desired: readonly FloatingIpStatus[]): Promise<void> {
    const programmed = new Map(desired.map((status) => [status.ip, status]));
    for (const object of objectsOf<KubeObject>(this.#claims)) {
      const claim = claimFromObject(object);
      if (claim.node !== this.options.node) continue;
      const status = programmed.get(claim.ip);
      const next = status
        ? {
            programmed: true,
            since: status.programmedSince,
            ...(status.announced ? { announced: status.announced } : {}),
          }
        : { programmed: false };
      const current = (object.status ?? {}) as Record<string, unknown>;
      if (
        current.programmed === next.programmed &&
        current.since === ("since" in next ? next.since : undefined) &&
        current.announced === ("announced" in next ? next.announced : undefined)
      ) {
        continue;
      }
      try {
        await this.#custom.replaceClusterCustomObjectStatus({
          group: BUOY_API_GROUP,
          version: BUOY_VERSION,
          plural: "floatingipclaims",
          name: object.metadata.name,
          body: { ...object, status: next },
        });
      } catch (error) {
        // Gone or changed since the cache saw it: the next reconcile has the new one.
        if (statusOf(error) !== 404 && statusOf(error) !== 409) throw error;
      }
    }
  }

  /**
   * Claims held on this node by a pod that is gone (or replaced: another uid),
   * seen so for the grace period, deleted on their uid and resourceVersion.
   */
  async #collect(): Promise<string[]> {
    const grace = this.options.claimGcGraceMs;
    if (grace <= 0) return [];
    const now = this.#now();
    const pods = new Map(
      (this.#pods.list() as unknown as PodObject[]).map((pod) => [
        `${pod.metadata.namespace}/${pod.metadata.name}`,
        pod,
      ]),
    );
    const seen = new Map<string, number>();
    const released: string[] = [];
    for (const object of objectsOf<KubeObject>(this.#claims)) {
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
        await this.#custom.deleteClusterCustomObject({
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
      this.options.logger.log("info", "agent.gc", {
        released: claim.ip,
        holder: `${claim.namespace}/${claim.pod}`,
        reason,
        orphanedForMs: Math.round(now - since),
      });
    }
    this.#orphans = seen;
    return [...released, ...(await this.#collectDeparted(now, grace))];
  }

  /**
   * Addresses of nodes that left the cluster (no Node object, for the grace
   * period and then by a fresh read): released from their blocks, a departed
   * node's blocks lose their affinity and are deleted once empty
   * (ipam/block.ts planDepartedReleases). Every routing agent runs it; writes
   * compare on resourceVersion, so two agents never both apply one change.
   * Not without the Node and block caches (--routing none).
   */
  async #collectDeparted(now: number, grace: number): Promise<string[]> {
    if (!this.#routing) return [];
    const live = new Set(
      objectsOf<KubeObject>(this.#routing.nodes).map((object) => object.metadata.name),
    );
    // A cache that has not listed yet must not make the whole cluster look gone.
    if (!live.has(this.options.node)) return [];
    const objects = objectsOf<KubeObject<Partial<IpamBlock>>>(this.#routing.blocks);
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
          await this.#custom.replaceClusterCustomObject({
            group: BUOY_API_GROUP,
            version: BUOY_VERSION,
            plural: "ipamblocks",
            name: object.metadata.name,
            body: { ...blockToObject(plan.after, revision), metadata: { ...object.metadata } },
          });
        } else {
          await this.#custom.deleteClusterCustomObject({
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
      this.options.logger.log("info", "agent.gc", {
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
      await this.#core.readNode({ name });
      return true;
    } catch (error) {
      if (statusOf(error) === 404) return false;
      throw error;
    }
  }

  async #deleteAffinity(node: string, blockName: string): Promise<void> {
    try {
      await this.#custom.deleteClusterCustomObject({
        group: BUOY_API_GROUP,
        version: BUOY_VERSION,
        plural: "blockaffinities",
        name: `${node}-${blockName}`,
      });
    } catch (error) {
      if (statusOf(error) !== 404) throw error;
    }
  }

  async #readPod(namespace: string, name: string): Promise<PodObject | undefined> {
    try {
      return (await this.#core.readNamespacedPod({ namespace, name })) as unknown as PodObject;
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

/** Errors of the API as one line (for logs and /readyz), not client-node's dump of headers. */
async function oneLine<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw new Error(describeKubeError(error), { cause: error });
  }
}

/** A cache's objects as the shape this module reads. */
function objectsOf<T>(cache: ListWatch<KubernetesObject> | ListWatch<V1Pod>): T[] {
  return [...cache.list()] as unknown as T[];
}

/** A pod whose containers have all ended holds no addresses any more. */
function isFinished(pod: V1Pod): boolean {
  return pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed";
}

function sorted(statuses: readonly FloatingIpStatus[]): FloatingIpStatus[] {
  return [...statuses].sort((a, b) => a.ip.localeCompare(b.ip));
}

/** Kubernetes' MicroTime: RFC 3339 with exactly six fractional digits. */
export function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}
