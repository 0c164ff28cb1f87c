// A change too large for one etcd transaction (MAX_TXN_OPS compares or
// operations), split into parts (ADR 0012). Pure. The change is three lists
// of units, a unit being compares and operations that must stay in one
// transaction (a claim's put with its own key's and its block's compares):
// `writes` (claims made or taken), one `anchor` (the endpoint: what makes
// the writes count for the agent), and `removals` (claims let go). The parts
// hold the writes in the order given (callers sort them, so that two racers
// meet at their first common key and one of them stops there), the anchor in
// the part after the last write, and the removals after it. A compare that
// several units of one part share is made once.
import { MAX_TXN_OPS, TooManyOperationsError, type KvCompare, type KvOp } from "../datastore/kv.js";

export interface TxnUnit {
  compares: readonly KvCompare[];
  ops: readonly KvOp[];
}

export interface TxnPart {
  compares: KvCompare[];
  ops: KvOp[];
}

export interface PartedChange {
  writes: readonly TxnUnit[];
  anchor: TxnUnit;
  removals: readonly TxnUnit[];
}

export interface PartsPlan {
  parts: TxnPart[];
  /** The index of the part holding the anchor: the parts before it and it are undone on a refusal. */
  anchorPart: number;
}

/** Whether the whole change fits one transaction (then it is one part). */
export function fitsOneTransaction(change: PartedChange, max = MAX_TXN_OPS): boolean {
  const part = emptyPart();
  return [...change.writes, change.anchor, ...change.removals].every((unit) =>
    addIfRoom(part, unit, max),
  );
}

/**
 * The parts of `change`, each within `max` compares and `max` operations.
 * Throws TooManyOperationsError when one unit alone is larger.
 */
export function planParts(change: PartedChange, max = MAX_TXN_OPS): PartsPlan {
  const parts: TxnPart[] = [];
  const place = (unit: TxnUnit) => {
    const last = parts.at(-1);
    if (last && addIfRoom(last, unit, max)) return;
    const part = emptyPart();
    if (!addIfRoom(part, unit, max)) {
      throw new TooManyOperationsError(
        `one unit of ${unit.compares.length} compares and ${unit.ops.length} operations is more than etcd accepts (${max})`,
      );
    }
    parts.push(part);
  };
  for (const unit of change.writes) place(unit);
  place(change.anchor);
  const anchorPart = parts.length - 1;
  for (const unit of change.removals) place(unit);
  return { parts, anchorPart };
}

function emptyPart(): TxnPart {
  return { compares: [], ops: [] };
}

/** Adds `unit` to `part` when both its compares (shared ones once) and its operations still fit. */
function addIfRoom(part: TxnPart, unit: TxnUnit, max: number): boolean {
  const fresh = unit.compares.filter(
    (compare, index) =>
      !part.compares.some((held) => sameCompare(held, compare)) &&
      unit.compares.findIndex((other) => sameCompare(other, compare)) === index,
  );
  if (part.compares.length + fresh.length > max || part.ops.length + unit.ops.length > max) {
    return false;
  }
  part.compares.push(...fresh);
  part.ops.push(...unit.ops);
  return true;
}

function sameCompare(a: KvCompare, b: KvCompare): boolean {
  if (a.key !== b.key) return false;
  if ("createRevision" in a) return "createRevision" in b && a.createRevision === b.createRevision;
  return "modRevision" in b && a.modRevision === b.modRevision;
}
