// The floating-IP NAT plan the agent holds between changes (issue 14): the
// bindings, refusals and waits of planNat, kept per address, so a change
// re-plans only the addresses it touches. planNat's only decisions that join
// endpoints are per address (two endpoints asking for one floating IP, two
// giving one pod address egress), so re-planning the endpoints connected to
// the touched addresses through the addresses they name gives exactly what a
// complete plan gives for them.
import type { IpPool } from "../model/records.js";
import {
  planNat,
  sortBindings,
  type NatBinding,
  type NatPlan,
  type NatRefusal,
  type NatWaiting,
} from "../dataplane/nat-plan.js";
import { canonicalAddress } from "../net/address.js";
import { endpointAddresses, type AgentModel } from "./agent-model.js";

/** What a plan changed: bindings gone or altered (old), new or altered (new). */
export interface BindingChanges {
  added: NatBinding[];
  removed: NatBinding[];
  /** Every address re-planned (canonical and as written). */
  addresses: Set<string>;
}

export interface PlanInputs {
  node: string;
  pools: readonly IpPool[];
  hostInterfaces: ReadonlySet<string>;
}

export class NatState {
  readonly #bindings = new Map<string, NatBinding>();
  readonly #refused = new Map<string, NatRefusal[]>();
  readonly #waiting = new Map<string, NatWaiting>();
  /** Bindings, and those with egress, per family (for the gauges, without a walk of them all). */
  readonly counts = { bindings: { 4: 0, 6: 0 }, egress: { 4: 0, 6: 0 } };

  /**
   * Plans every endpoint of the model (`enabled` false: nothing is bound).
   * Says nothing of what changed: the complete sync that follows diffs
   * against the kernel (a diff here was two more maps of every binding).
   */
  planAll(model: AgentModel, inputs: PlanInputs, enabled: boolean): void {
    const hostedBy = new Map<string, string>();
    for (const status of model.all("status")) {
      const address = canonicalAddress(status.ip) ?? status.ip;
      const host = model.hostedElsewhere(address);
      if (host !== undefined) hostedBy.set(address, host);
    }
    const plan: NatPlan = enabled
      ? planNat(
          model.all("endpoint"),
          inputs.node,
          model.all("claim"),
          inputs.pools,
          inputs.hostInterfaces,
          hostedBy,
        )
      : { bindings: [], refused: [] };
    for (const family of [4, 6] as const) {
      this.counts.bindings[family] = 0;
      this.counts.egress[family] = 0;
    }
    this.#bindings.clear();
    this.#refused.clear();
    this.#waiting.clear();
    this.#take(plan);
  }

  /**
   * Re-plans the endpoints connected to `addresses` or using one of
   * `interfaces`, plus `endpoints` (keys of changed ones).
   */
  replan(
    model: AgentModel,
    inputs: PlanInputs,
    touched: { addresses: ReadonlySet<string>; endpoints: ReadonlySet<string> },
    interfaces: ReadonlySet<string> = new Set(),
  ): BindingChanges {
    const addresses = new Set<string>();
    const endpointKeys = new Set<string>();
    const pending: string[] = [];
    const visitEndpoint = (key: string) => {
      if (endpointKeys.has(key)) return;
      endpointKeys.add(key);
      const endpoint = model.endpoint(key);
      if (endpoint) for (const address of endpointAddresses(endpoint)) visitAddress(address);
    };
    const visitAddress = (address: string) => {
      if (addresses.has(address)) return;
      addresses.add(address);
      pending.push(address);
    };
    for (const address of touched.addresses) visitAddress(address);
    for (const key of touched.endpoints) visitEndpoint(key);
    for (const name of interfaces) for (const key of model.endpointsOn(name)) visitEndpoint(key);
    while (pending.length > 0) {
      for (const key of model.endpointsNaming(pending.pop() as string)) visitEndpoint(key);
    }
    const endpoints = [...endpointKeys].flatMap((key) => model.endpoint(key) ?? []);
    const claims = [...addresses].flatMap((address) => model.claim(address) ?? []);
    const hostedBy = new Map<string, string>();
    for (const address of addresses) {
      const host = model.hostedElsewhere(address);
      if (host !== undefined) hostedBy.set(address, host);
    }
    const plan = planNat(
      endpoints,
      inputs.node,
      claims,
      inputs.pools,
      inputs.hostInterfaces,
      hostedBy,
    );
    const before = new Map<string, NatBinding>();
    for (const address of addresses) {
      const binding = this.#bindings.get(address);
      if (binding) {
        before.set(address, binding);
        this.#count(binding, -1);
      }
      this.#bindings.delete(address);
      this.#refused.delete(address);
      this.#waiting.delete(address);
    }
    this.#take(plan);
    return diffBindings(before, this.#bindings, addresses);
  }

  binding(address: string): NatBinding | undefined {
    return this.#bindings.get(address);
  }

  get size(): number {
    return this.#bindings.size;
  }

  /** The whole plan, sorted as planNat sorts it (O(n log n): for complete syncs and reports). */
  plan(): NatPlan {
    const waiting = [...this.#waiting.values()];
    return {
      bindings: sortBindings([...this.#bindings.values()]),
      refused: [...this.#refused.values()]
        .flat()
        .sort((a, b) => compare(a.floatingIP, b.floatingIP) || compare(a.pod, b.pod)),
      ...(waiting.length > 0 ? { waiting } : {}),
    };
  }

  /** Every binding, unsorted. */
  bindings(): IterableIterator<NatBinding> {
    return this.#bindings.values();
  }

  refusals(): NatRefusal[] {
    return [...this.#refused.values()].flat();
  }

  waits(): NatWaiting[] {
    return [...this.#waiting.values()];
  }

  #count(binding: NatBinding, by: 1 | -1): void {
    this.counts.bindings[binding.family] += by;
    if (binding.egress) this.counts.egress[binding.family] += by;
  }

  #take(plan: NatPlan): void {
    for (const binding of plan.bindings) {
      this.#bindings.set(binding.floating, binding);
      this.#count(binding, 1);
    }
    for (const refusal of plan.refused) {
      const list = this.#refused.get(refusal.floatingIP);
      if (list) list.push(refusal);
      else this.#refused.set(refusal.floatingIP, [refusal]);
    }
    for (const wait of plan.waiting ?? []) this.#waiting.set(wait.floatingIP, wait);
  }
}

function diffBindings(
  before: ReadonlyMap<string, NatBinding>,
  after: ReadonlyMap<string, NatBinding>,
  addresses: Set<string>,
): BindingChanges {
  const changes: BindingChanges = { added: [], removed: [], addresses };
  for (const address of addresses) {
    const old = before.get(address);
    const now = after.get(address);
    if (old && now && sameBinding(old, now)) continue;
    if (old) changes.removed.push(old);
    if (now) changes.added.push(now);
  }
  return changes;
}

function sameBinding(a: NatBinding, b: NatBinding): boolean {
  return (
    a.family === b.family &&
    a.floating === b.floating &&
    a.pod === b.pod &&
    a.hostIfname === b.hostIfname &&
    a.egress === b.egress
  );
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
