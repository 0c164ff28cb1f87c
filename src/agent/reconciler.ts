// Events mark the state dirty; one reconcile at a time brings this node's
// model up to date (only the records that changed, when the source can tell),
// re-plans what they touch (pure) and makes only those kernel changes; the
// resync timer plans everything and reads the kernel back. A failed reconcile
// stays dirty and is retried with backoff; bad records are refused, logged
// once, and never stop the others.
import type { FloatingIpStatus } from "../model/records.js";
import type { AgentSource, RawRecord, RecordKind } from "../datastore/agent-source.js";
import { renderBirdNodeConfig, type BirdNodeConfig } from "../dataplane/bird-config.js";
import type { Bird } from "../dataplane/shell/bird.js";
import type { KernelMonitor } from "../dataplane/shell/kernel-monitor.js";
import {
  planNatOutgoing,
  sortBindings,
  type NatBinding,
  type NatPlan,
} from "../dataplane/nat-plan.js";
import {
  planRouting,
  routesToNodes,
  type RoutingMode,
  type RoutingPlan,
} from "../dataplane/routing-plan.js";
import { TunnelSync } from "./tunnel-sync.js";
import { diffByKey, routeKey } from "../dataplane/node-routes.js";
import type { Logger } from "../log/logger.js";
import { canonicalAddress, type Family } from "../net/address.js";
import type { Metrics } from "./metrics.js";
import { withoutFloatingExports } from "./fence.js";
import { AgentModel, nothingTouched, type Touched } from "./agent-model.js";
import { keepWatching, KernelWatch, type HeldDataplane } from "./kernel-watch.js";
import { NatState, type PlanInputs } from "./nat-state.js";
import { countRoutes, ipamCounts, ReconcileReport } from "./reconcile-report.js";
import {
  bindingRoute,
  contestedDestinations,
  exportedBinding,
  hostPrefix,
} from "./binding-routes.js";
import {
  syncChanges,
  syncDataplane,
  type DataplanePorts,
  type DesiredDataplane,
  type KnownState,
  type SyncOutcome,
} from "./sync-dataplane.js";

export interface ReconcilerOptions {
  source: AgentSource;
  node: string;
  ports: DataplanePorts;
  logger: Logger;
  metrics: Metrics;
  /** Whether floating IPs are on now (re-read on every reconcile). */
  floatingIpsEnabled: () => boolean;
  /** How this node reaches the others ("none": floating-IP NAT on this node only). */
  routing?: RoutingMode;
  /** The AS number of a node whose record names none (DEFAULT_AS_NUMBER). */
  defaultAsNumber?: number;
  /** BGP mode: the node's BIRD. */
  bird?: Bird;
  /** The kernel's change notices: the resync reads back only what they cannot vouch for. */
  monitor?: KernelMonitor;
  /**
   * A full garbage collection, run after a complete read, before a whole
   * read-back and after either is applied (agent/collect-garbage.ts); none
   * by default.
   */
  collectGarbage?: () => void;
  now?: () => number;
}

const BACKOFF_MS = [100, 250, 500, 1000, 2000, 5000];

export class Reconciler {
  #dirty = true;
  #wake: (() => void) | undefined;
  #failures = 0;
  readonly #corrupt = new Set<string>();
  readonly #pendingFlush = new Map<string, Family>();
  /** The records the plan reads, kept up to date change by change (issue 14). */
  #model: AgentModel | undefined;
  readonly #nat = new NatState();
  /** What the kernel's notices said since the last read-back, and its interfaces. */
  readonly #watch = new KernelWatch();
  /** The kernel state after the last successful sync; undefined: sync whole. */
  #known: KnownState | undefined;
  /** The resync timer asked for the kernel to be read back. */
  #verify = false;
  /** Plan and write everything next time (a lapsed status lease, BIRD to be told again). */
  #complete = false;
  #enabled = false;
  #interfaces: ReadonlySet<string> = new Set();
  /** The last complete routing plan, and the destinations of its routes other than bindings'. */
  #routingPlan: RoutingPlan | undefined;
  #contested: ReadonlySet<string> = new Set();
  readonly #report: ReconcileReport;
  /** The routes of each kind, and the known state they were counted in. */
  #routeCounts = { pod: 0, via: 0, blackhole: 0 };
  #countedRoutes: KnownState | undefined;
  /** Where the last reconcile of changes spent its time, for the debug log. */
  #phases: { planMs: number; kernelMs: number; statusMs: number } | undefined;
  /** The last #refresh read everything (not only the changes). */
  #readWhole = false;
  /** Time in collectGarbage this reconcile, for the debug log. */
  #gcMs = 0;
  /** True once a reconcile has been applied completely. */
  synced = false;
  /** When the last reconcile succeeded (ms since the epoch), 0 before the first. */
  lastSuccessAt = 0;
  /** Why the last reconcile failed (BIRD refusing its config, etcd away, ...); undefined after a success. */
  lastError: string | undefined;
  #lastBird: BirdNodeConfig | undefined;
  /** bgp: the last plan's exports other than floating IPs (blocks, borrowed addresses). */
  #birdBase: string[] | undefined;
  /** Fenced (ADR 0009): BIRD is told no floating IP, whatever the plan says. */
  #fenced = false;
  #fenceApplied = false;
  /** The floating IPs of the last plan, left out of BIRD's exports while fenced. */
  #lastFloating = new Set<string>();
  /** One BIRD apply at a time: a reconcile's and the fence's never interleave. */
  #birdLane: Promise<void> = Promise.resolve();
  readonly #tunnels: TunnelSync;

  constructor(private readonly options: ReconcilerOptions) {
    this.#report = new ReconcileReport(options.logger, options.metrics);
    this.#tunnels = new TunnelSync(options.ports.tunnels, options.routing ?? "none");
  }

  /**
   * "event": a datastore change, applied as changes against what the agent
   * last applied; "complete": plan and sync everything from the model;
   * "verify" (the resync timer): the kernel read back and brought in line
   * with the plan, which repairs drift.
   */
  markDirty(kind: "event" | "complete" | "verify" = "event"): void {
    if (kind === "verify") this.#verify = true;
    if (kind === "complete") this.#complete = true;
    this.#dirty = true;
    this.#wake?.();
  }

  /** Runs until `signal` aborts. Never touches the kernel before the first complete read. */
  async run(signal: AbortSignal): Promise<void> {
    signal.addEventListener("abort", () => this.#wake?.(), { once: true });
    const { monitor, logger } = this.options;
    const watching = monitor
      ? keepWatching(monitor, this.#watch, { logger, signal, changed: () => this.markDirty() })
      : undefined;
    while (!signal.aborted) {
      if (!this.#dirty) {
        await new Promise<void>((resolve) => (this.#wake = resolve));
        this.#wake = undefined;
        continue;
      }
      this.#dirty = false;
      try {
        await this.reconcile();
        this.#failures = 0;
        this.lastError = undefined;
      } catch (error) {
        this.#dirty = true;
        this.lastError = (error as Error).message;
        const delay = BACKOFF_MS[Math.min(this.#failures, BACKOFF_MS.length - 1)] as number;
        this.#failures += 1;
        this.options.logger.log("error", "agent.error", {
          phase: "reconcile",
          error: (error as Error).message,
          retryInMs: delay,
        });
        await sleep(delay, signal);
      }
    }
    await watching;
  }

  async reconcile(): Promise<void> {
    const { ports, metrics } = this.options;
    const timer = metrics.reconcileSeconds.startTimer();
    try {
      // The resync tick reads the kernel back unless its notices vouch for it.
      const verify = this.#verify && this.#watch.mustReadBack(this.#held());
      this.#verify = false;
      const started = performance.now();
      const generation = this.#watch.generation;
      const watched = verify ? undefined : this.#watch.interfaces();
      const [touched, listed] = await Promise.all([
        this.#refresh(),
        watched ? undefined : this.#listInterfaces(),
      ]);
      if (this.#readWhole) this.#collectGarbage();
      // An interface the notices have not shown (yet): ask the kernel.
      const hostInterfaces =
        listed ??
        (this.#namesUnknown(touched, watched as ReadonlySet<string>)
          ? await ports.routes.readInterfaces()
          : (watched as ReadonlySet<string>));
      const enabled = this.options.floatingIpsEnabled();
      metrics.floatingIpsEnabled.set(enabled ? 1 : 0);
      const interfaces = changedNames(this.#interfaces, hostInterfaces);
      this.#interfaces = hostInterfaces;
      // Switched off, nothing is bound: only a complete plan knows that.
      const complete =
        !enabled ||
        this.#known === undefined ||
        this.#complete ||
        enabled !== this.#enabled ||
        touched.global.size > 0 ||
        (routesToNodes(this.#routing) && touched.othersStatus);
      this.#enabled = enabled;
      const refreshed = performance.now();
      const readBack = verify || this.#known === undefined;
      if (verify) this.#collectGarbage();
      if (complete) await this.#reconcileAll(hostInterfaces, verify);
      else {
        await this.#reconcileChanges(touched, interfaces, hostInterfaces);
        if (verify) await this.#verifyKernel();
      }
      if (readBack) this.#watch.readBack(generation);
      if (complete || readBack) this.#collectGarbage();
      // Where a reconcile's time went (--log-level debug).
      this.options.logger.log("debug", "agent.reconciled", {
        complete,
        verify,
        touchedAddresses: touched.addresses.size,
        refreshMs: Math.round(refreshed - started),
        applyMs: Math.round(performance.now() - refreshed),
        ...this.#phases,
        ...(this.#gcMs > 0 ? { gcMs: Math.round(this.#gcMs) } : {}),
      });
      this.#phases = undefined;
      this.#gcMs = 0;
    } catch (error) {
      // What failed may have changed the kernel in part: the next reconcile
      // reads it back and syncs everything.
      this.#known = undefined;
      metrics.lastApplyError.set(1);
      metrics.reconciles.inc({ result: "error" });
      throw error;
    } finally {
      timer();
    }
  }

  /** A read-back on the resync tick: the tables, a collection, then the routes. */
  readonly #inTurn = { between: () => this.#collectGarbage() };

  /** A full collection, when the agent was given one (the phases that call it leave most of the garbage). */
  #collectGarbage(): void {
    const collect = this.options.collectGarbage;
    if (!collect) return;
    const started = performance.now();
    collect();
    this.#gcMs += performance.now() - started;
  }

  /** The node's interfaces from the kernel; the monitor's baseline set again while it runs. */
  async #listInterfaces(): Promise<ReadonlySet<string>> {
    const { monitor, ports } = this.options;
    if (!monitor || !this.#watch.interfaces()) return ports.routes.readInterfaces();
    this.#watch.relist(await monitor.links());
    return this.#watch.interfaces() ?? ports.routes.readInterfaces();
  }

  /** Whether a changed endpoint names an interface not in `names`. */
  #namesUnknown(touched: Touched, names: ReadonlySet<string>): boolean {
    for (const key of touched.endpoints) {
      const name = this.#model?.endpoint(key)?.interfaceName;
      if (name !== undefined && !names.has(name)) return true;
    }
    return false;
  }

  /** What the kernel's notices are compared with: the plan the last sync applied. */
  #held(): HeldDataplane {
    const known = this.#known;
    return {
      binding: (floating) => (known ? this.#nat.binding(floating) : undefined),
      hasRoute: (key) => known?.routes.has(key) ?? false,
    };
  }

  get #routing(): RoutingMode {
    return this.options.routing ?? "none";
  }

  /** Brings the model up to date: only the changes when the source can tell them, else a complete read. */
  async #refresh(): Promise<Touched> {
    const { source } = this.options;
    this.#readWhole = false;
    if (this.#model && source.readChanges) {
      const changes = await source.readChanges();
      if (changes) {
        const touched = nothingTouched();
        for (const change of changes)
          this.#model.apply(change.kind, change.key, change.record, touched);
        return touched;
      }
    }
    this.#readWhole = true;
    if (!source.readInPages) {
      const state = await source.read();
      return this.#ensureModel().replaceAll(state);
    }
    // Applied page by page: a read that fails part-way leaves the model in
    // part updated, and the reconcile failing, so the next one is complete.
    const replacing = this.#ensureModel().replacing();
    await source.readInPages((kind, records) => replacing.take(kind, records));
    return replacing.finish();
  }

  /** The model, made by the first complete read. */
  #ensureModel(): AgentModel {
    return (this.#model ??= new AgentModel(this.options.node, (kind, record) =>
      this.#reportMalformed(kind, record),
    ));
  }

  #inputs(hostInterfaces: ReadonlySet<string>): PlanInputs {
    return { node: this.options.node, pools: this.#model?.all("pool") ?? [], hostInterfaces };
  }

  /**
   * Plans everything from the model and syncs it whole: the first reconcile,
   * one after a failure, a change to what every plan reads (`verify`: the
   * resync timer came too; the kernel is read back first, which repairs
   * drift and writes nothing when none).
   */
  async #reconcileAll(hostInterfaces: ReadonlySet<string>, verify: boolean): Promise<void> {
    const { node, ports } = this.options;
    const started = performance.now();
    const model = this.#model as AgentModel;
    const routing = this.#routing;
    const inputs = this.#inputs(hostInterfaces);
    this.#nat.planAll(model, inputs, this.#enabled);
    const plan = this.#nat.plan();
    const statuses = model.all("status");
    const subnets = await this.#tunnels.subnets(verify);
    const routingPlan = planRouting({
      node,
      mode: routing,
      bindings: plan.bindings,
      nodes: model.all("node"),
      blocks: model.all("affinity").map(({ cidr, node: owner }) => ({ cidr, affinity: owner })),
      // Routes to floating IPs hosted elsewhere serve this node's pods even
      // when this node programs none itself.
      hosted: statuses,
      pools: inputs.pools,
      peers: model.all("peer"),
      borrowed: model.all("borrowed"),
      ...(this.options.defaultAsNumber !== undefined
        ? { defaultAsNumber: this.options.defaultAsNumber }
        : {}),
      ...(subnets ? { subnets } : {}),
    });
    this.#routingPlan = routingPlan;
    this.#report.ipam(ipamCounts(node, model.all("affinity"), model.all("endpoint"), inputs.pools));
    this.#contested = contestedDestinations(routingPlan, (address) => this.#nat.binding(address));
    const held = verify ? undefined : this.#known;
    this.#known = undefined; // until this sync has succeeded
    // Devices before the routes through them; one made anew lost its routes.
    const remade = await this.#tunnels.sync(routingPlan.vxlan, hostInterfaces, verify);
    const known = remade ? undefined : held;
    // A sync that reads the kernel whole: planning's garbage goes first.
    if (!known) this.#collectGarbage();
    const planned = performance.now();
    const outcome = await syncDataplane(
      {
        bindings: plan.bindings,
        natOutgoing: planNatOutgoing(inputs.pools),
        routes: routingPlan.routes,
      },
      ports,
      this.#pendingFlush,
      known,
      verify ? this.#inTurn : undefined,
    );
    this.#known = outcome.known;
    this.#checkFlushed();
    // Announce only what is programmed: BIRD is told after the kernel
    // translates. Without a config to render (this node's Node record gone,
    // or without an IPv4 address), BIRD is told to announce nothing rather
    // than left announcing what was withdrawn.
    if (routing === "bgp" && this.options.bird) {
      const bird =
        routingPlan.bird ?? (this.#lastBird && { ...this.#lastBird, neighbors: [], exports: [] });
      this.#lastFloating = new Set(plan.bindings.map((binding) => binding.floating));
      this.#lastBird = bird;
      this.#birdBase = routingPlan.bird
        ? withoutFloatingExports(routingPlan.bird.exports, this.#lastFloating)
        : undefined;
      if (bird) await this.#applyBird();
    }
    // What the plan and the kernel sync left is garbage before the status
    // records are made (at 100k bindings ~100 MiB of it).
    if (!known) this.#collectGarbage();
    const synced = performance.now();
    const recorded = statuses.filter((status) => status.node === node);
    await this.options.source.recordStatus(this.#statusesOf(plan.bindings, recorded), recorded);
    this.#complete = false;
    this.#phases = {
      planMs: Math.round(planned - started),
      kernelMs: Math.round(synced - planned),
      statusMs: Math.round(performance.now() - synced),
    };
    this.#finish(outcome, [
      ...routingPlan.problems,
      ...outcome.routeFailures.map((line) => `route refused by the kernel: ${line.trim()}`),
    ]);
  }

  /**
   * Re-plans only what `touched` (and the host interfaces that came or went)
   * reaches, and makes only those changes: one element batch, one route
   * batch, the statuses of those floating IPs. A binding whose route another
   * route contests (direct and bgp modes) is planned whole instead.
   */
  async #reconcileChanges(
    touched: Touched,
    interfaces: ReadonlySet<string>,
    hostInterfaces: ReadonlySet<string>,
  ): Promise<void> {
    const { node, ports, source } = this.options;
    const started = performance.now();
    const model = this.#model as AgentModel;
    const changes = this.#nat.replan(model, this.#inputs(hostInterfaces), touched, interfaces);
    const routeChanges = diffByKey(
      changes.added.map(bindingRoute),
      changes.removed.map(bindingRoute),
      routeKey,
    );
    const removedRoutes = diffByKey(
      changes.removed.map(bindingRoute),
      changes.added.map(bindingRoute),
      routeKey,
    ).added;
    if (
      this.#routing !== "none" &&
      [...routeChanges.added, ...removedRoutes].some((route) => this.#contested.has(route.dst))
    ) {
      return this.#reconcileAll(hostInterfaces, false);
    }
    const planned = performance.now();
    const outcome = await syncChanges(
      {
        added: changes.added,
        removed: changes.removed,
        routesAdded: routeChanges.added,
        routesRemoved: removedRoutes,
      },
      () => this.#desired(),
      ports,
      this.#pendingFlush,
      this.#known as KnownState,
    );
    this.#checkFlushed();
    if (this.#routing === "bgp" && this.options.bird && this.#birdBase && this.#lastBird) {
      const bindings = [...this.#nat.bindings()];
      const pools = model.all("pool");
      const exports = [
        ...this.#birdBase,
        ...sortBindings(bindings.filter((binding) => exportedBinding(binding, pools))).map(
          (binding) => hostPrefix(binding.floating, binding.family),
        ),
      ];
      if (exports.join() !== this.#lastBird.exports.join()) {
        this.#lastFloating = new Set(bindings.map((binding) => binding.floating));
        this.#lastBird = { ...this.#lastBird, exports };
        await this.#applyBird();
      }
    }
    // Those re-planned, and those whose own record changed (its own writes
    // coming back, or someone else's): each compared with what it should say.
    const addresses = [...new Set([...changes.addresses, ...touched.ownStatuses])].filter(
      (address) => canonicalAddress(address) === address,
    );
    const recorded = addresses.flatMap((address) =>
      model.statuses(address).filter((status) => status.node === node),
    );
    const desired = this.#statusesOf(
      addresses.flatMap((address) => this.#nat.binding(address) ?? []),
      recorded,
    );
    const synced = performance.now();
    if (!(await source.recordStatusChanges?.(desired, recorded))) {
      const all = model.all("status").filter((status) => status.node === node);
      await source.recordStatus(this.#statusesOf([...this.#nat.bindings()], all), all);
    }
    const recordedAt = performance.now();
    this.#phases = {
      planMs: Math.round(planned - started),
      kernelMs: Math.round(synced - planned),
      statusMs: Math.round(recordedAt - synced),
    };
    this.#finish(outcome, [
      ...(this.#routingPlan?.problems ?? []),
      ...outcome.routeFailures.map((line) => `route refused by the kernel: ${line.trim()}`),
    ]);
  }

  /**
   * The resync timer: the kernel read back and brought in line with what
   * the agent holds as planned, which no change since has altered (the
   * model and the plans are kept by changes; a complete plan runs only when
   * something every plan reads changed). Writes nothing when nothing drifted.
   */
  async #verifyKernel(): Promise<void> {
    const desired = this.#desired();
    this.#known = undefined; // until this sync has succeeded
    const outcome = await syncDataplane(
      desired,
      this.options.ports,
      this.#pendingFlush,
      undefined,
      this.#inTurn,
    );
    this.#known = outcome.known;
    this.#checkFlushed();
    this.#finish(outcome, this.#routingPlan?.problems ?? []);
  }

  /** What the node should hold, whole (a refused element batch replaces a table with it). */
  #desired(): DesiredDataplane {
    const pools = this.#model?.all("pool") ?? [];
    return {
      // In no order: nft sets have none, and sorting 100k costs ~0.1 s.
      bindings: [...this.#nat.bindings()],
      natOutgoing: planNatOutgoing(pools),
      routes: [...(this.#known?.routes.values() ?? [])],
    };
  }

  #checkFlushed(): void {
    if (this.#pendingFlush.size > 0) {
      throw new Error(`conntrack flush failed for ${[...this.#pendingFlush.keys()].join(", ")}`);
    }
  }

  /** After a successful sync: the state, the reports and the gauges. */
  #finish(outcome: SyncOutcome, problems: readonly string[]): void {
    this.synced = true;
    this.lastSuccessAt = Date.now();
    const refused = this.#nat.refusals();
    const waiting = this.#nat.waits();
    this.#report.log(refused, waiting, problems);
    // Counted whole after a complete sync; a change moves only pod routes.
    if (outcome.known !== this.#countedRoutes) {
      this.#routeCounts = countRoutes(this.#known?.routes.values() ?? []);
      this.#countedRoutes = outcome.known;
    } else {
      this.#routeCounts.pod += outcome.routesAdded - outcome.routesRemoved;
    }
    this.#report.record(
      { ...this.#nat.counts, routes: this.#routeCounts },
      refused,
      waiting.length,
      this.#routingPlan?.refused ?? [],
      outcome,
      this.#model?.malformed ?? 0,
    );
    this.#report.synced(this.#nat.size, outcome);
  }

  /** The last plan, whole and sorted (for tests and reports: O(n log n)). */
  get lastPlan(): NatPlan | undefined {
    return this.synced ? this.#nat.plan() : undefined;
  }

  /**
   * What this node translates, as status records (SPEC 3.8: programmed, and
   * since when), keeping the time while a binding is unchanged.
   */
  #statusesOf(
    bindings: readonly NatBinding[],
    recorded: readonly FloatingIpStatus[],
  ): FloatingIpStatus[] {
    const { node, now } = this.options;
    const previous = new Map(recorded.map((status) => [status.ip, status]));
    const stamp = new Date(now ? now() : Date.now()).toISOString();
    const exported = new Set(this.#fenced ? [] : (this.#lastBird?.exports ?? []));
    // vxlan: the other nodes route to it themselves, as in direct mode.
    const announcedAs = (binding: NatBinding) =>
      routesToNodes(this.#routing)
        ? "direct"
        : this.#routing === "bgp" && exported.has(hostPrefix(binding.floating, binding.family))
          ? "bgp"
          : undefined;
    return bindings.map((binding): FloatingIpStatus => {
      const before = previous.get(binding.floating);
      const announced = announcedAs(binding);
      const same = before?.internalIP === binding.pod && before.announced === announced;
      return {
        ip: binding.floating,
        node,
        internalIP: binding.pod,
        programmedSince: same ? before.programmedSince : stamp,
        ...(announced ? { announced } : {}),
      };
    });
  }

  /**
   * Renews this node's liveness (the agent calls this every third of the
   * status TTL); a lapsed one is written again by the next reconcile.
   */
  async keepAlive(): Promise<boolean> {
    const renewed = await this.options.source.keepAlive();
    if (!renewed) this.markDirty("complete");
    return renewed;
  }

  /**
   * Fences (true) or unfences this node (ADR 0009). Fencing tells BIRD at
   * once the last config without this node's floating IPs (no datastore read:
   * the datastore is what is out of reach); unfencing marks the state dirty,
   * so the next reconcile announces again what it then finds is still this
   * node's. Resolves once BIRD has the config.
   */
  async setFenced(fenced: boolean): Promise<void> {
    if (fenced === this.#fenced && (this.#fenceApplied || !fenced)) return;
    this.#fenced = fenced;
    this.#fenceApplied = false;
    if (!fenced) {
      this.markDirty("complete");
      return;
    }
    if ((this.options.routing ?? "none") === "bgp" && this.options.bird && this.#lastBird) {
      await this.#applyBird();
    }
    this.#fenceApplied = true;
  }

  /**
   * The BIRD watchdog (re)connected: it may have loaded the fenced config
   * while this agent was away, so the next reconcile configures BIRD again.
   */
  birdWatchdogConnected(): void {
    this.options.bird?.forget?.();
    this.markDirty("complete");
  }

  /** Fenced, and BIRD has been told (a failed withdrawal is not fenced yet: it is tried again). */
  get fenced(): boolean {
    return this.#fenced && this.#fenceApplied;
  }

  /** A record that does not fit its kind: reported once per version, planned as absent. */
  #reportMalformed(kind: RecordKind, record: RawRecord): void {
    const key = `${record.key}@${record.version}`;
    if (this.#corrupt.has(key)) return;
    this.#corrupt.add(key);
    this.options.logger.log("warn", "agent.refused", {
      key: record.key,
      reason: `not a valid ${kind} record`,
    });
  }

  /** The last BIRD config, without floating IPs while fenced; queued behind any apply under way. */
  #applyBird(): Promise<void> {
    const run = this.#birdLane.then(async () => {
      const bird = this.#lastBird;
      if (!bird || !this.options.bird) return;
      const withdrawn = renderBirdNodeConfig({
        ...bird,
        exports: withoutFloatingExports(bird.exports, this.#lastFloating),
      });
      await this.options.bird.apply(
        this.#fenced ? withdrawn : renderBirdNodeConfig(bird),
        withdrawn,
      );
    });
    this.#birdLane = run.catch(() => undefined);
    return run;
  }
}

/** Names in one set and not the other. */
function changedNames(before: ReadonlySet<string>, after: ReadonlySet<string>): Set<string> {
  const changed = new Set<string>();
  for (const name of before) if (!after.has(name)) changed.add(name);
  for (const name of after) if (!before.has(name)) changed.add(name);
  return changed;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
  });
}
