// In-memory Kv with the same revision semantics as etcd: for unit tests.
import type { Kv, KvCompare, KvEntry, KvOp, KvRead, WatchSignal } from "./kv.js";

export class MemoryKv implements Kv {
  #revision = 1;
  readonly #entries = new Map<string, KvEntry>();
  readonly #watchers = new Set<(keys: readonly string[]) => void>();

  async get(key: string): Promise<KvEntry | undefined> {
    const entry = this.#entries.get(key);
    return entry && { ...entry };
  }

  async list(prefix: string): Promise<KvEntry[]> {
    return [...this.#entries.values()]
      .filter((entry) => entry.key.startsWith(prefix))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
      .map((entry) => ({ ...entry }));
  }

  async readMany(reads: readonly KvRead[]): Promise<KvEntry[][]> {
    return Promise.all(
      reads.map(async (read) => {
        if ("prefix" in read) return this.list(read.prefix);
        const entry = await this.get(read.key);
        return entry ? [entry] : [];
      }),
    );
  }

  async txn(compares: readonly KvCompare[], ops: readonly KvOp[]): Promise<boolean> {
    const holds = compares.every((compare) => {
      const entry = this.#entries.get(compare.key);
      return "createRevision" in compare
        ? (entry?.createRevision ?? 0) === compare.createRevision
        : (entry?.modRevision ?? 0) === compare.modRevision;
    });
    if (!holds) return false;
    if (ops.length === 0) return true;
    this.#revision += 1;
    const changed = ops.map((op) => ("delete" in op ? op.delete : op.put));
    queueMicrotask(() => this.#watchers.forEach((notify) => notify(changed)));
    for (const op of ops) {
      if ("delete" in op) {
        this.#entries.delete(op.delete);
        continue;
      }
      const previous = this.#entries.get(op.put);
      this.#entries.set(op.put, {
        key: op.put,
        value: op.value,
        createRevision: previous?.createRevision ?? this.#revision,
        modRevision: this.#revision,
      });
    }
    return true;
  }

  async ping(): Promise<void> {}

  async *watch(prefix: string, signal: AbortSignal): AsyncIterable<WatchSignal> {
    let pending = 0;
    let wake: (() => void) | undefined;
    const notify = (keys: readonly string[]) => {
      if (!keys.some((key) => key.startsWith(prefix))) return;
      pending += 1;
      wake?.();
    };
    const onAbort = () => wake?.();
    this.#watchers.add(notify);
    signal.addEventListener("abort", onAbort);
    try {
      yield "ready";
      while (!signal.aborted) {
        if (pending === 0) await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
        for (; pending > 0 && !signal.aborted; pending--) yield "changed";
      }
    } finally {
      this.#watchers.delete(notify);
      signal.removeEventListener("abort", onAbort);
    }
  }
}
