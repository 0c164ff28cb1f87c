// Commits a change planned in parts (plan-parts.ts, ADR 0012) one
// transaction after another. A part up to the anchor that loses its compares
// undoes the parts before it: every claim they wrote that still holds this
// holder's value is put back as it was (deleted, when there was none), each
// compared on the revision read, so nothing of the change remains. The
// parts after the anchor only let claims go; one that loses its compares is
// done again on a fresh read of its claims, deleting those still ours.
import { MAX_TXN_OPS, type Kv, type KvEntry, type KvOp } from "../datastore/kv.js";
import type { PartsPlan } from "./plan-parts.js";

const MAX_REMOVAL_ATTEMPTS = 20;

export interface PartedCommit {
  plan: PartsPlan;
  /** Each claim key the writes put, with what it held before (undefined: nothing). */
  previous: ReadonlyMap<string, string | undefined>;
  /** Whether a claim's stored value is this holder's. */
  ours(value: string): boolean;
}

/**
 * Resolves to true once every part is committed; to false when a part up to
 * the anchor lost its compares (the parts before it undone). Rejects when a
 * request fails: before the anchor's part after undoing what it can; at the
 * anchor's part without undoing, since whether it applied is unknown (DEL
 * and the claim collector release what stays).
 */
export async function commitParts(
  kv: Kv,
  { plan, previous, ours }: PartedCommit,
): Promise<boolean> {
  const { parts, anchorPart } = plan;
  for (let index = 0; index <= anchorPart; index++) {
    const part = parts[index];
    if (!part) break;
    let applied: boolean;
    try {
      applied = await kv.txn(part.compares, part.ops);
    } catch (error) {
      if (index < anchorPart)
        await undoWrites(kv, written(plan, index, previous), previous, ours).catch(() => undefined);
      throw error;
    }
    if (!applied) {
      await undoWrites(kv, written(plan, index - 1, previous), previous, ours);
      return false;
    }
  }
  for (const part of parts.slice(anchorPart + 1)) {
    if (await kv.txn(part.compares, part.ops)) continue;
    await removeOwn(kv, deletedKeys(part.ops), ours);
  }
  return true;
}

/** The claim keys the parts up to `last` (inclusive) put. */
function written(
  plan: PartsPlan,
  last: number,
  previous: ReadonlyMap<string, string | undefined>,
): string[] {
  return plan.parts
    .slice(0, last + 1)
    .flatMap((part) =>
      part.ops.flatMap((op) => ("put" in op && previous.has(op.put) ? [op.put] : [])),
    );
}

function deletedKeys(ops: readonly KvOp[]): string[] {
  return ops.flatMap((op) => ("delete" in op ? [op.delete] : []));
}

/**
 * Puts back (or deletes) each of `keysWritten` that still holds our value,
 * on its revision: a claim taken over since stays. In parts; a part that
 * loses its compares goes one claim at a time.
 */
async function undoWrites(
  kv: Kv,
  keysWritten: readonly string[],
  previous: ReadonlyMap<string, string | undefined>,
  ours: (value: string) => boolean,
): Promise<void> {
  const own = (await readKeys(kv, keysWritten)).filter((entry) => ours(entry.value));
  const undo = (entry: KvEntry): KvOp => {
    const before = previous.get(entry.key);
    return before === undefined ? { delete: entry.key } : { put: entry.key, value: before };
  };
  for (let start = 0; start < own.length; start += MAX_TXN_OPS) {
    const part = own.slice(start, start + MAX_TXN_OPS);
    if (await kv.txn(part.map(onRevision), part.map(undo))) continue;
    for (const entry of part) await kv.txn([onRevision(entry)], [undo(entry)]);
  }
}

function onRevision(entry: KvEntry) {
  return { key: entry.key, modRevision: entry.modRevision };
}

/** Deletes each of `claimKeys` still ours, each on the revision read, until none is left. */
async function removeOwn(
  kv: Kv,
  claimKeys: readonly string[],
  ours: (value: string) => boolean,
): Promise<void> {
  for (let attempt = 0; attempt < MAX_REMOVAL_ATTEMPTS; attempt++) {
    const own = (await readKeys(kv, claimKeys)).filter((entry) => ours(entry.value));
    if (own.length === 0) return;
    const done = await kv.txn(
      own.map(onRevision),
      own.map((entry) => ({ delete: entry.key })),
    );
    if (done) return;
  }
  throw new Error(
    `releasing floating IP claims kept conflicting after ${MAX_REMOVAL_ATTEMPTS} attempts`,
  );
}

/** The entries of `keysToRead` that exist, in one request per part of them. */
async function readKeys(kv: Kv, keysToRead: readonly string[]): Promise<KvEntry[]> {
  const entries: KvEntry[] = [];
  for (let start = 0; start < keysToRead.length; start += MAX_TXN_OPS) {
    const part = keysToRead.slice(start, start + MAX_TXN_OPS);
    entries.push(...(await kv.readMany(part.map((key) => ({ key }))).then((r) => r.flat())));
  }
  return entries;
}
