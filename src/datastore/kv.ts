// The key-value port under every datastore record: etcd v3 semantics (global
// revision, per-key create/mod revisions, multi-key compare-and-swap
// transactions, leases that delete their keys when they expire), small enough
// that an in-memory fake implements it exactly.

export interface KvEntry {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
}

/** Equality on a key's revision; `create: 0` means "the key does not exist". */
export type KvCompare =
  { key: string; createRevision: number } | { key: string; modRevision: number };

/**
 * A put with `lease` attaches the key to that lease (the key is deleted when
 * the lease expires or is revoked); a put without one detaches it, as in etcd.
 */
export type KvOp = { put: string; value: string; lease?: string } | { delete: string };

/**
 * "ready" once the watch is established; then, per change, the keys it
 * touched and, key by key in the same order, what each now holds
 * (undefined: deleted).
 */
export type WatchSignal =
  "ready" | { changed: readonly string[]; entries: readonly (KvEntry | undefined)[] };

/** One key, or every key under a prefix. */
export type KvRead = { key: string } | { prefix: string };

export interface Kv {
  get(key: string): Promise<KvEntry | undefined>;
  /** Every key starting with `prefix`, in key order. */
  list(prefix: string): Promise<KvEntry[]>;
  /**
   * At most `limit` keys starting with `prefix` and sorting after `after`
   * (undefined: from the first), in key order: one page of a prefix too
   * large to read at once.
   */
  listPage(prefix: string, after: string | undefined, limit: number): Promise<KvEntry[]>;
  /**
   * How many keys start with `prefix`, without their values (etcd's
   * count_only range). Optional: without it, a caller reads by key.
   */
  count?(prefix: string): Promise<number>;
  /** Several reads in one request, at one revision; one result list per read. */
  readMany(reads: readonly KvRead[]): Promise<KvEntry[][]>;
  /**
   * Applies `ops` only if every compare holds; resolves to whether it did.
   * Rejects, applying nothing, when the compares hold and a put names a lease
   * that does not exist (expired or revoked).
   */
  txn(compares: readonly KvCompare[], ops: readonly KvOp[]): Promise<boolean>;
  /**
   * txn, resolving to the revision it was applied at (every put in it has
   * that modRevision; the store's revision when it changed nothing), or
   * undefined when a compare failed. Optional: a caller that only uses it to
   * recognise its own writes coming back through a watch does without.
   */
  txnAt?(compares: readonly KvCompare[], ops: readonly KvOp[]): Promise<number | undefined>;
  /** Resolves when the store answers; rejects with the reason when it does not. */
  ping(): Promise<void>;
  /**
   * Signals changes under `prefix`: "ready" once the watch is established
   * (read after that and nothing is missed), then `{ changed, entries }` per
   * change, with the keys under `prefix` it put or deleted and their entries
   * after it, in revision order. Ends
   * when `signal` aborts; rejects when the connection is lost (watch again).
   */
  watch(prefix: string, signal: AbortSignal): AsyncIterable<WatchSignal>;
  /**
   * Grants a lease that expires `ttlSeconds` (a positive whole number) after
   * its last keep-alive; resolves to its ID (decimal string: an int64, never a
   * JS number). The store may lengthen a short TTL: etcd grants at least its
   * minimum lease TTL (2 s with default timings).
   */
  grantLease(ttlSeconds: number): Promise<string>;
  /** Renews the lease; resolves to false when the lease no longer exists (expired or revoked). */
  keepAliveLease(id: string): Promise<boolean>;
  /** Revokes the lease: every key attached to it is deleted. Unknown IDs are fine. */
  revokeLease(id: string): Promise<void>;
}

/**
 * The most compares, and the most operations, one transaction (or one
 * readMany) may hold: etcd's default --max-txn-ops. Both stores refuse more
 * with TooManyOperationsError; callers split what may grow past it.
 */
export const MAX_TXN_OPS = 128;

export class TooManyOperationsError extends Error {
  override readonly name = "TooManyOperationsError";
}

/** Throws TooManyOperationsError when a list is longer than one transaction may be. */
export function checkTxnSize(what: string, count: number): void {
  if (count > MAX_TXN_OPS) {
    throw new TooManyOperationsError(
      `a transaction of ${count} ${what} is more than etcd accepts (${MAX_TXN_OPS})`,
    );
  }
}

/** Rejects what neither store accepts as a lease TTL, with the value in the message. */
export function validateLeaseTtl(ttlSeconds: number): void {
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds <= 0) {
    throw new RangeError(`lease TTL must be a positive whole number of seconds, got ${ttlSeconds}`);
  }
}
