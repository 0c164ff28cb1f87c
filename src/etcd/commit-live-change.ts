// Commits a live change (live-change.ts) as one transaction when it fits,
// else in parts (ADR 0012).
import { MAX_TXN_OPS, type Kv } from "../datastore/kv.js";
import { commitParts } from "./commit-parts.js";
import type { ChangePlan } from "./live-change.js";
import { planParts } from "./plan-parts.js";

/**
 * One transaction when the change fits; else in parts (ADR 0012): a part that
 * loses its compares undoes the earlier ones, and the caller reads again.
 */
export async function commitLiveChange(kv: Kv, change: ChangePlan): Promise<boolean> {
  const { parted, previous, containerID } = change;
  const fits = change.compares.length <= MAX_TXN_OPS && change.ops.length <= MAX_TXN_OPS;
  if (fits || !parted) return kv.txn(change.compares, change.ops);
  const ours = (value: string) => {
    try {
      return (JSON.parse(value) as { containerID?: unknown }).containerID === containerID;
    } catch {
      return false;
    }
  };
  return commitParts(kv, { plan: planParts(parted), previous: previous ?? new Map(), ours });
}
