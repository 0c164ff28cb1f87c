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

  constructor(options: FakeRoutesOptions = {}) {
    this.interfaces = new Set(options.interfaces ?? []);
    this.journal = options.journal ?? [];
  }

  async read(): Promise<NodeRoute[]> {
    return [...this.#routes.values()].map((route) => ({ ...route }));
  }

  async apply(added: readonly NodeRoute[], removed: readonly NodeRoute[]): Promise<string[]> {
    this.journal.push(`routes +${added.length} -${removed.length}`);
    for (const route of removed) {
      const slot = `${route.family} ${route.dst}`;
      const held = this.#routes.get(slot);
      if (held && routeKey(held) === routeKey(route)) this.#routes.delete(slot);
    }
    for (const route of added) {
      if (route.dev !== undefined && !this.interfaces.has(route.dev)) continue;
      const slot = `${route.family} ${route.dst}`;
      // `replace` moves the route to the end, as the filter-and-push did.
      this.#routes.delete(slot);
      this.#routes.set(slot, { ...route });
    }
    return [];
  }

  async readInterfaces(): Promise<Set<string>> {
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
