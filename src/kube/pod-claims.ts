// Live floating-IP changes in the Kubernetes datastore (SPEC 3.3): the
// annotation of a running pod is the request. For each pod of this node that
// ADD has set up, the floating IPs its annotation asks for are compared with
// the claims its sandbox holds; new ones are claimed with the checks of ADD
// (all or none: a refusal deletes the ones just created), dropped ones
// released. A refused edit changes nothing: the previous binding keeps
// working, and the pod gets a Warning Event naming the reason (and the
// holder), once per annotation value.
//
// The pod's sandbox and addresses are its endpoint object's, as the plugin
// recorded them with the node's credentials, never Calico's annotations,
// which whoever may edit the pod may edit too (ADR 0008): an annotation that
// differs from the record changes nothing and is reported once per value.
import { createHash } from "node:crypto";
import type { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import type { FloatingIpClaim, IpPool, WorkloadEndpoint } from "../model/records.js";
import { BUOY_API_GROUP, BUOY_VERSION } from "../model/api-group.js";
import type { RawRecord } from "../datastore/agent-source.js";
import {
  canonicalFloatingIps,
  FloatingIpError,
  FLOATING_IP_EGRESS_ANNOTATION,
  FLOATING_IPS_ANNOTATION,
  parseEgress,
  parseFloatingIps,
} from "../floating/annotation.js";
import {
  checkClaimConflict,
  planBindings,
  poolNamespacesMatter,
  validateFloatingIpCount,
  validateInPools,
  validatePoolNamespaces,
} from "../floating/validate.js";
import { namespaceSelectorProblem } from "../ipam/pool.js";
import type { Logger } from "../log/logger.js";
import { claimAll, type ClaimPort } from "./claim-protocol.js";
import { customObjectsClaimPort } from "./custom-objects-claim-port.js";
import { describeKubeError, statusOf } from "./describe-kube-error.js";
import { endpointObjectName } from "./names.js";
import { claimFromObject, forgedAnnotations, isPodOf, type PodObject } from "./objects.js";

export interface PodClaimControllerOptions {
  custom: CustomObjectsApi;
  core: CoreV1Api;
  node: string;
  logger: Logger;
  floatingIpsEnabled: () => boolean;
  /** The most floating IPs one pod may hold (the conflist's `max_floating_ips_per_pod`). */
  maxFloatingIps: () => number;
  /** The caches as they are now: read at the start of every pass. */
  state: () => Pass;
}

export interface Pass {
  pods: PodObject[];
  /** This node's endpoint objects (their NATs empty). */
  endpoints: WorkloadEndpoint[];
  claims: RawRecord[];
  pools: IpPool[];
}

const RETRY_MS = 2000;

export class PodClaimController {
  #running = false;
  #again = false;
  #retry: NodeJS.Timeout | undefined;
  #stopped = false;
  /** Refusals already reported, by pod uid, annotation and message. */
  #reported = new Set<string>();
  #nodeUID: string | undefined;
  /** Pools' unparsable namespaceSelectors already logged. */
  #poolProblems = new Set<string>();
  readonly #claims: ClaimPort;

  constructor(private readonly options: PodClaimControllerOptions) {
    this.#claims = customObjectsClaimPort(options.custom);
  }

  /** Runs a pass soon; passes never overlap, and one more runs if asked for during one. */
  schedule(): void {
    this.#again = true;
    if (this.#running || this.#stopped) return;
    this.#running = true;
    void (async () => {
      while (this.#again && !this.#stopped) {
        this.#again = false;
        if (!(await this.#pass(this.options.state()))) {
          // A pod's change failed for a reason that may pass (the API away, a
          // conflict): look again shortly, not only at the next event.
          clearTimeout(this.#retry);
          this.#retry = setTimeout(() => this.schedule(), RETRY_MS);
          this.#retry.unref();
        }
      }
      this.#running = false;
    })();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#retry);
  }

  /** One pass over the node's pods; resolves to false when one failed and should be retried. */
  async #pass({ pods, endpoints, claims, pools }: Pass): Promise<boolean> {
    const values = claims.map(({ value }) => value as FloatingIpClaim);
    const reported = new Set<string>();
    const report = async (pod: PodObject, key: string, reason: string, message: string) => {
      reported.add(key);
      if (this.#reported.has(key)) return;
      const ref = `${pod.metadata.namespace}/${pod.metadata.name}`;
      this.options.logger.log("warn", "agent.refused", { pod: ref, reason: message });
      await this.#event(pod, "Warning", reason, message);
    };
    let complete = true;
    for (const pod of pods) {
      const endpoint = currentEndpoint(pod, endpoints);
      if (!endpoint) continue; // ADD has not finished (or DEL has run)
      const annotations = pod.metadata.annotations ?? {};
      const { containerID } = endpoint;
      for (const forged of forgedAnnotations(endpoint, pod)) {
        const message = `ignored ${clip(forged)}: not what buoy recorded for the pod's sandbox`;
        await report(pod, `${pod.metadata.uid}|${message}`, "PodAnnotationIgnored", message);
      }
      // A FloatingIP's claim is its controller's to move and release, not the annotation's.
      const held = values.filter(
        (claim) => claim.containerID === containerID && claim.floatingIP === undefined,
      );
      try {
        await this.#settle(pod, endpoint, held, values, pools);
        // The opt-in to egress, checked as ADD checks it (the agent leaves
        // egress off meanwhile): reported, never blocking the claims above.
        if (annotations[FLOATING_IPS_ANNOTATION] !== undefined) {
          parseEgress(annotations[FLOATING_IP_EGRESS_ANNOTATION]);
        }
      } catch (error) {
        const ref = `${pod.metadata.namespace}/${pod.metadata.name}`;
        if (!(error instanceof FloatingIpError)) {
          complete = false;
          this.options.logger.log("warn", "agent.live", {
            pod: ref,
            error: describeKubeError(error),
            retryInMs: RETRY_MS,
          });
          continue;
        }
        const key = `${pod.metadata.uid}|${annotations[FLOATING_IPS_ANNOTATION]}|${error.message}`;
        await report(pod, key, "FloatingIPRefused", error.message);
      }
    }
    this.#reported = reported;
    return complete;
  }

  async #settle(
    pod: PodObject,
    endpoint: WorkloadEndpoint,
    held: readonly FloatingIpClaim[],
    all: readonly FloatingIpClaim[],
    pools: readonly IpPool[],
  ): Promise<void> {
    const annotation = pod.metadata.annotations?.[FLOATING_IPS_ANNOTATION];
    let wanted: string[] = [];
    if (annotation !== undefined) {
      if (!this.options.floatingIpsEnabled()) {
        throw new FloatingIpError("requested feature is not enabled: floating_ips");
      }
      wanted = canonicalFloatingIps(parseFloatingIps(annotation));
      validateFloatingIpCount(wanted, this.options.maxFloatingIps());
    }
    const heldIps = new Set(held.map((claim) => claim.ip));
    const adding = wanted.filter((ip) => !heldIps.has(ip));
    const dropping = held.filter((claim) => !wanted.includes(claim.ip));
    if (adding.length === 0 && dropping.length === 0) return;
    validateInPools(adding, pools);
    await this.#validateNamespace(pod, adding, pools);
    const { containerID } = endpoint;
    const podIps = endpoint.ipNetworks.map((net) => net.split("/")[0] ?? "");
    const bindings = planBindings(adding, podIps);
    // What the cache already shows as held by another pod is refused without a write.
    for (const ip of adding) {
      checkClaimConflict(
        ip,
        { containerID, namespace: pod.metadata.namespace ?? "default" },
        all.find((claim) => claim.ip === ip),
        undefined,
      );
    }
    // The cache may lag: a DEL may have torn this sandbox down already (it
    // deletes the endpoint object first). Claim only for a sandbox whose
    // endpoint the API server has now, of a pod that is not being deleted.
    if (adding.length > 0 && !(await this.#stillSetUp(pod, endpoint))) return;
    const network = endpoint.network || held[0]?.network;
    const nodeUID = await this.#ownNodeUID();
    const claims = bindings.map(({ externalIP, internalIP }): FloatingIpClaim => ({
      ip: externalIP,
      namespace: pod.metadata.namespace ?? "default",
      pod: pod.metadata.name,
      containerID,
      node: this.options.node,
      internalIP,
      createdAt: "",
      endpoint: endpoint.endpoint || "eth0",
      ...(network ? { network } : {}),
      ...(pod.metadata.uid ? { podUID: pod.metadata.uid } : {}),
    }));
    await claimAll(this.#claims, claims, {
      nodeUID,
      pools,
      attempts: 5,
      exhausted: (ip) => new Error(`claiming floating IP ${ip} kept conflicting`),
      checkEach: true,
      // Not all or nothing after all: say so; the next pass releases them
      // (the annotation does not ask for them).
      notUndone: (left) =>
        this.options.logger.log("warn", "agent.live", {
          pod: `${pod.metadata.namespace}/${pod.metadata.name}`,
          notUndone: left,
        }),
    });
    for (const claim of dropping) {
      const object = await this.#claims.getClaim(claim.ip);
      if (object && claimFromObject(object).containerID === containerID) {
        await this.#claims.deleteClaim(claim.ip, object.metadata.uid ?? "");
      }
    }
    const ref = `${pod.metadata.namespace}/${pod.metadata.name}`;
    const now = wanted.length > 0 ? wanted.join(", ") : "none";
    this.options.logger.log("info", "agent.live", {
      pod: ref,
      claimed: adding,
      released: dropping.map((claim) => claim.ip),
    });
    await this.#event(pod, "Normal", "FloatingIPsChanged", `floating IPs of the pod: ${now}`);
  }

  /**
   * The pools of `adding` must select the pod's namespace (namespaceSelector,
   * as ADD checks it); its labels are read only when one of them asks. A pool
   * whose selector does not parse selects none, and is logged once.
   */
  async #validateNamespace(
    pod: PodObject,
    adding: readonly string[],
    pools: readonly IpPool[],
  ): Promise<void> {
    for (const problem of pools.map(namespaceSelectorProblem)) {
      if (!problem || this.#poolProblems.has(problem)) continue;
      this.#poolProblems.add(problem);
      this.options.logger.log("warn", "agent.pool", { problem });
    }
    if (!poolNamespacesMatter(adding, pools)) return;
    const namespace = pod.metadata.namespace ?? "default";
    let labels: Record<string, string> = {};
    try {
      labels = (await this.options.core.readNamespace({ name: namespace })).metadata?.labels ?? {};
    } catch (error) {
      if (statusOf(error) !== 404) throw error;
    }
    validatePoolNamespaces(adding, pools, namespace, labels);
  }

  /**
   * The pod, read from the API server (not the cache), is the same pod and not
   * going, and its sandbox's endpoint object still exists (DEL deletes it first).
   */
  async #stillSetUp(pod: PodObject, endpoint: WorkloadEndpoint): Promise<boolean> {
    let current: PodObject;
    try {
      current = (await this.options.core.readNamespacedPod({
        namespace: pod.metadata.namespace ?? "default",
        name: pod.metadata.name,
      })) as unknown as PodObject;
      await this.options.custom.getClusterCustomObject({
        group: BUOY_API_GROUP,
        version: BUOY_VERSION,
        plural: "workloadendpoints",
        name: await endpointObjectName(endpoint.node, endpoint.containerID, endpoint.endpoint),
      });
    } catch (error) {
      if (statusOf(error) === 404) return false;
      throw error;
    }
    return (
      current.metadata.uid === pod.metadata.uid &&
      isPodOf(endpoint, current) &&
      !current.metadata.deletionTimestamp
    );
  }

  /** This node's Node uid: claims are owned by it (ADR 0006). */
  async #ownNodeUID(): Promise<string | undefined> {
    if (this.#nodeUID) return this.#nodeUID;
    try {
      const node = await this.options.core.readNode({ name: this.options.node });
      this.#nodeUID = node.metadata?.uid;
    } catch (error) {
      if (statusOf(error) !== 404) throw error;
    }
    return this.#nodeUID;
  }

  /**
   * One Event per pod and message, named by them: the same one again (after
   * an agent restart, which forgets what it reported) counts up on it, as
   * Kubernetes' own event recorder does, instead of adding another.
   */
  async #event(pod: PodObject, type: string, reason: string, message: string): Promise<void> {
    const namespace = pod.metadata.namespace ?? "default";
    const now = new Date();
    const digest = createHash("sha256")
      .update(`${pod.metadata.uid ?? ""}\n${type}\n${reason}\n${message}`)
      .digest("hex")
      .slice(0, 16);
    const name = `${pod.metadata.name.slice(0, 200)}.buoy-${digest}`;
    try {
      await this.options.core.createNamespacedEvent({
        namespace,
        body: {
          metadata: { name, namespace },
          involvedObject: {
            apiVersion: "v1",
            kind: "Pod",
            namespace,
            name: pod.metadata.name,
            ...(pod.metadata.uid ? { uid: pod.metadata.uid } : {}),
          },
          reason,
          message,
          type,
          source: { component: "buoy-agent", host: this.options.node },
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      });
    } catch (error) {
      if (statusOf(error) === 409) {
        await this.#countAgain(namespace, name, now).catch((again: unknown) =>
          this.options.logger.log("warn", "agent.event", {
            reason,
            error: describeKubeError(again),
          }),
        );
        return;
      }
      this.options.logger.log("warn", "agent.event", { reason, error: describeKubeError(error) });
    }
  }

  async #countAgain(namespace: string, name: string, now: Date): Promise<void> {
    const event = await this.options.core.readNamespacedEvent({ namespace, name });
    event.count = (event.count ?? 1) + 1;
    event.lastTimestamp = now;
    await this.options.core.replaceNamespacedEvent({ namespace, name, body: event });
  }
}

/**
 * The pod's sandbox: its newest endpoint object (a sandbox replaced before
 * its DEL ran leaves an older one for a while); undefined before ADD has
 * recorded one.
 */
export function currentEndpoint(
  pod: PodObject,
  endpoints: readonly WorkloadEndpoint[],
): WorkloadEndpoint | undefined {
  return endpoints
    .filter((endpoint) => isPodOf(endpoint, pod))
    .sort(
      (a, b) =>
        b.createdAt.localeCompare(a.createdAt) || a.containerID.localeCompare(b.containerID),
    )[0];
}

/** An echoed value cut short: tenants write these. */
function clip(text: string): string {
  return text.length > 256 ? `${text.slice(0, 256)}…` : text;
}
