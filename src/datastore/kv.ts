// The key-value port under every datastore record: etcd v3 semantics (global
// revision, per-key create/mod revisions, multi-key compare-and-swap
// transactions), small enough that an in-memory fake implements it exactly.

export interface KvEntry {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
}

/** Equality on a key's revision; `create: 0` means "the key does not exist". */
export type KvCompare =
  { key: string; createRevision: number } | { key: string; modRevision: number };

export type KvOp = { put: string; value: string } | { delete: string };

export type WatchSignal = "ready" | "changed";

/** One key, or every key under a prefix. */
export type KvRead = { key: string } | { prefix: string };

export interface Kv {
  get(key: string): Promise<KvEntry | undefined>;
  /** Every key starting with `prefix`, in key order. */
  list(prefix: string): Promise<KvEntry[]>;
  /** Several reads in one request, at one revision; one result list per read. */
  readMany(reads: readonly KvRead[]): Promise<KvEntry[][]>;
  /** Applies `ops` only if every compare holds; resolves to whether it did. */
  txn(compares: readonly KvCompare[], ops: readonly KvOp[]): Promise<boolean>;
  /** Resolves when the store answers; rejects with the reason when it does not. */
  ping(): Promise<void>;
  /**
   * Signals changes under `prefix`: "ready" once the watch is established
   * (read after that and nothing is missed), then "changed" per change. Ends
   * when `signal` aborts; rejects when the connection is lost (watch again).
   */
  watch(prefix: string, signal: AbortSignal): AsyncIterable<WatchSignal>;
}

/** The store could not be reached or answered with an error (CNI code 11 territory). */
export class DatastoreUnavailableError extends Error {
  override readonly name = "DatastoreUnavailableError";
}
