// In-memory Kv with the same revision semantics as etcd: for unit tests.
import type { Kv, KvCompare, KvEntry, KvOp, KvRead } from "./kv.js";

export class MemoryKv implements Kv {
  #revision = 1;
  readonly #entries = new Map<string, KvEntry>();

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
}
