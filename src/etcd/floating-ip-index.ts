// What the etcd FloatingIP controller finds by key without a walk of its
// caches (etcd-floating-ip-controller.ts): FloatingIPs by namespace, by the
// address their spec or their status names, and by the node their claims
// are held on; pods by namespace and node; endpoints by pod uid; the
// addresses each FloatingIP's claims hold. Kept from the caches' changes;
// each change costs what it touched.
import type { PodView } from "../failover/candidates.js";
import { floatingIpKey, type FloatingIpRecord } from "../failover/floating-ip.js";
import type { FloatingIpStatusShape } from "../model/floating-ip-resource.js";
import type { FloatingIpClaim, WorkloadEndpoint } from "../model/records.js";

/** Keys by one value of theirs. */
class Sets {
  readonly #sets = new Map<string, Set<string>>();

  add(key: string | undefined, value: string): void {
    if (key === undefined) return;
    let set = this.#sets.get(key);
    if (!set) this.#sets.set(key, (set = new Set()));
    set.add(value);
  }

  remove(key: string | undefined, value: string): void {
    if (key === undefined) return;
    const set = this.#sets.get(key);
    set?.delete(value);
    if (set?.size === 0) this.#sets.delete(key);
  }

  get(key: string): ReadonlySet<string> {
    return this.#sets.get(key) ?? new Set();
  }

  keys(): Iterable<string> {
    return this.#sets.keys();
  }
}

export class FloatingIpIndex {
  /** FloatingIP keys by namespace, by their spec's address and by their status's. */
  readonly fipsIn = new Sets();
  readonly fipsOf = new Sets();
  readonly statusOf = new Sets();
  /** Pod record keys by namespace and by node; endpoint keys by pod uid. */
  readonly podsIn = new Sets();
  readonly podsOn = new Sets();
  readonly endpointsOfPod = new Sets();
  /** The addresses each FloatingIP's claims hold (their floatingIP mark), and its keys by node. */
  readonly claimsOf = new Sets();
  readonly fipsHeldOn = new Sets();

  fip(before: FloatingIpRecord | undefined, after: FloatingIpRecord | undefined): void {
    for (const [record, adding] of [
      [before, false],
      [after, true],
    ] as const) {
      if (!record) continue;
      const key = floatingIpKey(record.namespace, record.name);
      const apply = (sets: Sets, value: string | undefined) =>
        adding ? sets.add(value, key) : sets.remove(value, key);
      apply(this.fipsIn, record.namespace);
      apply(this.fipsOf, record.spec.address);
    }
  }

  /** `key`: the status record's name, `namespace/name`. */
  status(key: string, before?: FloatingIpStatusShape, after?: FloatingIpStatusShape): void {
    this.statusOf.remove(before?.address, key);
    this.statusOf.add(after?.address, key);
  }

  pod(key: string, before: PodView | undefined, after: PodView | undefined): void {
    if (before) this.podsIn.remove(before.metadata.namespace ?? "default", key);
    if (after) this.podsIn.add(after.metadata.namespace ?? "default", key);
    this.podsOn.remove(before?.spec?.nodeName, key);
    this.podsOn.add(after?.spec?.nodeName, key);
  }

  endpoint(key: string, before?: WorkloadEndpoint, after?: WorkloadEndpoint): void {
    this.endpointsOfPod.remove(before?.podUID, key);
    this.endpointsOfPod.add(after?.podUID, key);
  }

  claim(before: FloatingIpClaim | undefined, after: FloatingIpClaim | undefined): void {
    if (before?.floatingIP !== undefined) {
      this.claimsOf.remove(before.floatingIP, before.ip);
      this.fipsHeldOn.remove(before.node, before.floatingIP);
    }
    if (after?.floatingIP !== undefined) {
      this.claimsOf.add(after.floatingIP, after.ip);
      this.fipsHeldOn.add(after.node, after.floatingIP);
    }
  }
}
