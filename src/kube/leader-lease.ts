// One FloatingIP controller at a time (issue 15): the replicas race for a
// Lease; the holder renews it every `renewMs`, another takes it only after
// seeing it unchanged for its whole duration on its own clock. A holder that
// has not renewed for most of the duration (counted from when it sent the
// last renewal that succeeded) gives up: its process ends, and its Deployment
// starts it again as a standby. So two never act at once: a new holder
// starts no earlier than the duration after the old one's last renewal, and
// the old one stopped before that.
import type { CustomObjectsApi } from "@kubernetes/client-node";
import { statusOf } from "./describe-kube-error.js";
import { microTime } from "./lease-status.js";
import type { KubeObject } from "./objects.js";

interface LeaseObject extends KubeObject {
  spec?: { holderIdentity?: string; leaseDurationSeconds?: number; renewTime?: string };
}

export interface LeaderLeaseOptions {
  custom: CustomObjectsApi;
  namespace: string;
  name: string;
  /** This replica's name in the Lease (holderIdentity). */
  identity: string;
  durationSeconds: number;
  /** Monotonic milliseconds. */
  now: () => number;
}

export class LeaderLease {
  /** The Lease's resourceVersion as last read, and when it was first seen so. */
  #seen: { version: string; at: number } | undefined;
  /** When the last renewal that succeeded was sent; undefined while not the holder. */
  #renewedAt: number | undefined;

  constructor(private readonly options: LeaderLeaseOptions) {}

  /** Whether this replica holds the Lease and renewed it in time. */
  get leading(): boolean {
    const at = this.#renewedAt;
    return at !== undefined && this.options.now() - at < this.#giveUpAfterMs();
  }

  /**
   * Renews the Lease, or takes it when it is free or lapsed; resolves to
   * whether this replica holds it now. A failure is thrown.
   */
  async tryAcquireOrRenew(): Promise<boolean> {
    const { custom, namespace, name, identity, durationSeconds, now } = this.options;
    const params = { group: "coordination.k8s.io", version: "v1", namespace, plural: "leases" };
    const sent = now();
    let current: LeaseObject | undefined;
    try {
      current = (await custom.getNamespacedCustomObject({ ...params, name })) as LeaseObject;
    } catch (error) {
      if (statusOf(error) !== 404) throw error;
    }
    const version = current?.metadata.resourceVersion ?? "";
    if (this.#seen?.version !== version) this.#seen = { version, at: sent };
    const holder = current?.spec?.holderIdentity ?? "";
    const duration = (current?.spec?.leaseDurationSeconds ?? durationSeconds) * 1000;
    const free = !current || holder === "" || sent - this.#seen.at > duration;
    if (holder !== identity && !free) {
      this.#renewedAt = undefined;
      return false;
    }
    const body = {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: {
        name,
        namespace,
        ...(current?.metadata.resourceVersion ? { resourceVersion: version } : {}),
      },
      spec: {
        holderIdentity: identity,
        leaseDurationSeconds: durationSeconds,
        renewTime: microTime(new Date()),
        ...(holder === identity && current?.spec ? {} : { acquireTime: microTime(new Date()) }),
      },
    };
    try {
      if (current) await custom.replaceNamespacedCustomObject({ ...params, name, body });
      else await custom.createNamespacedCustomObject({ ...params, body });
    } catch (error) {
      // Another replica wrote it first: it holds it.
      if (statusOf(error) === 409) {
        this.#renewedAt = undefined;
        return false;
      }
      throw error;
    }
    this.#renewedAt = sent;
    return true;
  }

  /** Gives the Lease up (on a clean stop): a standby need not wait out the duration. */
  async release(): Promise<void> {
    if (this.#renewedAt === undefined) return;
    const { custom, namespace, name } = this.options;
    const params = { group: "coordination.k8s.io", version: "v1", namespace, plural: "leases" };
    const current = (await custom.getNamespacedCustomObject({ ...params, name })) as LeaseObject;
    if (current.spec?.holderIdentity !== this.options.identity) return;
    await custom.replaceNamespacedCustomObject({
      ...params,
      name,
      body: { ...current, spec: { ...current.spec, holderIdentity: "" } },
    });
    this.#renewedAt = undefined;
  }

  /** Most of the duration: the holder stops with room to spare before anyone may take over. */
  #giveUpAfterMs(): number {
    return this.options.durationSeconds * 800;
  }
}
