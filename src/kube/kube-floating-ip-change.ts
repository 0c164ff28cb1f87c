// `buoy floatingip` on the Kubernetes datastore: read, check and plan
// (plan-annotation-change.ts), patch the pod's annotation on the
// resourceVersion the check read, then wait until the pod's node agent has
// made its claims what the annotation asks for, or has refused (a new
// FloatingIPRefused Event on the pod, whose words are the answer). A move
// patches the holder first and waits for its claim to go before it asks for
// the address on the other pod: the old node withdraws first.
import { CliError } from "../cli/cli-error.js";
import { FloatingIpError } from "../floating/annotation.js";
import { apiPaths } from "./api-paths.js";
import { KubeApiError, type KubeHttp } from "./http.js";
import { readKubeState } from "./kube-state.js";
import type { KubeObject } from "./objects.js";
import type { DatastoreState } from "../datastore/datastore-state.js";
import type { AnnotationChange, PodInState } from "./plan-annotation-change.js";

type Pods = Map<string, PodInState["object"]>;

export interface ChangeOptions {
  /** How long to wait for the node agent. */
  timeoutMs: number;
  /** Between reads while waiting. */
  pollMs?: number;
}

/** What a pod holds once its agent made the change: `ip -> internal IP` each. */
export type Held = string[];

/** One annotation change, planned from a fresh read right before its patch. */
export interface ChangeStep {
  /** The pods the plan reads (namespace/name), from the state read for it. */
  pods: (state: DatastoreState) => string[];
  plan: (state: DatastoreState, pods: Pods) => AnnotationChange;
}

/**
 * Each step in turn: read the state and its pods, plan, patch on the pod's
 * resourceVersion (a pod changed meanwhile, as the kubelet's status writes
 * change it, reads and plans that step again), wait for the agent.
 * Resolves to what the last step's pod holds.
 */
export async function changeKubeFloatingIps(
  http: KubeHttp,
  leaseNamespace: string,
  steps: readonly ChangeStep[],
  options: ChangeOptions,
): Promise<{ change: AnnotationChange; held: Held }> {
  let last: { change: AnnotationChange; held: Held } | undefined;
  for (const step of steps) last = await runStep(http, leaseNamespace, step, options);
  if (!last) throw new Error("no change planned");
  return last;
}

async function runStep(
  http: KubeHttp,
  leaseNamespace: string,
  step: ChangeStep,
  options: ChangeOptions,
): Promise<{ change: AnnotationChange; held: Held }> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const state = await readKubeState(http, leaseNamespace);
    const pods = await readPods(http, step.pods(state));
    let change: AnnotationChange;
    try {
      change = step.plan(state, pods);
    } catch (error) {
      if (error instanceof FloatingIpError) throw new CliError(error.message);
      throw error;
    }
    try {
      return { change, held: await patchAndWait(http, change, options) };
    } catch (error) {
      if (error instanceof KubeApiError && error.reason === "Conflict") continue;
      throw error;
    }
  }
  throw new CliError("the pod kept changing under the floating-IP change; try again");
}

async function readPods(http: KubeHttp, refs: readonly string[]): Promise<Pods> {
  const pods: Pods = new Map();
  for (const ref of new Set(refs)) {
    const [namespace, name] = ref.includes("/") ? ref.split("/", 2) : ["default", ref];
    try {
      pods.set(
        `${namespace}/${name}`,
        await http.get<PodInState["object"]>(apiPaths.pod(namespace ?? "", name ?? "")),
      );
    } catch (error) {
      if (!(error instanceof KubeApiError) || error.reason !== "NotFound") throw error;
    }
  }
  return pods;
}

async function patchAndWait(
  http: KubeHttp,
  change: AnnotationChange,
  options: ChangeOptions,
): Promise<Held> {
  const { namespace, pod } = change;
  const refusalsBefore = await refusals(http, change);
  await http.patch(
    apiPaths.pod(namespace, pod),
    { metadata: { resourceVersion: change.resourceVersion, annotations: change.annotations } },
    "merge",
  );
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const [held, refused] = await Promise.all([heldBy(http, change), refusals(http, change)]);
    const wanted = new Set(change.holds);
    if (held.length === wanted.size && held.every((entry) => wanted.has(entry.ip))) {
      return held.map((entry) => `${entry.ip} -> ${entry.internalIP}`);
    }
    const refusal = [...refused].find(([key]) => !refusalsBefore.has(key));
    if (refusal) throw new CliError(`pod ${namespace}/${pod}: ${refusal[1]}`);
    if (Date.now() > deadline) {
      throw new CliError(
        `pod ${namespace}/${pod} asks for ${change.holds.join(", ") || "no floating IPs"}, and its ` +
          `node's agent has not made it so within ${Math.round(options.timeoutMs / 1000)} s ` +
          `(is buoy's agent running on its node?)`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 200));
  }
}

type ClaimObject = KubeObject<{ ip?: string; containerID?: string; internalIP?: string }>;

/**
 * The claims of the change's addresses (those asked for, those held) that the
 * pod's container holds. One read per address, never a list of all claims.
 */
async function heldBy(
  http: KubeHttp,
  change: AnnotationChange,
): Promise<{ ip: string; internalIP: string }[]> {
  const ips = [...new Set([...change.holds, ...change.heldBefore])];
  const claims = await Promise.all(
    ips.map(async (ip) => {
      try {
        return await http.get<ClaimObject>(apiPaths.claim(ip));
      } catch (error) {
        if (error instanceof KubeApiError && error.reason === "NotFound") return undefined;
        throw error;
      }
    }),
  );
  return claims.flatMap((claim) =>
    claim?.spec?.containerID === change.containerID && claim.spec.ip
      ? [{ ip: claim.spec.ip, internalIP: claim.spec.internalIP ?? "" }]
      : [],
  );
}

/**
 * The FloatingIPRefused Events buoy's agent reported on this pod (by its uid;
 * an Event another writer made is not its agent's answer): name and count as
 * key, the message, control characters escaped, as value.
 */
async function refusals(http: KubeHttp, change: AnnotationChange): Promise<Map<string, string>> {
  const selector = encodeURIComponent(
    `involvedObject.kind=Pod,involvedObject.name=${change.pod},reason=FloatingIPRefused`,
  );
  const events = await http.get<{
    items: {
      metadata: { name: string };
      count?: number;
      message?: string;
      involvedObject?: { uid?: string };
      source?: { component?: string };
    }[];
  }>(`${apiPaths.events(change.namespace)}?fieldSelector=${selector}`);
  return new Map(
    events.items
      .filter(
        (event) =>
          event.involvedObject?.uid === change.podUID && event.source?.component === "buoy-agent",
      )
      .map((event) => [
        `${event.metadata.name}|${event.count ?? 1}`,
        printable(event.message ?? "refused"),
      ]),
  );
}

/** Control characters as escapes: the text is printed to an operator's terminal. */
function printable(text: string): string {
  return text.replace(
    // eslint-disable-next-line no-control-regex
    /[\u0000-\u001f\u007f-\u009f]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}
