// Makes the kernel match a plan: buoy's nftables tables (floating-IP NAT and
// natOutgoing), the node's routes, and conntrack for floating IPs withdrawn
// or moved. Reads the kernel
// first, so the same call is the start-up reconcile (no flush: an intact table
// with the right elements is left alone), the incremental update (element
// adds/deletes in one transaction), and the drift repair (a missing or altered
// table is replaced whole).
import type { Family } from "../net/address.js";
import type { NatBinding, NatOutgoing } from "../dataplane/nat-plan.js";
import {
  natOutgoingFor,
  renderNftElementChanges,
  renderNftTable,
  type NftBinding,
  type NftTableState,
} from "../dataplane/nft-script.js";
import type { Nft } from "../dataplane/shell/nft.js";
import { diffByKey, routeKey, type NodeRoute } from "../dataplane/node-routes.js";
import type { Conntrack, Routes } from "../dataplane/shell/linux-routes.js";
import type { Tunnels } from "../dataplane/shell/linux-vxlan.js";

export interface DataplanePorts {
  nft: Nft;
  routes: Routes;
  conntrack: Conntrack;
  /** The VXLAN overlay's devices; absent: the node has none and makes none. */
  tunnels?: Tunnels;
}

/**
 * What the kernel held after the last successful sync. Given to the next
 * sync, it stands in for reading the kernel back (which costs ~320 ms at 10k
 * bindings): if it is wrong (someone changed the kernel), nft refuses the
 * element batch and the table is replaced, and the resync timer reads the
 * kernel anyway.
 */
export interface KnownState {
  tables: Map<Family, KnownTable>;
  /** By routeKey. */
  routes: Map<string, NodeRoute>;
}

export interface KnownTable {
  /** By bindingKey. */
  bindings: Map<string, NftBinding>;
  natOutgoing: NatOutgoing;
}

/** What the node should hold. */
export interface DesiredDataplane {
  bindings: readonly NatBinding[];
  natOutgoing?: NatOutgoing;
  routes: readonly NodeRoute[];
}

export interface SyncOutcome {
  added: NftBinding[];
  removed: NftBinding[];
  /** Families whose table was (re)created whole. */
  replaced: Family[];
  routesAdded: number;
  routesRemoved: number;
  /** Routes the kernel refused for an unreachable next hop (applied: everything else). */
  routeFailures: string[];
  /** Floating IPs whose conntrack entries were deleted. */
  flushed: string[];
  /** The kernel's state now, for the next sync. */
  known: KnownState;
}

// Egress is part of a binding: switching it is the binding removed and added again.
export const bindingKey = (binding: NftBinding) =>
  `${binding.floating}>${binding.pod}${binding.egress ? " egress" : ""}`;

/**
 * `pendingFlush` belongs to the caller and outlives one call: floating IPs
 * whose binding changed stay in it until their conntrack flush succeeds, so a
 * failure later in a sync (or in the flush itself) cannot lose a flush.
 */
export async function syncDataplane(
  plan: DesiredDataplane,
  ports: DataplanePorts,
  pendingFlush: Map<string, Family> = new Map(),
  known?: KnownState,
  /**
   * Routes after the tables, with `between()` run between them, not side by
   * side: a read-back that no one waits for (the resync tick) holds one
   * kernel listing at a time (at 100k bindings each is ~100 MiB of heap
   * while parsed and diffed).
   */
  inTurn?: { between: () => void },
): Promise<SyncOutcome> {
  const outcome: SyncOutcome = {
    added: [],
    removed: [],
    replaced: [],
    routesAdded: 0,
    routesRemoved: 0,
    routeFailures: [],
    flushed: [],
    known: { tables: new Map(), routes: new Map() },
  };
  // The routes are read and written while nft runs, as in syncChanges:
  // neither reads the other (at 100k bindings each is seconds of a cold start).
  let routing = inTurn ? undefined : settle(syncRoutes(plan.routes, ports, known, outcome));
  try {
    for (const family of [4, 6] as const) {
      const desired = plan.bindings.filter((binding) => binding.family === family);
      const current = known
        ? fromKnown(known.tables.get(family))
        : await ports.nft.readTable(family);
      const { added, removed } = diffByKey<NftBinding>(
        desired,
        current?.bindings ?? [],
        bindingKey,
      );
      const natOutgoing = natOutgoingFor(plan.natOutgoing, family);
      const sameNatOutgoing =
        current !== undefined &&
        natOutgoing.sources.join() === current.natOutgoing.sources.join() &&
        natOutgoing.pools.join() === current.natOutgoing.pools.join();
      if (!current || !current.intact || !sameNatOutgoing) {
        await ports.nft.apply(renderNftTable(plan, family));
        outcome.replaced.push(family);
      } else if (added.length + removed.length > 0) {
        try {
          await ports.nft.apply(renderNftElementChanges(family, added, removed));
        } catch {
          // The kernel refuses the whole batch (e.g. an element changed under us): replace.
          await ports.nft.apply(renderNftTable(plan, family));
          outcome.replaced.push(family);
        }
      }
      outcome.added.push(...added);
      outcome.removed.push(...removed);
      // Withdrawn: running flows must lose their old translation. Added: an
      // entry made while the IP was unbound (un-NATed) must not keep a flow
      // away from its new holder.
      for (const binding of [...added, ...removed]) pendingFlush.set(binding.floating, family);
      outcome.known.tables.set(family, {
        bindings: new Map(desired.map((binding) => [bindingKey(binding), nftBinding(binding)])),
        natOutgoing,
      });
    }
    if (inTurn) {
      inTurn.between();
      routing = settle(syncRoutes(plan.routes, ports, known, outcome));
    }
  } finally {
    await Promise.all([routing, flushPending(ports, pendingFlush, outcome)]);
  }
  const routed = await (routing as Promise<{ value: void } | { error: unknown }>);
  if ("error" in routed) throw routed.error;
  return outcome;
}

/** The routes part of syncDataplane: read back (unless `known`), diffed, the difference applied. */
async function syncRoutes(
  desiredRoutes: readonly NodeRoute[],
  ports: DataplanePorts,
  known: KnownState | undefined,
  outcome: SyncOutcome,
): Promise<void> {
  const routes = diffByKey(
    desiredRoutes,
    known ? [...known.routes.values()] : await ports.routes.read(),
    routeKey,
  );
  if (routes.added.length + routes.removed.length > 0) {
    outcome.routeFailures = await ports.routes.apply(routes.added, routes.removed);
  }
  outcome.routesAdded = routes.added.length;
  outcome.routesRemoved = routes.removed.length;
  outcome.known.routes = new Map(desiredRoutes.map((route) => [routeKey(route), route]));
}

/** Changes to make, each computed by the caller from what it changed. */
export interface DataplaneChanges {
  added: readonly NatBinding[];
  removed: readonly NatBinding[];
  routesAdded: readonly NodeRoute[];
  routesRemoved: readonly NodeRoute[];
}

/**
 * Makes only `changes` (issue 14: a change costs the same at 1k and 100k
 * bindings), against `known`, which it updates in place: one element batch
 * per family, one route batch. A batch nft refuses (the kernel differs from
 * `known`) falls back to replacing that family's table with `desired()`.
 */
export async function syncChanges(
  changes: DataplaneChanges,
  desired: () => DesiredDataplane,
  ports: DataplanePorts,
  pendingFlush: Map<string, Family>,
  known: KnownState,
): Promise<SyncOutcome> {
  const outcome: SyncOutcome = {
    added: [],
    removed: [],
    replaced: [],
    routesAdded: changes.routesAdded.length,
    routesRemoved: changes.routesRemoved.length,
    routeFailures: [],
    flushed: [],
    known,
  };
  // The routes are written while nft runs: neither reads the other (after
  // DNAT the pod's own route carries the packet; BIRD is told afterwards), and
  // the conntrack flush still waits for nft, so no entry made meanwhile keeps
  // an old translation.
  const routing =
    changes.routesAdded.length + changes.routesRemoved.length > 0
      ? settle(ports.routes.apply(changes.routesAdded, changes.routesRemoved))
      : undefined;
  try {
    for (const family of [4, 6] as const) {
      const added = changes.added.filter((binding) => binding.family === family).map(nftBinding);
      const removed = changes.removed
        .filter((binding) => binding.family === family)
        .map(nftBinding);
      if (added.length + removed.length === 0) continue;
      const table = known.tables.get(family);
      if (!table) throw new Error(`no known table for IPv${family}: a complete sync comes first`);
      try {
        await ports.nft.apply(renderNftElementChanges(family, added, removed));
        for (const binding of removed) table.bindings.delete(bindingKey(binding));
        for (const binding of added) table.bindings.set(bindingKey(binding), binding);
      } catch {
        const plan = desired();
        await ports.nft.apply(renderNftTable(plan, family));
        outcome.replaced.push(family);
        const bindings = plan.bindings.filter((binding) => binding.family === family);
        table.bindings = new Map(
          bindings.map((binding) => [bindingKey(binding), nftBinding(binding)]),
        );
      }
      outcome.added.push(...added);
      outcome.removed.push(...removed);
      for (const binding of [...added, ...removed]) pendingFlush.set(binding.floating, family);
    }
  } catch (error) {
    await Promise.all([routing, flushPending(ports, pendingFlush, outcome)]);
    throw error;
  }
  // The flush (~11 ms even with an empty table: the kernel walks its whole
  // conntrack hash) runs while the routes are written, not before them.
  const flushing = flushPending(ports, pendingFlush, outcome);
  const routed = await routing;
  await flushing;
  if (routed && "error" in routed) throw routed.error;
  if (routed) {
    outcome.routeFailures = routed.value;
    for (const route of changes.routesRemoved) known.routes.delete(routeKey(route));
    for (const route of changes.routesAdded) known.routes.set(routeKey(route), route);
  }
  return outcome;
}

/** A promise that never rejects: its value or its error, to await later. */
function settle<T>(promise: Promise<T>): Promise<{ value: T } | { error: unknown }> {
  return promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
}

/**
 * Only after the bindings changed: new packets of a running flow then miss
 * conntrack and are translated by the current binding, if any.
 */
async function flushPending(
  ports: DataplanePorts,
  pendingFlush: Map<string, Family>,
  outcome: SyncOutcome,
): Promise<void> {
  for (const family of [4, 6] as const) {
    const ips = [...pendingFlush].filter(([, f]) => f === family).map(([ip]) => ip);
    if (ips.length === 0) continue;
    try {
      await ports.conntrack.flushDestinations(family, ips);
      for (const ip of ips) pendingFlush.delete(ip);
      outcome.flushed.push(...ips);
    } catch {
      // Stay pending; the next sync tries again.
    }
  }
}

function nftBinding({ family, floating, pod, egress }: NftBinding): NftBinding {
  return { family, floating, pod, ...(egress ? { egress } : {}) };
}

function fromKnown(table: KnownTable | undefined): NftTableState | undefined {
  return (
    table && {
      bindings: [...table.bindings.values()],
      intact: true,
      natOutgoing: table.natOutgoing,
    }
  );
}
