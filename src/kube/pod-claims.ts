// Live floating-IP changes in the Kubernetes datastore (SPEC 3.3): the
// annotation of a running pod is the request. For each pod of this node that
// ADD has set up, the floating IPs its annotation asks for are compared with
// the claims its sandbox holds; new ones are claimed with the checks of ADD
// (all or none: a refusal deletes the ones just created), dropped ones
// released. A refused edit changes nothing: the previous binding keeps
// working, and the pod gets a Warning Event naming the reason (and the
// holder), once per annotation value.
import { createHash } from "node:crypto";
import type { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import type { FloatingIpClaim, IpPool } from "../model/records.js";
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
  findPool,
  planBindings,
  validateFloatingIpCount,
  validateInPools,
} from "../floating/validate.js";
import { blockCidrFor } from "../ipam/pool.js";
import type { Logger } from "../log/logger.js";
import { CONTAINER_ID_ANNOTATION, POD_IPS_ANNOTATION, POD_IP_ANNOTATION } from "./labels.js";
import { claimAll, type ClaimPort } from "./claim-protocol.js";
import { customObjectsClaimPort } from "./custom-objects-claim-port.js";
import { describeKubeError, statusOf } from "./describe-kube-error.js";
import { claimFromObject, type PodObject } from "./objects.js";

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
  async #pass({ pods, claims, pools }: Pass): Promise<boolean> {
    const values = claims.map(({ value }) => value as FloatingIpClaim);
    const reported = new Set<string>();
    let complete = true;
    for (const pod of pods) {
      const annotations = pod.metadata.annotations ?? {};
      const containerID = annotations[CONTAINER_ID_ANNOTATION];
      if (!containerID) continue; // ADD has not finished (or DEL has run)
      const held = values.filter((claim) => claim.containerID === containerID);
      try {
        await this.#settle(pod, containerID, held, values, pools);
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
        reported.add(key);
        if (!this.#reported.has(key)) {
          this.options.logger.log("warn", "agent.refused", { pod: ref, reason: error.message });
          await this.#event(pod, "Warning", "FloatingIPRefused", error.message);
        }
      }
    }
    this.#reported = reported;
    return complete;
  }

  async #settle(
    pod: PodObject,
    containerID: string,
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
    const podIps = podAddresses(pod);
    const bindings = planBindings(adding, podIps);
    // What the cache already shows as held by another pod is refused without a write.
    for (const ip of adding) {
      checkClaimConflict(
        ip,
        containerID,
        all.find((claim) => claim.ip === ip),
        undefined,
      );
    }
    // The cache may lag: a DEL may have torn this sandbox down already (it
    // clears the annotations first). Claim only for the sandbox the API
    // server names now, of a pod that is not being deleted.
    if (adding.length > 0 && !(await this.#stillSetUp(pod, containerID))) return;
    const template = held[0];
    const network = template?.network ?? (await this.#networkOf(podIps[0], pools));
    const nodeUID = await this.#ownNodeUID();
    const claims = bindings.map(({ externalIP, internalIP }): FloatingIpClaim => ({
      ip: externalIP,
      namespace: pod.metadata.namespace ?? "default",
      pod: pod.metadata.name,
      containerID,
      node: this.options.node,
      internalIP,
      createdAt: "",
      endpoint: template?.endpoint ?? "eth0",
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

  /** The pod, read from the API server (not the cache), still names this sandbox and is not going. */
  async #stillSetUp(pod: PodObject, containerID: string): Promise<boolean> {
    let current: PodObject;
    try {
      current = (await this.options.core.readNamespacedPod({
        namespace: pod.metadata.namespace ?? "default",
        name: pod.metadata.name,
      })) as unknown as PodObject;
    } catch (error) {
      if (statusOf(error) === 404) return false;
      throw error;
    }
    return (
      current.metadata.uid === pod.metadata.uid &&
      current.metadata.annotations?.[CONTAINER_ID_ANNOTATION] === containerID &&
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

  /** The CNI network the pod's address was given in, from its IPAM allocation. */
  async #networkOf(ip: string | undefined, pools: readonly IpPool[]): Promise<string | undefined> {
    const pool = ip === undefined ? undefined : findPool(ip, pools);
    const cidr = pool && ip !== undefined ? blockCidrFor(pool, ip) : undefined;
    if (!cidr || ip === undefined) return undefined;
    return (await this.#claims.getBlock(cidr))?.allocations[ip]?.network;
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

function podAddresses(pod: PodObject): string[] {
  const annotations = pod.metadata.annotations ?? {};
  return (annotations[POD_IPS_ANNOTATION] ?? annotations[POD_IP_ANNOTATION] ?? "")
    .split(",")
    .map((net) => net.trim().split("/")[0] ?? "")
    .filter((ip) => ip !== "");
}
