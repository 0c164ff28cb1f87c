// Every key under one prefix, kept in memory from a watch: listed once the
// watch is up (so nothing between the list and the watch is missed), then
// changed event by event, and listed again only when the watch had to be
// made again. For the FloatingIP controller on etcd, whose work per event is
// what the event touched, never a read of the whole prefix.
import type { Kv, KvEntry } from "../datastore/kv.js";
import type { Logger } from "../log/logger.js";

/** One key's change: what it held before and holds now (undefined: absent). */
export interface CacheChange<T> {
  key: string;
  before: T | undefined;
  after: T | undefined;
}

export interface PrefixCacheHandlers<T> {
  /** Keys whose entry changed (put, deleted, or in a list after the watch was made again). */
  changed(changes: readonly CacheChange<T>[]): void;
  /** The cache is complete (true) or may be missing changes (false). */
  synced(up: boolean): void;
}

interface Held<T> {
  modRevision: number;
  value: T;
}

/** Values decoded once, as they arrive; one that does not decode is left out (logged). */
export class PrefixCache<T> {
  readonly #entries = new Map<string, Held<T>>();

  constructor(
    private readonly kv: Kv,
    readonly prefix: string,
    private readonly decode: (value: unknown) => T | undefined,
    private readonly logger: Logger,
  ) {}

  get(key: string): T | undefined {
    return this.#entries.get(key)?.value;
  }

  /** The value and the revision it was written at (for a transaction's compare). */
  versioned(key: string): { value: T; revision: string } | undefined {
    const held = this.#entries.get(key);
    return held && { value: held.value, revision: String(held.modRevision) };
  }

  values(): IterableIterator<T> {
    return [...this.#entries.values()].map((held) => held.value)[Symbol.iterator]();
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Watches until `signal` aborts; a lost watch is made again, with a backoff after the first retry. */
  async run(signal: AbortSignal, handlers: PrefixCacheHandlers<T>): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      try {
        for await (const event of this.kv.watch(this.prefix, signal)) {
          if (event === "ready") {
            failures = 0;
            handlers.changed(await this.#relist());
            handlers.synced(true);
            continue;
          }
          const touched: CacheChange<T>[] = [];
          event.changed.forEach((key, index) => {
            const entry = event.entries[index];
            const held = this.#entries.get(key);
            if (entry === undefined) {
              if (held === undefined) return;
              this.#entries.delete(key);
              touched.push({ key, before: held.value, after: undefined });
              return;
            }
            // Delivered after the list that already has it, or something newer.
            if (held && held.modRevision >= entry.modRevision) return;
            const next = this.#decoded(entry);
            if (next) this.#entries.set(key, next);
            else this.#entries.delete(key);
            touched.push({ key, before: held?.value, after: next?.value });
          });
          if (touched.length > 0) handlers.changed(touched);
        }
      } catch (error) {
        if (signal.aborted) break;
        failures += 1;
        // A stream that ends once (an idle body timeout) is made again at
        // once and quietly; one that cannot be made again means changes may
        // be missed until it is.
        if (failures > 1) {
          handlers.synced(false);
          this.logger.log("warn", "controller.watch", {
            prefix: this.prefix,
            error: (error as Error).message,
          });
        }
        const delay = failures > 1 ? Math.min(5000, 100 * 2 ** failures) : 0;
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  /** Lists the prefix again; returns the keys whose entry is not what it was. */
  async #relist(): Promise<CacheChange<T>[]> {
    const listed = await this.kv.list(this.prefix);
    const before = new Map(this.#entries);
    this.#entries.clear();
    const touched: CacheChange<T>[] = [];
    for (const entry of listed) {
      const held = before.get(entry.key);
      before.delete(entry.key);
      if (held?.modRevision === entry.modRevision) {
        this.#entries.set(entry.key, held);
        continue;
      }
      const next = this.#decoded(entry);
      if (next) this.#entries.set(entry.key, next);
      touched.push({ key: entry.key, before: held?.value, after: next?.value });
    }
    for (const [key, held] of before) touched.push({ key, before: held.value, after: undefined });
    return touched;
  }

  #decoded(entry: KvEntry): Held<T> | undefined {
    let value: T | undefined;
    try {
      value = this.decode(JSON.parse(entry.value));
    } catch {
      value = undefined;
    }
    if (value === undefined) {
      this.logger.log("warn", "controller.record", { key: entry.key, problem: "cannot be read" });
      return undefined;
    }
    return { modRevision: entry.modRevision, value };
  }
}
