// `buoy apply` of a file larger than one etcd transaction holds
// (MAX_TXN_OPS): the whole file is checked first (duplicates, every pool
// against every other and against the blocks), then committed in parts. The
// pools go in the first part, all together, with the key every pool write
// compares (plan-apply.ts); the other resources (one compare and one put
// each) follow in parts of MAX_TXN_OPS. A part that loses a race is planned
// again from a fresh read. A file that fits is one transaction, as before.
import { MAX_TXN_OPS } from "../datastore/kv.js";
import { CliError } from "../cli/cli-error.js";
import type { Resource } from "../cli/manifest.js";
import { readDatastoreState, type Plan } from "./etcd-state.js";
import { planApply } from "./plan-apply.js";
import type { Store } from "./store.js";

const MAX_ATTEMPTS = 5;

export interface ApplyProgress {
  /** After each part: resources applied so far, of `total`. */
  (applied: number, total: number): void;
}

/** Applies `resources`; `action` names the command in messages. */
export async function applyInParts(
  store: Store,
  resources: readonly Resource[],
  action: string,
  progress: ApplyProgress = () => undefined,
): Promise<void> {
  let state = await readDatastoreState(store);
  // Every refusal (duplicates, overlaps, geometry) before anything is written.
  const whole = planApply(state, resources);
  const parts = fits(whole) ? [resources] : split(resources);
  let applied = 0;
  for (const part of parts) {
    for (let attempt = 0; ; attempt++) {
      const plan = attempt === 0 && part === resources ? whole : planApply(state, part);
      if (!fits(plan)) {
        throw new CliError(
          `${action}: its ${part.length} IP pools make a transaction of ${plan.ops.length} operations, more than etcd accepts (${MAX_TXN_OPS}); apply them in smaller files`,
        );
      }
      if (await store.kv.txn(plan.compares, plan.ops)) break;
      if (attempt + 1 >= MAX_ATTEMPTS) {
        throw new CliError(
          `the datastore kept changing while trying to ${action} (${MAX_ATTEMPTS} attempts); ` +
            `${applied} of ${resources.length} resources were applied; try again`,
        );
      }
      state = await readDatastoreState(store);
    }
    applied += part.length;
    if (parts.length > 1) progress(applied, resources.length);
  }
}

function fits(plan: Plan): boolean {
  return plan.compares.length <= MAX_TXN_OPS && plan.ops.length <= MAX_TXN_OPS;
}

/** The pools as one part, then the rest in parts of MAX_TXN_OPS. */
function split(resources: readonly Resource[]): Resource[][] {
  const pools = resources.filter((resource) => resource.kind === "IPPool");
  const rest = resources.filter((resource) => resource.kind !== "IPPool");
  const parts: Resource[][] = pools.length > 0 ? [pools] : [];
  for (let start = 0; start < rest.length; start += MAX_TXN_OPS) {
    parts.push(rest.slice(start, start + MAX_TXN_OPS));
  }
  return parts;
}
