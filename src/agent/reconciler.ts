// Events mark the state dirty; one reconcile at a time reads this node's
// records, plans (pure) and brings the kernel in line. A failed reconcile
// stays dirty and is retried with backoff; bad records are refused, logged
// once, and never stop the others.
import type { FloatingIpStatus } from "../model/records.js";
import { fitRecord } from "../model/record-shapes.js";
import type { AgentSource, RawRecord, RecordKind } from "../datastore/agent-source.js";
import { renderBirdNodeConfig, type BirdNodeConfig } from "../dataplane/bird-config.js";
import type { Bird } from "../dataplane/shell/bird.js";
import { planNat, planNatOutgoing, type NatBinding, type NatPlan } from "../dataplane/nat-plan.js";
import { planRouting, type RoutingMode, type RoutingPlan } from "../dataplane/routing-plan.js";
import type { Logger } from "../log/logger.js";
import type { Family } from "../net/address.js";
import type { Metrics } from "./metrics.js";
import { withoutFloatingExports } from "./fence.js";
import { syncDataplane, type DataplanePorts, type KnownState } from "./sync-dataplane.js";

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
  /** BGP mode: the node's BIRD. */
  bird?: Bird;
  now?: () => number;
}

const BACKOFF_MS = [100, 250, 500, 1000, 2000, 5000];

export class Reconciler {
  #dirty = true;
  #wake: (() => void) | undefined;
  #failures = 0;
  #reported = new Set<string>();
  readonly #corrupt = new Set<string>();
  #malformed = 0;
  readonly #pendingFlush = new Map<string, Family>();
  /** The kernel state after the last successful sync; undefined: read it back. */
  #known: KnownState | undefined;
  /** True once a reconcile has been applied completely. */
  synced = false;
  /** When the last reconcile succeeded (ms since the epoch), 0 before the first. */
  lastSuccessAt = 0;
  /** Why the last reconcile failed (BIRD refusing its config, etcd away, ...); undefined after a success. */
  lastError: string | undefined;
  lastPlan: NatPlan | undefined;
  #reportedWaits = new Set<string>();
  #lastBird: BirdNodeConfig | undefined;
  #reportedProblems = new Set<string>();
  /** Fenced (ADR 0009): BIRD is told no floating IP, whatever the plan says. */
  #fenced = false;
  #fenceApplied = false;
  /** The floating IPs of the last plan, left out of BIRD's exports while fenced. */
  #lastFloating = new Set<string>();
  /** One BIRD apply at a time: a reconcile's and the fence's never interleave. */
  #birdLane: Promise<void> = Promise.resolve();

  constructor(private readonly options: ReconcilerOptions) {}

  /**
   * A datastore event diffs against what the agent last applied; "verify"
   * (the resync timer) reads the kernel back first, which repairs drift.
   */
  markDirty(kind: "event" | "verify" = "event"): void {
    if (kind === "verify") this.#known = undefined;
    this.#dirty = true;
    this.#wake?.();
  }

  /** Runs until `signal` aborts. Never touches the kernel before the first complete read. */
  async run(signal: AbortSignal): Promise<void> {
    signal.addEventListener("abort", () => this.#wake?.(), { once: true });
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
  }

  async reconcile(): Promise<void> {
    const { source, node, ports, logger, metrics } = this.options;
    const routing = this.options.routing ?? "none";
    const timer = metrics.reconcileSeconds.startTimer();
    try {
      const [state, hostInterfaces] = await Promise.all([
        source.read(),
        ports.routes.readInterfaces(),
      ]);
      const endpoints = this.#decode("endpoint", state.endpoint);
      const claims = this.#decode("claim", state.claim);
      const pools = this.#decode("pool", state.pool);
      const statuses = this.#decode("status", state.status);
      const enabled = this.options.floatingIpsEnabled();
      metrics.floatingIpsEnabled.set(enabled ? 1 : 0);
      const hostedBy = new Map<string, string>();
      for (const status of statuses) {
        if (status.node !== node && !hostedBy.has(status.ip)) hostedBy.set(status.ip, status.node);
      }
      const plan: NatPlan = enabled
        ? planNat(endpoints, node, claims, pools, hostInterfaces, hostedBy)
        : { bindings: [], refused: [] };
      const routingPlan = planRouting({
        node,
        mode: routing,
        bindings: plan.bindings,
        nodes: this.#decode("node", state.node),
        blocks: this.#decode("affinity", state.affinity).map(({ cidr, node: owner }) => ({
          cidr,
          affinity: owner,
        })),
        // Routes to floating IPs hosted elsewhere serve this node's pods even
        // when this node programs none itself.
        hosted: statuses,
        pools,
        peers: this.#decode("peer", state.peer),
        borrowed: this.#decode("borrowed", state.borrowed),
      });
      const known = this.#known;
      this.#known = undefined; // until this sync has succeeded
      const outcome = await syncDataplane(
        {
          bindings: plan.bindings,
          natOutgoing: planNatOutgoing(pools),
          routes: routingPlan.routes,
        },
        ports,
        this.#pendingFlush,
        known,
      );
      this.#known = outcome.known;
      if (this.#pendingFlush.size > 0) {
        throw new Error(`conntrack flush failed for ${[...this.#pendingFlush.keys()].join(", ")}`);
      }
      // Announce only what is programmed: BIRD is told after the kernel
      // translates. Without a config to render (this node's Node record gone,
      // or without an IPv4 address), BIRD is told to announce nothing rather
      // than left announcing what was withdrawn.
      if (routing === "bgp" && this.options.bird) {
        const bird =
          routingPlan.bird ?? (this.#lastBird && { ...this.#lastBird, neighbors: [], exports: [] });
        this.#lastFloating = new Set(plan.bindings.map((binding) => binding.floating));
        this.#lastBird = bird;
        if (bird) await this.#applyBird();
      }
      this.lastPlan = plan;
      this.synced = true;
      this.lastSuccessAt = Date.now();
      const announcedByBird = new Set(this.#fenced ? [] : (routingPlan.bird?.exports ?? []));
      await this.#recordStatus(
        plan,
        statuses.filter((status) => status.node === node),
        (binding) =>
          routing === "direct"
            ? "direct"
            : routing === "bgp" &&
                announcedByBird.has(`${binding.floating}/${binding.family === 4 ? 32 : 128}`)
              ? "bgp"
              : undefined,
      );
      this.#reportWaits(plan, {
        ...routingPlan,
        problems: [
          ...routingPlan.problems,
          ...outcome.routeFailures.map((line) => `route refused by the kernel: ${line.trim()}`),
        ],
      });
      metrics.waiting.set(plan.waiting?.length ?? 0);
      for (const kind of ["pod", "via", "blackhole"] as const) {
        metrics.routes.set(
          { kind },
          routingPlan.routes.filter((route) =>
            kind === "blackhole" ? route.blackhole : kind === "via" ? route.via : route.dev,
          ).length,
        );
      }
      metrics.lastApplyError.set(0);
      metrics.reconciles.inc({ result: "ok" });
      metrics.changes.inc({ kind: "binding_added" }, outcome.added.length);
      metrics.changes.inc({ kind: "binding_removed" }, outcome.removed.length);
      metrics.changes.inc({ kind: "table_replaced" }, outcome.replaced.length);
      metrics.changes.inc({ kind: "conntrack_flushed" }, outcome.flushed.length);
      for (const family of [4, 6] as const) {
        const ofFamily = plan.bindings.filter((b) => b.family === family);
        metrics.bindings.set({ family: `ipv${family}` }, ofFamily.length);
        metrics.egress.set({ family: `ipv${family}` }, ofFamily.filter((b) => b.egress).length);
      }
      metrics.refused.reset();
      for (const refusal of plan.refused) metrics.refused.inc({ reason: refusal.reason });
      // Routes and BGP neighbors skipped so the rest applies (logged as routing problems).
      for (const refusal of routingPlan.refused) metrics.refused.inc({ reason: refusal.reason });
      if (this.#malformed > 0) metrics.refused.inc({ reason: "malformed record" }, this.#malformed);
      this.#malformed = 0;
      this.#reportRefusals(plan);
      const changed =
        outcome.added.length +
          outcome.removed.length +
          outcome.replaced.length +
          outcome.routesAdded +
          outcome.routesRemoved >
        0;
      if (changed) {
        logger.log("info", "agent.synced", {
          bindings: plan.bindings.length,
          added: sample(outcome.added.map((b) => `${b.floating}>${b.pod}`)),
          removed: sample(outcome.removed.map((b) => `${b.floating}>${b.pod}`)),
          replacedTables: outcome.replaced.map((family) => `ipv${family}`),
          routesAdded: outcome.routesAdded,
          routesRemoved: outcome.routesRemoved,
          conntrackFlushed: sample(outcome.flushed),
        });
      }
    } catch (error) {
      metrics.lastApplyError.set(1);
      metrics.reconciles.inc({ result: "error" });
      throw error;
    } finally {
      timer();
    }
  }

  /**
   * Records what this node now translates (SPEC 3.8: programmed, and since
   * when), keeping the time while a binding is unchanged.
   */
  async #recordStatus(
    plan: NatPlan,
    recorded: readonly FloatingIpStatus[],
    announcedAs: (binding: NatBinding) => "bgp" | "direct" | undefined,
  ): Promise<void> {
    const { source, node, now } = this.options;
    const previous = new Map(recorded.map((status) => [status.ip, status]));
    const stamp = new Date(now ? now() : Date.now()).toISOString();
    const desired = plan.bindings.map((binding): FloatingIpStatus => {
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
    await source.recordStatus(desired, recorded);
  }

  /**
   * Renews this node's liveness (the agent calls this every third of the
   * status TTL); a lapsed one is written again by the next reconcile.
   */
  async keepAlive(): Promise<boolean> {
    const renewed = await this.options.source.keepAlive();
    if (!renewed) this.markDirty();
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
      this.markDirty();
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
    this.markDirty();
  }

  /** Fenced, and BIRD has been told (a failed withdrawal is not fenced yet: it is tried again). */
  get fenced(): boolean {
    return this.#fenced && this.#fenceApplied;
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

  /** Moves waiting on another node, and routing problems: logged once each while they last. */
  #reportWaits(plan: NatPlan, routing: RoutingPlan): void {
    const waits = new Set<string>();
    for (const wait of plan.waiting ?? []) {
      const key = `${wait.floatingIP}|${wait.pod}|${wait.node}`;
      waits.add(key);
      if (!this.#reportedWaits.has(key))
        this.options.logger.log("info", "agent.waiting", {
          ...wait,
          reason: `node ${wait.node} still translates it; programming once it withdraws`,
        });
    }
    this.#reportedWaits = waits;
    const problems = new Set(routing.problems);
    for (const problem of problems) {
      if (!this.#reportedProblems.has(problem))
        this.options.logger.log("warn", "agent.routing", { problem });
    }
    this.#reportedProblems = problems;
  }

  /** Each refusal is logged once while it lasts. */
  #reportRefusals(plan: NatPlan): void {
    const current = new Set<string>();
    for (const refusal of plan.refused) {
      const key = `${refusal.floatingIP}|${refusal.pod}|${refusal.reason}`;
      current.add(key);
      if (!this.#reported.has(key))
        this.options.logger.log("warn", "agent.refused", { ...refusal });
    }
    this.#reported = current;
  }

  /** Records that have the expected shape; the rest are reported once and skipped. */
  #decode<K extends RecordKind>(kind: K, records: readonly RawRecord[]) {
    const values: NonNullable<ReturnType<typeof fitRecord<K>>>[] = [];
    for (const record of records) {
      const fitted = record.value === undefined ? undefined : fitRecord(kind, record.value);
      if (fitted) {
        values.push(fitted);
        continue;
      }
      this.#malformed += 1;
      const key = `${record.key}@${record.version}`;
      if (!this.#corrupt.has(key)) {
        this.#corrupt.add(key);
        this.options.logger.log("warn", "agent.refused", {
          key: record.key,
          reason: `not a valid ${kind} record`,
        });
      }
    }
    return values;
  }
}

/** At most 20 items of a list for a log line, with the count of the rest. */
function sample(items: string[]): string[] {
  return items.length <= 20 ? items : [...items.slice(0, 20), `... and ${items.length - 20} more`];
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
  });
}
