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
import { LeaseClock } from "../failover/lease-clock.js";
import { statusOf } from "./describe-kube-error.js";
import { PROGRAMMED_ANNOTATION, STATUS_LABEL } from "./labels.js";
import { objectsOf, type ListWatchCaches } from "./list-watch-caches.js";
import { claimFromObject, claimStatusUpdate, type KubeObject } from "./objects.js";

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
  /** When each Lease was last seen to change, and whether time runs (lease-clock.ts). */
  readonly #clock: LeaseClock;
  #renewedAt = 0;

  constructor(private readonly options: LeaseStatusOptions) {
    // A renewal period (a third of the duration): liveness is looked at once
    // a second, so a node's last renewal seen before a stall is at most a
    // period and a second old, and with this grace a live node never looks
    // lapsed (1/3 + 1/3 of the duration + 1 s < the duration from 5 s up).
    this.#clock = new LeaseClock((options.leaseSeconds * 1000) / 3);
  }

  /** A Lease's holder and IPs: what a reconcile cares about (not its renewTime). */
  static content(object: KubeObject): string {
    const lease = object as LeaseObject;
    return `${lease.spec?.holderIdentity}|${lease.metadata.annotations?.[PROGRAMMED_ANNOTATION]}`;
  }

  /** The Lease watch was established (again): no Lease counts as older than now. */
  leasesStarted(): void {
    this.#clock.started(this.options.now());
  }

  /**
   * The statuses of every node whose Lease was renewed within its duration
   * (this node's always). Time is this node's own, and counts only while the
   * Lease watch is heard from (lease-clock.ts): every live node, this one
   * included, renews every third of the duration, so time runs on for a
   * renewal period past the last change seen, and stops there. So
   * an API server that is away, slow, or a watch that has stalled makes no
   * node look dead (otherwise every node would withdraw every other's
   * floating IPs at once), and a lost node lapses within a tick of its
   * duration, not a renewal period late.
   */
  liveStatuses(): RawRecord[] {
    const now = this.options.now();
    const records: RawRecord[] = [];
    const present = new Set<string>();
    const leases = objectsOf<LeaseObject>(this.options.caches.leases);
    for (const lease of leases) {
      present.add(lease.metadata.name);
      this.#clock.seen(lease.metadata.name, lease.metadata.resourceVersion ?? "", now);
    }
    for (const lease of leases) {
      const name = lease.metadata.name;
      const version = lease.metadata.resourceVersion ?? "";
      const holder = lease.spec?.holderIdentity ?? "";
      const duration = (lease.spec?.leaseDurationSeconds ?? this.options.leaseSeconds) * 1000;
      if (holder !== this.options.node && !this.#clock.live(name, duration, now)) continue;
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
    this.#clock.forgetAllBut(present);
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

  /**
   * The claims' status subresource: programmed, announced, since, and the
   * generation programmed, as this node sees them (claimStatusUpdate).
   */
  async #writeClaimStatuses(desired: readonly FloatingIpStatus[]): Promise<void> {
    const programmed = new Map(desired.map((status) => [status.ip, status]));
    for (const object of objectsOf<KubeObject>(this.options.caches.claims)) {
      const claim = claimFromObject(object);
      if (claim.node !== this.options.node) continue;
      const next = claimStatusUpdate(object, programmed.get(claim.ip));
      if (next === undefined) continue;
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
