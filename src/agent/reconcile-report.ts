// What a reconcile tells the operator: refusals, moves waiting on another
// node and routing problems logged once each while they last, and the
// gauges of /metrics set from the plan.
import type { NatRefusal, NatWaiting } from "../dataplane/nat-plan.js";
import type { Family } from "../net/address.js";
import type { NodeRoute } from "../dataplane/node-routes.js";
import type { RoutingRefusal } from "../dataplane/routing-plan.js";
import type { Logger } from "../log/logger.js";
import { findPool } from "../floating/validate.js";
import type { IpPool, WorkloadEndpoint } from "../model/records.js";
import type { Metrics } from "./metrics.js";
import type { SyncOutcome } from "./sync-dataplane.js";

/** What the gauges show, kept by the reconciler as it changes (no walk of 100k bindings per change). */
export interface GaugeCounts {
  bindings: Record<Family, number>;
  egress: Record<Family, number>;
  routes: Record<RouteKind, number>;
}

export type RouteKind = "pod" | "via" | "blackhole";

/** The routes of each kind. */
export function countRoutes(routes: Iterable<NodeRoute>): Record<RouteKind, number> {
  const kinds = { pod: 0, via: 0, blackhole: 0 };
  for (const route of routes) {
    kinds[route.blackhole ? "blackhole" : route.via !== undefined ? "via" : "pod"] += 1;
  }
  return kinds;
}

/**
 * This node's IPAM per pool: its affine blocks, and the addresses its pods
 * hold (an address in no pool is not counted). Every pool has both, 0 when
 * it has none. O(the node's blocks and pods).
 */
export function ipamCounts(
  node: string,
  affinities: readonly { cidr: string; node: string }[],
  endpoints: readonly Pick<WorkloadEndpoint, "node" | "ipNetworks">[],
  pools: readonly IpPool[],
): Map<string, { blocks: number; addresses: number }> {
  const counts = new Map(pools.map((pool) => [pool.name, { blocks: 0, addresses: 0 }]));
  for (const affinity of affinities) {
    if (affinity.node !== node) continue;
    const pool = findPool(affinity.cidr.split("/")[0] ?? "", pools);
    const count = pool && counts.get(pool.name);
    if (count) count.blocks += 1;
  }
  for (const endpoint of endpoints) {
    if (endpoint.node !== node) continue;
    for (const network of endpoint.ipNetworks) {
      const pool = findPool(network.split("/")[0] ?? "", pools);
      const count = pool && counts.get(pool.name);
      if (count) count.addresses += 1;
    }
  }
  return counts;
}

export class ReconcileReport {
  #refusals = new Set<string>();
  #waits = new Set<string>();
  #problems = new Set<string>();

  constructor(
    private readonly logger: Logger,
    private readonly metrics: Metrics,
  ) {}

  /** Each refusal, wait and routing problem is logged once while it lasts. */
  log(
    refused: readonly NatRefusal[],
    waiting: readonly NatWaiting[],
    problems: readonly string[],
  ): void {
    const refusals = new Set<string>();
    for (const refusal of refused) {
      const key = `${refusal.floatingIP}|${refusal.pod}|${refusal.reason}`;
      refusals.add(key);
      if (!this.#refusals.has(key)) this.logger.log("warn", "agent.refused", { ...refusal });
    }
    this.#refusals = refusals;
    const waits = new Set<string>();
    for (const wait of waiting) {
      const key = `${wait.floatingIP}|${wait.pod}|${wait.node}`;
      waits.add(key);
      if (!this.#waits.has(key))
        this.logger.log("info", "agent.waiting", {
          ...wait,
          reason: `node ${wait.node} still translates it; programming once it withdraws`,
        });
    }
    this.#waits = waits;
    const current = new Set(problems);
    for (const problem of current) {
      if (!this.#problems.has(problem)) this.logger.log("warn", "agent.routing", { problem });
    }
    this.#problems = current;
  }

  /** The IPAM gauges, from a full reconcile (ipamCounts). */
  ipam(counts: ReadonlyMap<string, { blocks: number; addresses: number }>): void {
    const { metrics } = this;
    metrics.ipamBlocks.reset();
    metrics.ipamAddresses.reset();
    for (const [pool, { blocks, addresses }] of counts) {
      metrics.ipamBlocks.set({ pool }, blocks);
      metrics.ipamAddresses.set({ pool }, addresses);
    }
  }

  /** Sets the gauges and counts the changes of one successful reconcile. */
  record(
    counts: GaugeCounts,
    refused: readonly NatRefusal[],
    waiting: number,
    routingRefused: readonly RoutingRefusal[],
    outcome: SyncOutcome,
    malformed: number,
  ): void {
    const { metrics } = this;
    metrics.waiting.set(waiting);
    for (const kind of ["pod", "via", "blackhole"] as const)
      metrics.routes.set({ kind }, counts.routes[kind]);
    metrics.lastApplyError.set(0);
    metrics.lastSuccess.set(Date.now() / 1000);
    metrics.reconciles.inc({ result: "ok" });
    metrics.changes.inc({ kind: "binding_added" }, outcome.added.length);
    metrics.changes.inc({ kind: "binding_removed" }, outcome.removed.length);
    metrics.changes.inc({ kind: "table_replaced" }, outcome.replaced.length);
    metrics.changes.inc({ kind: "conntrack_flushed" }, outcome.flushed.length);
    for (const family of [4, 6] as const) {
      metrics.bindings.set({ family: `ipv${family}` }, counts.bindings[family]);
      metrics.egress.set({ family: `ipv${family}` }, counts.egress[family]);
    }
    metrics.refused.reset();
    for (const refusal of refused) metrics.refused.inc({ reason: refusal.reason });
    // Routes and BGP neighbors skipped so the rest applies (logged as routing problems).
    for (const refusal of routingRefused) metrics.refused.inc({ reason: refusal.reason });
    if (malformed > 0) metrics.refused.inc({ reason: "malformed record" }, malformed);
  }

  /** One line per reconcile that changed the kernel. */
  synced(bindings: number, outcome: SyncOutcome): void {
    const changed =
      outcome.added.length +
        outcome.removed.length +
        outcome.replaced.length +
        outcome.routesAdded +
        outcome.routesRemoved >
      0;
    if (!changed) return;
    this.logger.log("info", "agent.synced", {
      bindings,
      added: sample(outcome.added.map((b) => `${b.floating}>${b.pod}`)),
      removed: sample(outcome.removed.map((b) => `${b.floating}>${b.pod}`)),
      replacedTables: outcome.replaced.map((family) => `ipv${family}`),
      routesAdded: outcome.routesAdded,
      routesRemoved: outcome.routesRemoved,
      conntrackFlushed: sample(outcome.flushed),
    });
  }
}

/** At most 20 items of a list for a log line, with the count of the rest. */
function sample(items: string[]): string[] {
  return items.length <= 20 ? items : [...items.slice(0, 20), `... and ${items.length - 20} more`];
}
