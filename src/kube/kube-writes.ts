// The CLI's writes on the Kubernetes datastore (`buoy apply`, `buoy
// delete`): read what the API server holds, plan (plan-kube-apply.ts,
// plan-kube-delete.ts: the checks are those of the etcd datastore), then one
// request per object, in order. The API server has no transaction across
// objects: a write that fails stops the rest and says how many were made; an
// object changed meanwhile (Conflict, AlreadyExists) makes the whole file
// read and planned again, the writes already made then being no change.
import { CliError } from "../cli/cli-error.js";
import type { DeleteTarget, Resource } from "../cli/manifest.js";
import { KubeApiError, type KubeHttp } from "./http.js";
import { readKubeState } from "./kube-state.js";
import type { KubeObject } from "./objects.js";
import { kubeApplyPaths, planKubeApply } from "./plan-kube-apply.js";
import { planKubeDelete } from "./plan-kube-delete.js";

const MAX_ATTEMPTS = 5;

export async function applyToKube(
  http: KubeHttp,
  leaseNamespace: string,
  resources: readonly Resource[],
  progress: (applied: number, total: number) => void,
): Promise<void> {
  await withRetries("apply", async () => {
    const [state, stored] = await Promise.all([
      readKubeState(http, leaseNamespace),
      readStored(http, kubeApplyPaths(resources)),
    ]);
    const writes = planKubeApply(state, resources, stored);
    for (const [index, write] of writes.entries()) {
      await made(write.what, index, writes.length, () =>
        write.stored
          ? http.replace(write.path, write.object)
          : http.create(write.collection, write.object),
      );
      if (writes.length > 1) progress(index + 1, writes.length);
    }
  });
}

export async function deleteFromKube(
  http: KubeHttp,
  leaseNamespace: string,
  targets: readonly DeleteTarget[],
): Promise<void> {
  await withRetries("delete", async () => {
    const deletes = planKubeDelete(await readKubeState(http, leaseNamespace), targets);
    for (const [index, target] of deletes.entries()) {
      await made(target.what, index, deletes.length, () =>
        http.delete(target.path, { resourceVersion: target.resourceVersion }),
      );
    }
  });
}

/** Lost races (Conflict, AlreadyExists) replan from a fresh read. */
class LostRace extends Error {}

async function withRetries(action: string, attempt: () => Promise<void>): Promise<void> {
  for (let tries = 0; tries < MAX_ATTEMPTS; tries++) {
    try {
      await attempt();
      return;
    } catch (error) {
      if (!(error instanceof LostRace)) throw error;
    }
  }
  throw new CliError(
    `the API server's objects kept changing under the ${action}; what it wrote before stands: run it again`,
  );
}

function doneBefore(index: number, total: number): string {
  return index === 0 ? "" : ` (${index} of ${total} done before it)`;
}

async function made(
  what: string,
  index: number,
  total: number,
  request: () => Promise<unknown>,
): Promise<void> {
  try {
    await request();
  } catch (error) {
    if (error instanceof KubeApiError) {
      if (error.reason === "Conflict" || error.reason === "AlreadyExists") throw new LostRace();
      throw new CliError(`${what}: ${error.apiMessage}${doneBefore(index, total)}`, {
        cause: error,
      });
    }
    throw new CliError(`${what}: ${(error as Error).message}${doneBefore(index, total)}`, {
      cause: error,
    });
  }
}

/** The objects at `paths` that exist, by path. */
async function readStored(
  http: KubeHttp,
  paths: readonly string[],
): Promise<Map<string, KubeObject>> {
  const objects = await Promise.all(
    paths.map(async (path) => {
      try {
        return [path, await http.get<KubeObject>(path)] as const;
      } catch (error) {
        if (error instanceof KubeApiError && error.reason === "NotFound") return undefined;
        throw error;
      }
    }),
  );
  return new Map(objects.filter((entry) => entry !== undefined));
}
