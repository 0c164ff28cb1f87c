// The FloatingIP controller's view of the cluster (floating-ip-controller.ts):
// list-and-watch caches of the FloatingIPs, the pods, the endpoint objects,
// the claims FloatingIPs hold (by their label), the pools and the Leases in
// buoy's namespace, with the indexes that keep an event's work to what it
// touches: endpoints by pod uid, claims by FloatingIP uid and by node.
import {
  ListWatch,
  Watch,
  type CoreV1Api,
  type CustomObjectsApi,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
} from "@kubernetes/client-node";
import { candidatesFor, type PodView } from "../failover/candidates.js";
import type { Candidate } from "../failover/choose-holder.js";
import { floatingIpKey, FLOATING_IP_LABEL } from "../failover/floating-ip.js";
import type { LabelSelector } from "../failover/label-selector.js";
import type { Logger } from "../log/logger.js";
import { BUOY_API_GROUP, BUOY_API_VERSION, BUOY_VERSION } from "../model/api-group.js";
import type { IpPool, WorkloadEndpoint } from "../model/records.js";
import { canonicalAddress } from "../net/address.js";
import { keepWatching } from "./keep-watching.js";
import { endpointFromObject, poolFromObject, type KubeObject } from "./objects.js";

export type FloatingIpObject = KubeObject;

interface LeaseObject extends KubeObject {
  spec?: { leaseDurationSeconds?: number };
}

export interface FailoverCachesOptions {
  kubeConfig: KubeConfig;
  core: CoreV1Api;
  custom: CustomObjectsApi;
  namespace: string;
  logger: Logger;
}

export interface FailoverHooks {
  /** Whether every cache is listed and watching. */
  synced(up: boolean): void;
  /** The Lease watch was established (again). */
  leasesStarted(): void;
  /** A Lease as it is now; version undefined: deleted. */
  lease(name: string, version: string | undefined): void;
  /** FloatingIPs an event touched (namespace/name). */
  touched(keys: Iterable<string>): void;
}

const NODE_LEASE_PREFIX = "buoy-node.";

export class FailoverCaches {
  readonly #floatingIps: ListWatch<KubernetesObject>;
  readonly #pods: ListWatch<KubernetesObject>;
  readonly #endpoints: ListWatch<KubernetesObject>;
  readonly #claims: ListWatch<KubernetesObject>;
  readonly #pools: ListWatch<KubernetesObject>;
  readonly #leases: ListWatch<KubernetesObject>;
  /** Endpoint records by pod uid, then object name. */
  readonly #endpointsByPod = new Map<string, Map<string, WorkloadEndpoint>>();
  /** The pod uid each endpoint object was indexed under, by object name. */
  readonly #endpointPod = new Map<string, string>();
  /** The claims FloatingIPs hold, by name; and their names by FloatingIP uid and by node. */
  readonly #claimObjects = new Map<string, KubeObject>();
  readonly #claimsByUid = new Map<string, Set<string>>();
  readonly #claimsByNode = new Map<string, Set<string>>();

  constructor(private readonly options: FailoverCachesOptions) {
    const { kubeConfig, core, custom, namespace } = options;
    const watch = new Watch(kubeConfig);
    const list =
      (plural: string, labelSelector?: string) =>
      (): Promise<KubernetesListObject<KubernetesObject>> =>
        custom.listClusterCustomObject({
          group: BUOY_API_GROUP,
          version: BUOY_VERSION,
          plural,
          ...(labelSelector ? { labelSelector } : {}),
        }) as Promise<KubernetesListObject<KubernetesObject>>;
    const buoy = (plural: string, labelSelector?: string) =>
      new ListWatch<KubernetesObject>(
        `/apis/${BUOY_API_VERSION}/${plural}`,
        watch,
        list(plural, labelSelector),
        false,
        labelSelector,
      );
    this.#floatingIps = new ListWatch<KubernetesObject>(
      `/apis/${BUOY_API_VERSION}/floatingips`,
      watch,
      () =>
        custom.listCustomObjectForAllNamespaces({
          group: BUOY_API_GROUP,
          version: BUOY_VERSION,
          resourcePlural: "floatingips",
        }) as Promise<KubernetesListObject<KubernetesObject>>,
      false,
    );
    this.#pods = new ListWatch<KubernetesObject>(
      "/api/v1/pods",
      watch,
      () => core.listPodForAllNamespaces() as Promise<KubernetesListObject<KubernetesObject>>,
      false,
    );
    this.#endpoints = buoy("workloadendpoints");
    this.#claims = buoy("floatingipclaims", FLOATING_IP_LABEL);
    this.#pools = buoy("ippools");
    this.#leases = new ListWatch<KubernetesObject>(
      `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`,
      watch,
      () =>
        custom.listNamespacedCustomObject({
          group: "coordination.k8s.io",
          version: "v1",
          namespace,
          plural: "leases",
        }) as Promise<KubernetesListObject<KubernetesObject>>,
      false,
    );
  }

  async run(signal: AbortSignal, hooks: FailoverHooks): Promise<void> {
    const caches = [
      ["floatingips", this.#floatingIps],
      ["pods", this.#pods],
      ["workloadendpoints", this.#endpoints],
      ["floatingipclaims", this.#claims],
      ["ippools", this.#pools],
      ["leases", this.#leases],
    ] as const;
    const up = new Map<string, boolean>(caches.map(([name]) => [name, false]));
    let synced = false;
    await keepWatching(caches, signal, this.options.logger, {
      logEvent: "controller.watch",
      state: (name, isUp) => {
        up.set(name, isUp);
        if (isUp && name === "leases") {
          hooks.leasesStarted();
          for (const lease of this.#leases.list()) {
            hooks.lease(lease.metadata?.name ?? "", lease.metadata?.resourceVersion ?? "");
          }
        }
        if (isUp && name === "workloadendpoints") this.#reindexEndpoints();
        if (isUp && name === "floatingipclaims") this.#reindexClaims();
        const all = [...up.values()].every(Boolean);
        if (all !== synced) hooks.synced(all);
        synced = all;
      },
      event: (name, type, object) => {
        const meta = (object as KubeObject).metadata;
        switch (name) {
          case "floatingips":
            return hooks.touched([floatingIpKey(meta.namespace ?? "default", meta.name)]);
          case "pods":
            return hooks.touched(this.#keysIn(meta.namespace ?? "default"));
          case "workloadendpoints": {
            const endpoint = endpointFromObject(object as KubeObject);
            this.#indexEndpoint(meta.name, type === "delete" ? undefined : endpoint);
            return hooks.touched(this.#keysIn(endpoint.namespace));
          }
          case "floatingipclaims": {
            const before = this.#claimObjects.get(meta.name);
            this.#indexClaim(meta.name, type === "delete" ? undefined : (object as KubeObject));
            const keys = [before, object as KubeObject].map((claim) =>
              String(claim?.spec?.floatingIP ?? ""),
            );
            return hooks.touched(keys.filter(Boolean));
          }
          case "ippools":
            return hooks.touched(this.floatingIpKeys());
          case "leases":
            return hooks.lease(
              meta.name,
              type === "delete" ? undefined : (meta.resourceVersion ?? ""),
            );
        }
      },
    });
  }

  floatingIpKeys(): string[] {
    return this.#floatingIps
      .list()
      .map(({ metadata }) => floatingIpKey(metadata?.namespace ?? "default", metadata?.name ?? ""));
  }

  floatingIp(key: string): FloatingIpObject | undefined {
    const [namespace = "", name = ""] = splitKey(key);
    return this.#floatingIps.get(name, namespace) as FloatingIpObject | undefined;
  }

  /**
   * The addresses every FloatingIP but `except` names, in its spec or its
   * status: what a pool's allocation leaves alone. A walk of the cached
   * FloatingIPs, in memory, once per allocation.
   */
  addressesNamed(except: string): Set<string> {
    const named = new Set<string>();
    for (const fip of this.#floatingIps.list() as KubeObject[]) {
      const key = floatingIpKey(fip.metadata.namespace ?? "default", fip.metadata.name);
      if (key === except) continue;
      for (const address of [fip.spec?.address, fip.status?.address]) {
        if (typeof address === "string") named.add(canonicalAddress(address) ?? address);
      }
    }
    return named;
  }

  /** The claims labelled with a FloatingIP's uid (one, unless its address changed). */
  claimsOf(uid: string): KubeObject[] {
    return [...(this.#claimsByUid.get(uid) ?? [])].flatMap(
      (name) => this.#claimObjects.get(name) ?? [],
    );
  }

  /** Claims naming `key` whose label is no current FloatingIP's uid. */
  claimsNamed(key: string): KubeObject[] {
    const uid = this.floatingIp(key)?.metadata.uid;
    return [...this.#claimObjects.values()].filter(
      (claim) =>
        claim.spec?.floatingIP === key && claim.metadata.labels?.[FLOATING_IP_LABEL] !== uid,
    );
  }

  /** The keys of claims whose FloatingIP is gone or was made again (another uid). */
  orphanClaimKeys(): string[] {
    const uids = new Set(this.#floatingIps.list().map(({ metadata }) => metadata?.uid ?? ""));
    return [...this.#claimsByUid.entries()]
      .filter(([uid]) => !uids.has(uid))
      .flatMap(([, names]) => [...names])
      .map((name) => String(this.#claimObjects.get(name)?.spec?.floatingIP ?? ""))
      .filter(Boolean);
  }

  pools(): IpPool[] {
    return this.#pools.list().flatMap((object) => {
      try {
        return [poolFromObject(object as KubeObject)];
      } catch {
        return [];
      }
    });
  }

  candidates(
    address: string,
    selector: LabelSelector,
    namespace: string,
    nodeLive: (node: string) => boolean,
  ): Candidate[] {
    return candidatesFor(
      address,
      selector,
      namespace,
      this.#pods.list(namespace) as unknown as PodView[],
      (uid) => [...(this.#endpointsByPod.get(uid)?.values() ?? [])],
      nodeLive,
    );
  }

  /** Nodes with a status Lease in buoy's namespace. */
  nodesWithLeases(): string[] {
    return this.#leases
      .list()
      .map(({ metadata }) => metadata?.name ?? "")
      .filter((name) => name.startsWith(NODE_LEASE_PREFIX))
      .map((name) => name.slice(NODE_LEASE_PREFIX.length));
  }

  nodeLeaseSeconds(node: string): number | undefined {
    const lease = this.#leases.get(`${NODE_LEASE_PREFIX}${node}`, this.options.namespace) as
      LeaseObject | undefined;
    return lease?.spec?.leaseDurationSeconds;
  }

  /** FloatingIPs whose claim names `node`. */
  keysHeldOn(node: string): string[] {
    return [...(this.#claimsByNode.get(node) ?? [])].map((name) =>
      String(this.#claimObjects.get(name)?.spec?.floatingIP ?? ""),
    );
  }

  /** FloatingIPs that hold no claim. */
  unassignedKeys(): string[] {
    return this.#floatingIps
      .list()
      .filter(({ metadata }) => !this.#claimsByUid.has(metadata?.uid ?? ""))
      .map(({ metadata }) => floatingIpKey(metadata?.namespace ?? "default", metadata?.name ?? ""));
  }

  #keysIn(namespace: string): string[] {
    return this.#floatingIps
      .list(namespace)
      .map(({ metadata }) => floatingIpKey(namespace, metadata?.name ?? ""));
  }

  #reindexEndpoints(): void {
    this.#endpointsByPod.clear();
    this.#endpointPod.clear();
    for (const object of this.#endpoints.list()) {
      this.#indexEndpoint(object.metadata?.name ?? "", endpointFromObject(object as KubeObject));
    }
  }

  #indexEndpoint(name: string, endpoint: WorkloadEndpoint | undefined): void {
    const before = this.#endpointPod.get(name);
    if (before !== undefined) {
      const byName = this.#endpointsByPod.get(before);
      if (byName?.delete(name) && byName.size === 0) this.#endpointsByPod.delete(before);
      this.#endpointPod.delete(name);
    }
    if (!endpoint?.podUID) return;
    this.#endpointPod.set(name, endpoint.podUID);
    const byName = this.#endpointsByPod.get(endpoint.podUID) ?? new Map<string, WorkloadEndpoint>();
    byName.set(name, endpoint);
    this.#endpointsByPod.set(endpoint.podUID, byName);
  }

  #reindexClaims(): void {
    this.#claimObjects.clear();
    this.#claimsByUid.clear();
    this.#claimsByNode.clear();
    for (const object of this.#claims.list())
      this.#indexClaim(object.metadata?.name ?? "", object as KubeObject);
  }

  #indexClaim(name: string, claim: KubeObject | undefined): void {
    const before = this.#claimObjects.get(name);
    if (before) {
      remove(this.#claimsByUid, before.metadata.labels?.[FLOATING_IP_LABEL] ?? "", name);
      remove(this.#claimsByNode, String(before.spec?.node ?? ""), name);
      this.#claimObjects.delete(name);
    }
    if (!claim) return;
    this.#claimObjects.set(name, claim);
    add(this.#claimsByUid, claim.metadata.labels?.[FLOATING_IP_LABEL] ?? "", name);
    add(this.#claimsByNode, String(claim.spec?.node ?? ""), name);
  }
}

function splitKey(key: string): [string, string] {
  const slash = key.indexOf("/");
  return [key.slice(0, slash), key.slice(slash + 1)];
}

function add(index: Map<string, Set<string>>, key: string, name: string): void {
  const names = index.get(key) ?? new Set<string>();
  names.add(name);
  index.set(key, names);
}

function remove(index: Map<string, Set<string>>, key: string, name: string): void {
  const names = index.get(key);
  if (names?.delete(name) && names.size === 0) index.delete(key);
}
