// What the agent knows of the kernel between read-backs (issue 14: a no-op
// resync at 100k bindings under 1 s of CPU). Fed by the kernel's change
// notices (dataplane/kernel-events.ts), it answers two questions:
// - at a resync tick: did anything change buoy's tables or routes other than
//   as the agent holds them? Each element and route the notices named since
//   the last tick is compared, as its last notice left it, with what the
//   agent holds; a change it cannot compare (a chain, a table replaced, a
//   monitor that stopped) makes the tick read everything back, as before.
// - on every reconcile: which interfaces the node has, without `ip link`.
// Its own writes come back as notices too; they match what it holds. A notice
// still in the pipe at a tick can only make that tick read back (never skip
// one that should).
import type { KernelEvent, WatchedMap } from "../dataplane/kernel-events.js";
import type { NatBinding } from "../dataplane/nat-plan.js";
import type { KernelMonitor } from "../dataplane/shell/kernel-monitor.js";
import type { Logger } from "../log/logger.js";
import type { Family } from "../net/address.js";

/** What the agent holds as programmed, asked key by key. */
export interface HeldDataplane {
  /** The binding of a floating IP. */
  binding(floating: string): Pick<NatBinding, "family" | "pod" | "egress"> | undefined;
  /** Whether buoy's route with this routeKey is held. */
  hasRoute(key: string): boolean;
}

interface ElementNotice {
  family: Family;
  map: WatchedMap;
  key: string;
  value: string;
  present: boolean;
}

export class KernelWatch {
  /** Whether the monitors run and a read-back since their start set the baseline. */
  #watching = false;
  /** Something changed that only a read-back can judge. */
  #unjudged = true;
  readonly #elements = new Map<string, ElementNotice>();
  readonly #routes = new Map<string, boolean>();
  /** Interfaces by index, once the monitor's first listing came. */
  #links: Map<number, string> | undefined;
  #names: Set<string> | undefined;
  /** Counts starts and losses: a read-back begun before one sets no baseline. */
  generation = 0;

  /** The monitors started (again): until a read-back, every tick reads back. */
  started(links: ReadonlyMap<number, string>): void {
    this.generation += 1;
    this.#watching = false;
    this.#unjudged = true;
    this.#links = new Map(links);
    this.#names = undefined;
    this.#clear();
  }

  /** A monitor stopped or fell behind: back to reading everything. */
  lost(): void {
    this.generation += 1;
    this.#watching = false;
    this.#unjudged = true;
    this.#links = undefined;
    this.#names = undefined;
    this.#clear();
  }

  /** Takes notices; true when an interface came, went or was renamed. */
  take(events: readonly KernelEvent[]): boolean {
    let renamed = false;
    for (const event of events) {
      if (event.kind === "table") this.#unjudged = true;
      else if (event.kind === "route") {
        if (!this.#unjudged) this.#routes.set(event.key, event.present);
      } else if (event.kind === "element") {
        if (!this.#unjudged) {
          this.#elements.set(`${event.family} ${event.map} ${event.key}`, event);
        }
      } else if (this.#links) {
        const name = event.present ? event.name : undefined;
        if (this.#links.get(event.index) === name) continue; // a state change (up, carrier)
        renamed = true;
        this.#names = undefined;
        if (name === undefined) this.#links.delete(event.index);
        else this.#links.set(event.index, name);
      }
    }
    return renamed;
  }

  /** The node's interfaces, when the monitor keeps them. */
  interfaces(): ReadonlySet<string> | undefined {
    if (!this.#links) return undefined;
    this.#names ??= new Set(this.#links.values());
    return this.#names;
  }

  /**
   * At a resync tick: true when the kernel must be read back (no baseline
   * yet, a change only a read-back can judge, or an element or route that
   * differs from what is held). Clears what it compared either way.
   */
  mustReadBack(held: HeldDataplane): boolean {
    const readBack = !this.#watching || this.#unjudged || this.#drifted(held);
    this.#clear();
    return readBack;
  }

  /** The interfaces listed again (a read-back tick), while the monitors run. */
  relist(links: ReadonlyMap<number, string>): void {
    if (!this.#links) return;
    this.#links = new Map(links);
    this.#names = undefined;
  }

  /**
   * The kernel was read back whole and brought in line, in a read begun at
   * `generation`: the baseline from here, if the monitors ran all along.
   */
  readBack(generation: number): void {
    if (this.#links === undefined || generation !== this.generation) return;
    this.#watching = true;
    this.#unjudged = false;
    this.#clear();
  }

  #drifted(held: HeldDataplane): boolean {
    for (const [key, present] of this.#routes) if (held.hasRoute(key) !== present) return true;
    for (const notice of this.#elements.values()) if (!matches(notice, held)) return true;
    return false;
  }

  #clear(): void {
    this.#elements.clear();
    this.#routes.clear();
  }
}

/** Whether an element, as its last notice left it, is what the held bindings put there. */
function matches(notice: ElementNotice, held: HeldDataplane): boolean {
  const { map, key, value, present } = notice;
  if (map === "fip_dnat") {
    const binding = held.binding(key);
    const wanted = binding?.family === notice.family ? binding.pod : undefined;
    return present ? wanted === value : wanted === undefined;
  }
  if (map === "fip_hairpin") {
    const [pod, floating] = key.split(" . ") as [string, string];
    const binding = held.binding(floating);
    const wanted = binding?.family === notice.family && binding.pod === pod;
    return present ? wanted && value === floating : !wanted;
  }
  // fip_egress: pod -> the floating IP it leaves from.
  const binding = held.binding(value);
  const wanted = binding?.family === notice.family && binding.pod === key && !!binding.egress;
  return present === wanted;
}

const RESTART_MS = [1000, 2000, 5000, 10_000, 30_000];

/**
 * Keeps the kernel monitor running for `watch` until `signal` aborts: a
 * monitor lost is logged and started again after a backoff (meanwhile, and
 * until a read-back after the start, the agent reads the kernel as it would
 * without one). `changed` hears of interfaces that came or went.
 */
export async function keepWatching(
  monitor: KernelMonitor,
  watch: KernelWatch,
  { logger, signal, changed }: { logger: Logger; signal: AbortSignal; changed: () => void },
): Promise<void> {
  let failures = 0;
  signal.addEventListener("abort", () => monitor.stop(), { once: true });
  while (!signal.aborted) {
    const lost = new Promise<string>((resolve) => {
      monitor
        .start({
          onEvents: (events) => {
            if (watch.take(events)) changed();
          },
          onLost: resolve,
        })
        .then(
          (links) => {
            watch.started(links);
            failures = 0;
            changed();
          },
          (error: Error) => resolve(error.message),
        );
      signal.addEventListener("abort", () => resolve("stopped"), { once: true });
    });
    const reason = await lost;
    watch.lost();
    if (signal.aborted) break;
    const delay = RESTART_MS[Math.min(failures, RESTART_MS.length - 1)] as number;
    failures += 1;
    logger.log("warn", "agent.kernel-monitor", { reason, retryInMs: delay });
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, delay);
      signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
    });
  }
  monitor.stop();
}
