// In-memory Kv with the same revision and lease semantics as etcd: for unit tests.
import { DatastoreUnavailableError } from "../datastore/unavailable-error.js";
import {
  type Kv,
  type KvCompare,
  type KvEntry,
  type KvOp,
  type KvRead,
  type WatchSignal,
  checkTxnSize,
  validateLeaseTtl,
} from "../datastore/kv.js";

/** Time as MemoryKv sees it: injectable, so lease expiry is tested without waiting. */
export interface MemoryKvClock {
  /** Milliseconds on a monotonic clock. */
  now(): number;
  /** Runs `callback` after `delayMs`, without keeping the process alive; returns a cancel. */
  setTimer(callback: () => void, delayMs: number): () => void;
}

const systemClock: MemoryKvClock = {
  now: () => performance.now(),
  setTimer(callback, delayMs) {
    const timer = setTimeout(callback, delayMs);
    timer.unref();
    return () => clearTimeout(timer);
  },
};

/** A clock that moves only when told to, running the timers that fall due on the way. */
export class ManualClock implements MemoryKvClock {
  #nowMs = 0;
  readonly #timers = new Set<{ dueMs: number; callback: () => void }>();

  now(): number {
    return this.#nowMs;
  }

  setTimer(callback: () => void, delayMs: number): () => void {
    const timer = { dueMs: this.#nowMs + Math.max(delayMs, 0), callback };
    this.#timers.add(timer);
    return () => this.#timers.delete(timer);
  }

  /** Moves time forward by `ms`, running due timers in order at their due time. */
  advance(ms: number): void {
    const targetMs = this.#nowMs + ms;
    for (;;) {
      let next: { dueMs: number; callback: () => void } | undefined;
      for (const timer of this.#timers) {
        if (timer.dueMs <= targetMs && (!next || timer.dueMs < next.dueMs)) next = timer;
      }
      if (!next) break;
      this.#timers.delete(next);
      this.#nowMs = Math.max(this.#nowMs, next.dueMs);
      next.callback();
    }
    this.#nowMs = targetMs;
  }

  /** advance(), then lets pending callbacks (watch notifications) run. */
  async sleep(ms: number): Promise<void> {
    this.advance(ms);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

export interface MemoryKvOptions {
  clock?: MemoryKvClock;
}

interface Lease {
  ttlMs: number;
  deadlineMs: number;
  keys: Set<string>;
  cancelTimer: () => void;
}

// setTimeout fires at once for longer delays; a longer lease just re-arms its timer.
const MAX_TIMER_MS = 2 ** 31 - 1;

export class MemoryKv implements Kv {
  #revision = 1;
  readonly #entries = new Map<string, KvEntry>();
  readonly #watchers = new Set<
    (keys: readonly string[], entries: readonly (KvEntry | undefined)[]) => void
  >();
  readonly #clock: MemoryKvClock;
  readonly #leases = new Map<string, Lease>();
  /** Key → the lease it is attached to. */
  readonly #leaseOfKey = new Map<string, string>();
  // Above 2^53 like etcd's: a caller that turns an ID into a JS number breaks here too.
  #nextLeaseId = 7587861231285000001n;

  constructor(options: MemoryKvOptions = {}) {
    this.#clock = options.clock ?? systemClock;
  }

  async get(key: string): Promise<KvEntry | undefined> {
    this.#expireDueLeases();
    const entry = this.#entries.get(key);
    return entry && { ...entry };
  }

  async list(prefix: string): Promise<KvEntry[]> {
    this.#expireDueLeases();
    return [...this.#entries.values()]
      .filter((entry) => entry.key.startsWith(prefix))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
      .map((entry) => ({ ...entry }));
  }

  async listPage(prefix: string, after: string | undefined, limit: number): Promise<KvEntry[]> {
    const listed = await this.list(prefix);
    return listed.filter((entry) => after === undefined || entry.key > after).slice(0, limit);
  }

  async count(prefix: string): Promise<number> {
    return (await this.list(prefix)).length;
  }

  async readMany(reads: readonly KvRead[]): Promise<KvEntry[][]> {
    checkTxnSize("reads", reads.length);
    return Promise.all(
      reads.map(async (read) => {
        if ("prefix" in read) return this.list(read.prefix);
        const entry = await this.get(read.key);
        return entry ? [entry] : [];
      }),
    );
  }

  async txn(compares: readonly KvCompare[], ops: readonly KvOp[]): Promise<boolean> {
    return (await this.txnAt(compares, ops)) !== undefined;
  }

  async txnAt(compares: readonly KvCompare[], ops: readonly KvOp[]): Promise<number | undefined> {
    checkTxnSize("compares", compares.length);
    checkTxnSize("operations", ops.length);
    this.#expireDueLeases();
    const holds = compares.every((compare) => {
      const entry = this.#entries.get(compare.key);
      return "createRevision" in compare
        ? (entry?.createRevision ?? 0) === compare.createRevision
        : (entry?.modRevision ?? 0) === compare.modRevision;
    });
    if (!holds) return undefined;
    for (const op of ops) {
      if ("put" in op && op.lease !== undefined && !this.#leases.has(op.lease)) {
        throw new DatastoreUnavailableError(`requested lease ${op.lease} not found`);
      }
    }
    if (ops.length === 0) return this.#revision;
    this.#revision += 1;
    const changed = ops.map((op) => ("delete" in op ? op.delete : op.put));
    for (const op of ops) {
      if ("delete" in op) {
        this.#entries.delete(op.delete);
        this.#attach(op.delete, undefined);
        continue;
      }
      const previous = this.#entries.get(op.put);
      this.#entries.set(op.put, {
        key: op.put,
        value: op.value,
        createRevision: previous?.createRevision ?? this.#revision,
        modRevision: this.#revision,
      });
      this.#attach(op.put, op.lease);
    }
    this.#notify(changed);
    return this.#revision;
  }

  async ping(): Promise<void> {}

  async *watch(prefix: string, signal: AbortSignal): AsyncIterable<WatchSignal> {
    const pending: { changed: string[]; entries: (KvEntry | undefined)[] }[] = [];
    let wake: (() => void) | undefined;
    const notify = (keys: readonly string[], entries: readonly (KvEntry | undefined)[]) => {
      const under = keys.flatMap((key, index) => (key.startsWith(prefix) ? [index] : []));
      if (under.length === 0) return;
      pending.push({
        changed: under.map((index) => keys[index] as string),
        entries: under.map((index) => entries[index]),
      });
      wake?.();
    };
    const onAbort = () => wake?.();
    this.#watchers.add(notify);
    signal.addEventListener("abort", onAbort);
    try {
      yield "ready";
      while (!signal.aborted) {
        if (pending.length === 0) await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
        for (let next = pending.shift(); next && !signal.aborted; next = pending.shift()) {
          yield next;
        }
      }
    } finally {
      this.#watchers.delete(notify);
      signal.removeEventListener("abort", onAbort);
    }
  }

  async grantLease(ttlSeconds: number): Promise<string> {
    validateLeaseTtl(ttlSeconds);
    this.#expireDueLeases();
    const id = String(this.#nextLeaseId++);
    const lease: Lease = {
      ttlMs: ttlSeconds * 1000,
      deadlineMs: 0,
      keys: new Set(),
      cancelTimer() {},
    };
    this.#leases.set(id, lease);
    this.#renew(id, lease);
    return id;
  }

  async keepAliveLease(id: string): Promise<boolean> {
    this.#expireDueLeases();
    const lease = this.#leases.get(id);
    if (!lease) return false;
    this.#renew(id, lease);
    return true;
  }

  async revokeLease(id: string): Promise<void> {
    this.#expireDueLeases();
    const lease = this.#leases.get(id);
    if (lease) this.#deleteLease(id, lease);
  }

  /** After a change is applied: each key with what it holds now (copies), heard a microtask later. */
  #notify(keys: readonly string[]): void {
    const entries = keys.map((key) => {
      const entry = this.#entries.get(key);
      return entry && { ...entry };
    });
    queueMicrotask(() => this.#watchers.forEach((notify) => notify(keys, entries)));
  }

  /** Moves `key` to `leaseId`'s key set (none: detached). */
  #attach(key: string, leaseId: string | undefined): void {
    const previous = this.#leaseOfKey.get(key);
    if (previous !== undefined) this.#leases.get(previous)?.keys.delete(key);
    if (leaseId === undefined) {
      this.#leaseOfKey.delete(key);
      return;
    }
    this.#leaseOfKey.set(key, leaseId);
    this.#leases.get(leaseId)?.keys.add(key);
  }

  #renew(id: string, lease: Lease): void {
    lease.cancelTimer();
    lease.deadlineMs = this.#clock.now() + lease.ttlMs;
    this.#arm(id, lease);
  }

  /** Timers only make expiry prompt (watchers hear of it); every call checks deadlines too. */
  #arm(id: string, lease: Lease): void {
    const delayMs = Math.min(Math.max(lease.deadlineMs - this.#clock.now(), 0), MAX_TIMER_MS);
    lease.cancelTimer = this.#clock.setTimer(() => {
      if (this.#leases.get(id) !== lease) return;
      // Timers may fire a little early: re-arm until the deadline has really passed.
      if (lease.deadlineMs <= this.#clock.now()) this.#deleteLease(id, lease);
      else this.#arm(id, lease);
    }, delayMs);
  }

  #expireDueLeases(): void {
    const nowMs = this.#clock.now();
    for (const [id, lease] of this.#leases) {
      if (lease.deadlineMs <= nowMs) this.#deleteLease(id, lease);
    }
  }

  /** Drops the lease and deletes its keys at one new revision, as a delete would. */
  #deleteLease(id: string, lease: Lease): void {
    lease.cancelTimer();
    this.#leases.delete(id);
    if (lease.keys.size === 0) return;
    const keys = [...lease.keys];
    this.#revision += 1;
    for (const key of keys) {
      this.#entries.delete(key);
      this.#leaseOfKey.delete(key);
    }
    this.#notify(keys);
  }
}
