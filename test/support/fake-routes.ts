// A node's routes and conntrack for unit tests, behind the Routes and
// Conntrack ports (src/dataplane/shell/linux-routes.ts). Routes behave as
// `ip -force -batch` does for LinuxRoutes: deletions first, a deleted route
// that is not there is done already, `replace` takes the place of any route to
// the same destination, and a route through an interface the node does not
// have is not made (the kernel's "Cannot find device", which LinuxRoutes
// treats as done).
import type { Family } from "../../src/net/address.js";
import { routeKey, type NodeRoute } from "../../src/dataplane/node-routes.js";
import type { Conntrack, Routes } from "../../src/dataplane/shell/linux-routes.js";
import type { KernelEvent } from "../../src/dataplane/kernel-events.js";

export interface FakeRoutesOptions {
  /** The node's network interfaces; routes can only point at these. */
  interfaces?: Iterable<string>;
  /** Where each apply() is noted, as "routes +ADDED -REMOVED" (see FakeNftOptions). */
  journal?: string[];
}

export class FakeRoutes implements Routes {
  readonly journal: string[];
  readonly interfaces: Set<string>;
  /** By family and destination, as the kernel keys buoy's routes. */
  #routes = new Map<string, NodeRoute>();
  /** Hears what `ip monitor` would print of each change (FakeKernelMonitor). */
  onNotice: ((events: KernelEvent[]) => void) | undefined;
  /** Interface indexes, as the kernel numbers them. */
  readonly indexes = new Map<string, number>();
  /** How many times readInterfaces() was called. */
  interfaceReads = 0;
  #nextIndex = 2;

  constructor(options: FakeRoutesOptions = {}) {
    this.interfaces = new Set(options.interfaces ?? []);
    this.journal = options.journal ?? [];
  }

  async read(): Promise<NodeRoute[]> {
    return [...this.#routes.values()].map((route) => ({ ...route }));
  }

  async apply(added: readonly NodeRoute[], removed: readonly NodeRoute[]): Promise<string[]> {
    this.journal.push(`routes +${added.length} -${removed.length}`);
    const events: KernelEvent[] = [];
    const drop = (slot: string) => {
      const held = this.#routes.get(slot);
      if (held) events.push({ kind: "route", key: routeKey(held), present: false });
      this.#routes.delete(slot);
    };
    for (const route of removed) {
      const slot = `${route.family} ${route.dst}`;
      const held = this.#routes.get(slot);
      if (held && routeKey(held) === routeKey(route)) drop(slot);
    }
    for (const route of added) {
      if (route.dev !== undefined && !this.interfaces.has(route.dev)) continue;
      const slot = `${route.family} ${route.dst}`;
      // `replace` moves the route to the end, as the filter-and-push did.
      drop(slot);
      this.#routes.set(slot, { ...route });
      events.push({ kind: "route", key: routeKey(route), present: true });
    }
    if (events.length > 0) this.onNotice?.(events);
    return [];
  }

  /** The interfaces by index (FakeKernelMonitor's listing). */
  links(): Map<number, string> {
    return new Map([...this.interfaces].map((name) => [this.#index(name), name]));
  }

  /** An interface comes (a pod's veth): the kernel says so. */
  addInterface(name: string): void {
    this.interfaces.add(name);
    this.onNotice?.([{ kind: "link", index: this.#index(name), name, present: true }]);
  }

  /** An interface goes, and the routes through it with it. */
  removeInterface(name: string): void {
    const index = this.#index(name);
    this.interfaces.delete(name);
    const events: KernelEvent[] = [{ kind: "link", index, name, present: false }];
    for (const [slot, route] of this.#routes) {
      if (route.dev !== name) continue;
      this.#routes.delete(slot);
      events.push({ kind: "route", key: routeKey(route), present: false });
    }
    this.onNotice?.(events);
  }

  /** Someone deletes one of buoy's routes (`ip route del`). */
  deleteRoute(family: Family, dst: string): void {
    const route = this.#routes.get(`${family} ${dst}`);
    if (!route) return;
    this.#routes.delete(`${family} ${dst}`);
    this.onNotice?.([{ kind: "route", key: routeKey(route), present: false }]);
  }

  #index(name: string): number {
    let index = this.indexes.get(name);
    if (index === undefined) this.indexes.set(name, (index = this.#nextIndex++));
    return index;
  }

  async readInterfaces(): Promise<Set<string>> {
    this.interfaceReads += 1;
    return new Set(this.interfaces);
  }
}

export interface FakeConntrackOptions {
  /** Where each flushed IP is noted, as "flush IP" (see FakeNftOptions). */
  journal?: string[];
}

/** Every IP asked for has entries, and is flushed. */
export class FakeConntrack implements Conntrack {
  readonly journal: string[];
  readonly flushed: string[] = [];

  constructor(options: FakeConntrackOptions = {}) {
    this.journal = options.journal ?? [];
  }

  async flushDestinations(_family: Family, ips: readonly string[]): Promise<string[]> {
    for (const ip of ips) this.journal.push(`flush ${ip}`);
    this.flushed.push(...ips);
    return [...ips];
  }
}
