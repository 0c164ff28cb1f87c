// This node's status in the Kubernetes API: ADR 0004's acknowledgements as
// one Lease per node in the agent's namespace, renewed by its agent, whose
// annotation lists the floating IPs the node translates; and the claims'
// status subresource (programmed, announced, since). A Lease not renewed
// within its duration, as observed here, no longer counts: a dead node's IPs
// move. Leases are written as plain JSON through the custom-objects API: a
// Lease's MicroTime needs six fractional digits, which the typed client
// cannot write.
import type { CustomObjectsApi } from "@kubernetes/client-node";
import type { RawRecord } from "../datastore/agent-source.js";
import { BUOY_API_GROUP, BUOY_VERSION } from "../model/api-group.js";
import type { FloatingIpStatus } from "../model/records.js";
import { statusOf } from "./describe-kube-error.js";
import { PROGRAMMED_ANNOTATION, STATUS_LABEL } from "./labels.js";
import { objectsOf, type ListWatchCaches } from "./list-watch-caches.js";
import { claimFromObject, type KubeObject } from "./objects.js";

export interface LeaseStatusOptions {
  custom: CustomObjectsApi;
  caches: ListWatchCaches;
  node: string;
  /** Where the nodes' status Leases live (the agent's own namespace). */
  namespace: string;
  /** How long a node's Lease counts without renewal (s). */
  leaseSeconds: number;
  /** Monotonic milliseconds. */
  now: () => number;
}

interface LeaseObject extends KubeObject {
  spec?: { holderIdentity?: string; leaseDurationSeconds?: number; renewTime?: string };
}

export class LeaseStatus {
  /** When each Lease was last seen to change (monotonic ms), by name and resourceVersion. */
  readonly #observed = new Map<string, { version: string; at: number }>();
  #renewedAt = 0;
  /** When the Lease watch was last established (monotonic ms). */
  #leasesUpSince = 0;

  constructor(private readonly options: LeaseStatusOptions) {}

  /** A Lease's holder and IPs: what a reconcile cares about (not its renewTime). */
  static content(object: KubeObject): string {
    const lease = object as LeaseObject;
    return `${lease.spec?.holderIdentity}|${lease.metadata.annotations?.[PROGRAMMED_ANNOTATION]}`;
  }

  /** The Lease watch was established (again): no Lease counts as older than now. */
  leasesStarted(): void {
    this.#leasesUpSince = this.options.now();
  }

  /**
   * The statuses of every node whose Lease was renewed within its duration
   * (this node's always). Time is this node's own, and only time in which it
   * saw its own renewals come back through the Lease watch counts: another
   * node's Lease lapses only when this node's did not. So an API server that
   * is away, slow, or a watch that has stalled makes no node look dead
   * (otherwise every node would withdraw every other's floating IPs at once).
   */
  liveStatuses(): RawRecord[] {
    const now = this.options.now();
    const records: RawRecord[] = [];
    const present = new Set<string>();
    const leases = objectsOf<LeaseObject>(this.options.caches.leases);
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

  async recordStatus(
    desired: readonly FloatingIpStatus[],
    recorded: readonly FloatingIpStatus[],
  ): Promise<void> {
    const changed =
      desired.length !== recorded.length ||
      JSON.stringify(sorted(desired)) !== JSON.stringify(sorted(recorded));
    if (changed || !this.#ownLease()) await this.#writeLease(desired);
    await this.#writeClaimStatuses(desired);
  }

  async keepAlive(): Promise<boolean> {
    const lapsed = this.options.now() - this.#renewedAt > this.options.leaseSeconds * 1000;
    const lease = this.#ownLease();
    if (!lease) return false;
    await this.#writeLease(undefined);
    return !lapsed;
  }

  #leaseName(): string {
    return `buoy-node.${this.options.node}`;
  }

  #ownLease(): LeaseObject | undefined {
    return this.options.caches.leases.get(this.#leaseName(), this.options.namespace) as
      LeaseObject | undefined;
  }

  /** Creates or renews this node's Lease; `statuses` undefined keeps the recorded ones. */
  async #writeLease(statuses: readonly FloatingIpStatus[] | undefined): Promise<void> {
    const { custom, namespace, node, leaseSeconds } = this.options;
    const name = this.#leaseName();
    const params = { group: "coordination.k8s.io", version: "v1", namespace, plural: "leases" };
    for (let attempt = 0; attempt < 5; attempt++) {
      // The cache's copy first (one call per renewal); after a conflict, the server's.
      let current: LeaseObject | undefined = attempt === 0 ? this.#ownLease() : undefined;
      try {
        current ??= (await custom.getNamespacedCustomObject({
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
        if (current) await custom.replaceNamespacedCustomObject({ ...params, name, body });
        else await custom.createNamespacedCustomObject({ ...params, body });
        this.#renewedAt = this.options.now();
        return;
      } catch (error) {
        if (statusOf(error) !== 409) throw error; // a conflict: read again
      }
    }
    throw new Error(`renewing Lease ${namespace}/${name} kept conflicting`);
  }

  /** The claims' status subresource: programmed, announced, since, observedGeneration, as this node sees them. */
  async #writeClaimStatuses(desired: readonly FloatingIpStatus[]): Promise<void> {
    const programmed = new Map(desired.map((status) => [status.ip, status]));
    for (const object of objectsOf<KubeObject>(this.options.caches.claims)) {
      const claim = claimFromObject(object);
      if (claim.node !== this.options.node) continue;
      const status = programmed.get(claim.ip);
      // Programmed as this claim says (to its pod): a claim moved since the
      // kernel was written is not yet. The generation is the one the
      // controller waits for (ADR 0014: a move bumps it).
      const translated =
        status !== undefined && (claim.internalIP === "" || claim.internalIP === status.internalIP);
      const generation = object.metadata.generation;
      const next = translated
        ? {
            programmed: true,
            since: status.programmedSince,
            ...(status.announced ? { announced: status.announced } : {}),
            ...(generation !== undefined ? { observedGeneration: generation } : {}),
          }
        : { programmed: false };
      const current = (object.status ?? {}) as Record<string, unknown>;
      if (
        current.programmed === next.programmed &&
        current.since === ("since" in next ? next.since : undefined) &&
        current.announced === ("announced" in next ? next.announced : undefined) &&
        current.observedGeneration ===
          ("observedGeneration" in next ? next.observedGeneration : undefined)
      ) {
        continue;
      }
      try {
        await this.options.custom.replaceClusterCustomObjectStatus({
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
}

function sorted(statuses: readonly FloatingIpStatus[]): FloatingIpStatus[] {
  return [...statuses].sort((a, b) => a.ip.localeCompare(b.ip));
}

/** Kubernetes' MicroTime: RFC 3339 with exactly six fractional digits. */
export function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}
