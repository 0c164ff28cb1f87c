// The FloatingIP controller (issue 15): for each namespaced FloatingIP, one
// Ready pod among those it selects holds its address, through the same
// FloatingIPClaim an annotation's pod would hold (so the two never hold one
// address at once), and the agents program it as any claim: the old node
// withdraws first (ADR 0004), the new node waits for its acknowledgement to
// go. It runs as its own Deployment and ServiceAccount, one replica acting at
// a time (leader-lease.ts), never in the agents: a node's token must not
// decide where another node's traffic goes.
//
// Work per event is bounded by what the event touches: a pod or endpoint
// event re-plans the FloatingIPs of its namespace, a claim event its
// FloatingIP, a node's Lease lapsing those held on it.
import { randomUUID } from "node:crypto";
import type { CoreV1Api, CustomObjectsApi, KubeConfig } from "@kubernetes/client-node";
import type { Candidate } from "../failover/choose-holder.js";
import { chooseHolder, currentCandidate, lossReason } from "../failover/choose-holder.js";
import { FloatingIpError } from "../floating/annotation.js";
import {
  poolNamespacesMatter,
  validateInPools,
  validatePoolNamespaces,
} from "../floating/validate.js";
import {
  floatingIpKey,
  FLOATING_IP_LABEL,
  parseFloatingIpSpec,
  type FloatingIpStatusShape,
} from "../failover/floating-ip.js";
import { planFloatingIpStatus, type Assignment } from "../failover/floating-ip-status.js";
import { FailoverTimer } from "../failover/failover-timer.js";
import { LeaseClock } from "../failover/lease-clock.js";
import {
  ALLOCATION_TRIES,
  inPool,
  poolAddressCandidates,
  PoolAttempts,
  poolRepresentative,
  poolToAllocateFrom,
} from "../failover/pool-address.js";
import { poolRestrictsNamespaces } from "../ipam/pool.js";
import type { Logger } from "../log/logger.js";
import { BUOY_API_GROUP, BUOY_API_VERSION, BUOY_VERSION } from "../model/api-group.js";
import type { FloatingIpClaim, IpPool } from "../model/records.js";
import { claimAll, type ClaimPort } from "./claim-protocol.js";
import { customObjectsClaimPort } from "./custom-objects-claim-port.js";
import { describeKubeError, statusOf } from "./describe-kube-error.js";
import { FailoverCaches, type FloatingIpObject } from "./failover-caches.js";
import type { ControllerMetrics } from "../controller/controller-metrics.js";
import { CONTAINER_LABEL } from "./labels.js";
import { ipObjectName } from "./names.js";
import { claimToObject, containerLabel, type KubeObject } from "./objects.js";

export interface FloatingIpControllerOptions {
  kubeConfig: KubeConfig;
  core: CoreV1Api;
  custom: CustomObjectsApi;
  /** Where the nodes' status Leases live. */
  namespace: string;
  /** How long past the last Lease change heard time still runs (ms): over a node's renewal period. */
  clockGraceMs: number;
  /** A node Lease's duration when it states none (s). */
  nodeLeaseSeconds: number;
  logger: Logger;
  metrics: ControllerMetrics;
  /** Monotonic milliseconds. */
  now: () => number;
}

const RETRY_MS = 1000;
/** A refused address is tried again after this, doubling up to the most. */
const REFUSED_RETRY_MS = 2000;
const REFUSED_RETRY_MAX_MS = 30_000;
/** A full pool is tried again after this (one timer per attempt, however many events). */
const POOL_RETRY_MS = 5000;
const TICK_MS = 100;

export class FloatingIpController {
  readonly #caches: FailoverCaches;
  readonly #clock: LeaseClock;
  readonly #claims: ClaimPort;
  readonly #dirty = new Set<string>();
  #running = false;
  #synced = false;
  /** Each node's liveness as last acted on. */
  readonly #nodeLive = new Map<string, boolean>();
  /** Each running failover's start, for its time. */
  readonly #timer = new FailoverTimer();
  /** FloatingIPs whose address was refused: not tried again before `until` for that generation. */
  /** The pool address each FloatingIP found taken when it came to claim it: not picked again. */
  readonly #passedOver = new Map<string, string>();
  readonly #poolAttempts = new PoolAttempts(POOL_RETRY_MS);
  readonly #refused = new Map<
    string,
    { generation: number | undefined; until: number; delay: number }
  >();

  constructor(private readonly options: FloatingIpControllerOptions) {
    this.#clock = new LeaseClock(options.clockGraceMs);
    this.#caches = new FailoverCaches(options);
    this.#claims = customObjectsClaimPort(options.custom);
  }

  /** Watches and reconciles until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const ticker = setInterval(() => this.#tick(), TICK_MS);
    signal.addEventListener("abort", () => clearInterval(ticker), { once: true });
    await this.#caches.run(signal, {
      synced: (up) => {
        this.#synced = up;
        if (up) for (const key of this.#caches.floatingIpKeys()) this.#schedule(key);
        if (up) this.#collectOrphans();
      },
      leasesStarted: () => this.#clock.started(this.options.now()),
      lease: (name, version) =>
        version === undefined
          ? this.#clock.forget(name)
          : this.#clock.seen(name, version, this.options.now()),
      touched: (keys) => {
        for (const key of keys) this.#schedule(key);
      },
    });
  }

  /** Nodes whose liveness changed: the FloatingIPs held on them, and those without a holder. */
  #tick(): void {
    if (!this.#synced) return;
    const now = this.options.now();
    for (const node of this.#caches.nodesWithLeases()) {
      const live = this.#clock.live(`buoy-node.${node}`, this.#nodeLeaseMs(node), now);
      if (this.#nodeLive.get(node) === live) continue;
      this.#nodeLive.set(node, live);
      for (const key of this.#caches.keysHeldOn(node)) this.#schedule(key);
      for (const key of this.#caches.unassignedKeys()) this.#schedule(key);
    }
  }

  #nodeLeaseMs(node: string): number {
    return (this.#caches.nodeLeaseSeconds(node) ?? this.options.nodeLeaseSeconds) * 1000;
  }

  #live(node: string): boolean {
    return this.#clock.live(`buoy-node.${node}`, this.#nodeLeaseMs(node), this.options.now());
  }

  #schedule(key: string): void {
    this.#dirty.add(key);
    if (this.#running || !this.#synced) return;
    this.#running = true;
    void (async () => {
      while (this.#dirty.size > 0 && this.#synced) {
        const [next] = this.#dirty;
        if (next === undefined) break;
        this.#dirty.delete(next);
        try {
          await this.#reconcile(next);
        } catch (error) {
          this.options.logger.log("warn", "controller.error", {
            floatingIP: next,
            error: describeKubeError(error),
            retryInMs: RETRY_MS,
          });
          setTimeout(() => this.#schedule(next), RETRY_MS).unref();
        }
      }
      this.#running = false;
    })();
  }

  /** One FloatingIP: choose its holder, make the claim say so, write its status. */
  async #reconcile(key: string): Promise<void> {
    const fip = this.#caches.floatingIp(key);
    // Claims of a FloatingIP deleted (or made again) meanwhile go.
    for (const orphan of this.#caches.claimsNamed(key)) await this.#deleteClaim(orphan, key);
    if (!fip) {
      this.#timer.forget(key);
      this.#refused.delete(key);
      this.#passedOver.delete(key);
      this.#poolAttempts.forget(key);
      return;
    }
    const namespace = fip.metadata.namespace ?? "default";
    const spec = parseFloatingIpSpec(fip.spec);
    let pool: IpPool | undefined;
    let poolProblem: string | undefined;
    if (!("problem" in spec) && spec.pool !== undefined) {
      try {
        pool = await this.#poolFor(spec.pool, namespace);
      } catch (error) {
        if (!(error instanceof FloatingIpError)) throw error;
        poolProblem = error.message;
      }
    }
    let address = "problem" in spec ? undefined : (spec.address ?? this.#poolAddress(fip, pool));
    // One claim: of its address now (an edited address releases the old one).
    let claim: KubeObject | undefined;
    for (const held of this.#caches.claimsOf(fip.metadata.uid ?? "")) {
      if (held.spec?.ip === address && !claim) claim = held;
      else await this.#deleteClaim(held, key);
    }
    const refuse = async (reason: string, message: string, address?: string) => {
      if (claim) await this.#deleteClaim(claim, key);
      await this.#writeStatus(fip, address, { holder: undefined, reason, message }, undefined);
    };
    if ("problem" in spec) return refuse("InvalidSpec", spec.problem);
    if (poolProblem !== undefined) return refuse("PoolRefused", poolProblem);
    try {
      if (address !== undefined) await this.#checkAddress(address, namespace);
    } catch (error) {
      if (error instanceof FloatingIpError) return refuse("AddressRefused", error.message, address);
      throw error;
    }
    const family = address ?? (pool && poolRepresentative(pool)) ?? "";
    const candidates = this.#caches.candidates(family, spec.podSelector, namespace, (node) =>
      this.#live(node),
    );
    const held = claim ? claimFromSpec(claim) : undefined;
    const choice = chooseHolder(candidates, held);
    const was = held && currentCandidate(candidates, held);
    const lost = held ? lossReason(was) : undefined;
    // A loss starts the failover clock; one of a later holder (the claim
    // moved since) starts it again.
    if (lost) this.#timer.lost(key, lost, claim?.metadata.generation ?? 0, this.options.now());
    if (!choice.holder) {
      const message =
        choice.why === "NoPodSelected"
          ? "no pod with an address of its family matches spec.podSelector"
          : "no pod it selects is Ready";
      if (claim) await this.#deleteClaim(claim, key);
      // A pool's address is chosen now, so that it is known before a pod holds it.
      if (pool && address === undefined) {
        address = await this.#allocate(
          key,
          fip,
          pool,
          async (ip) => !(await this.#claims.getClaim(ip)),
        );
        if (address === undefined) return this.#poolExhausted(fip, pool);
      }
      return this.#writeStatus(fip, address, { holder: undefined, reason: choice.why, message });
    }
    const holder = choice.holder;
    let object = claim;
    if (!claim) {
      // Refused a moment ago, for the same spec: try again only after the
      // backoff (the holder elsewhere is not watched; its release is found so).
      const refused = this.#refused.get(key);
      const now = this.options.now();
      if (refused && refused.generation === fip.metadata.generation && now < refused.until) return;
      try {
        if (pool) {
          const from = pool;
          const claimed = new Map<string, KubeObject>();
          const attempt = async (ip: string) => {
            try {
              const made = await this.#createClaim(fip, ip, holder, spec.egress);
              // A claim the holder's container already has (its annotation's,
              // another FloatingIP's) passes the create's check, and is not ours.
              if (made.metadata.labels?.[FLOATING_IP_LABEL] !== fip.metadata.uid) return false;
              claimed.set(ip, made);
              return true;
            } catch (error) {
              if (!(error instanceof FloatingIpError)) throw error;
              return false;
            }
          };
          if (address === undefined || !(await attempt(address))) {
            if (address !== undefined) this.#passedOver.set(key, address);
            address = await this.#allocate(key, fip, from, attempt);
          }
          object = address === undefined ? undefined : claimed.get(address);
          if (address === undefined || !object) {
            throw new FloatingIpError(
              `no free address in IP pool ${from.name} (${ALLOCATION_TRIES} tried)`,
            );
          }
        } else if (address !== undefined) {
          object = await this.#createClaim(fip, address, holder, spec.egress);
        }
      } catch (error) {
        if (error instanceof FloatingIpError) {
          const delay = Math.min(
            refused && refused.generation === fip.metadata.generation
              ? refused.delay * 2
              : REFUSED_RETRY_MS,
            REFUSED_RETRY_MAX_MS,
          );
          this.#refused.set(key, {
            generation: fip.metadata.generation,
            until: now + delay,
            delay,
          });
          setTimeout(() => this.#schedule(key), delay).unref();
          return refuse(pool ? "PoolExhausted" : "AddressInUse", error.message, address);
        }
        throw error;
      }
      this.#refused.delete(key);
      this.#event(
        fip,
        "Normal",
        "Assigned",
        `${address} held by pod ${holder.pod} on node ${holder.node}`,
      );
      this.#podEvent(
        holder,
        "Normal",
        "FloatingIPAssigned",
        `holds ${address} (FloatingIP ${fip.metadata.name})`,
      );
      this.options.logger.log("info", "controller.assigned", {
        floatingIP: key,
        address,
        pod: holder.pod,
        node: holder.node,
      });
    } else if (!choice.kept) {
      object = await this.#moveClaim(claim, fip, holder, spec.egress);
      const from = was ?? (held && { pod: held.pod, node: held.node });
      const reason = lost ?? this.#timer.reason(key) ?? "Deleted";
      this.options.metrics.failovers.inc({ reason });
      const message = `${address} moved from pod ${from?.pod ?? "?"} (node ${from?.node ?? "?"}) to pod ${holder.pod} (node ${holder.node}): ${reason}`;
      this.#event(fip, "Normal", "HolderChanged", message);
      if (was) this.#podEvent(was, "Normal", "FloatingIPReleased", message);
      this.#podEvent(holder, "Normal", "FloatingIPAssigned", message);
      this.options.logger.log("info", "controller.moved", {
        floatingIP: key,
        address,
        from: from?.pod,
        to: holder.pod,
        node: holder.node,
        reason,
      });
    } else if (claim && (claim.spec?.egress === true) !== spec.egress) {
      // The same holder, egress turned on or off: the claim says so, in place.
      object = await this.#moveClaim(claim, fip, holder, spec.egress);
    }
    const since =
      choice.kept && typeof fip.status?.since === "string"
        ? fip.status.since
        : new Date().toISOString();
    const report = object && claimReport(object);
    if (
      report?.programmed &&
      report.node === holder.node &&
      report.observedGeneration === report.generation
    ) {
      const ended = this.#timer.programmed(key, report.generation ?? 0, this.options.now());
      if (ended)
        this.options.metrics.failoverSeconds.observe({ reason: ended.reason }, ended.seconds);
    }
    // The holder recovered before anyone took it over: no failover to time.
    if (choice.kept && !lost) this.#timer.recovered(key, object?.metadata.generation ?? 0);
    await this.#writeStatus(fip, address, { holder, since }, report);
  }

  /** The pool `name`, checked as one the namespace may use (its labels read only if they matter). */
  async #poolFor(name: string, namespace: string): Promise<IpPool> {
    const pools = this.#caches.pools();
    const pool = pools.find((candidate) => candidate.name === name);
    const labels =
      pool && poolRestrictsNamespaces(pool) ? await this.#namespaceLabels(namespace) : {};
    return poolToAllocateFrom(name, pools, namespace, labels);
  }

  /**
   * The address of a FloatingIP with spec.pool, as far as known without a
   * request: its claim's, else its status's (unless found taken).
   */
  #poolAddress(fip: FloatingIpObject, pool: IpPool | undefined): string | undefined {
    if (!pool) return undefined;
    const held = this.#caches
      .claimsOf(fip.metadata.uid ?? "")
      .map((claim) => String(claim.spec?.ip ?? ""))
      .find((ip) => inPool(ip, pool));
    if (held !== undefined) return held;
    const key = floatingIpKey(fip.metadata.namespace ?? "default", fip.metadata.name);
    const named = (fip.status as FloatingIpStatusShape | undefined)?.address;
    return named !== undefined && named !== this.#passedOver.get(key) && inPool(named, pool)
      ? named
      : undefined;
  }

  /** In a pool the namespace may use (as at ADD). */
  async #checkAddress(address: string, namespace: string): Promise<void> {
    validateInPools([address], this.#caches.pools());
    if (poolNamespacesMatter([address], this.#caches.pools())) {
      const labels = await this.#namespaceLabels(namespace);
      validatePoolNamespaces([address], this.#caches.pools(), namespace, labels);
    }
  }

  /**
   * The first of the pool's candidates for this FloatingIP (its uid orders
   * them) that no other FloatingIP names and `take` accepts (a claim absent,
   * or created for the holder): at most ALLOCATION_TRIES requests.
   */
  async #allocate(
    key: string,
    fip: FloatingIpObject,
    pool: IpPool,
    take: (address: string) => Promise<boolean>,
  ): Promise<string | undefined> {
    // A full pool is tried again only after its wait, each time further round.
    const attempt = this.#poolAttempts.next(key, this.options.now());
    if (attempt === undefined) return undefined;
    const named = this.#caches.addressesNamed(key);
    const passedOver = this.#passedOver.get(key);
    const skip = (ip: string) => ip === passedOver || named.has(ip);
    const seed = fip.metadata.uid ?? key;
    for (const candidate of poolAddressCandidates(pool, seed, ALLOCATION_TRIES, skip, attempt)) {
      if (!(await take(candidate))) continue;
      this.#passedOver.delete(key);
      this.#poolAttempts.forget(key);
      this.options.logger.log("info", "controller.allocated", {
        floatingIP: key,
        address: candidate,
        pool: pool.name,
      });
      return candidate;
    }
    if (this.#poolAttempts.wasFull(key, this.options.now())) {
      setTimeout(() => this.#schedule(key), POOL_RETRY_MS).unref();
    }
    return undefined;
  }

  /** No free address found in the pool: said in the status, tried again later. */
  async #poolExhausted(fip: FloatingIpObject, pool: IpPool): Promise<void> {
    await this.#writeStatus(fip, undefined, {
      holder: undefined,
      reason: "PoolExhausted",
      message: `no free address in IP pool ${pool.name} (${ALLOCATION_TRIES} tried)`,
    });
  }

  async #createClaim(
    fip: FloatingIpObject,
    address: string,
    holder: Candidate,
    egress: boolean,
  ): Promise<KubeObject> {
    const key = floatingIpKey(fip.metadata.namespace ?? "default", fip.metadata.name);
    const port: ClaimPort = {
      ...this.#claims,
      createClaim: (object) =>
        this.#claims.createClaim(decorate(object, key, fip.metadata.uid ?? "")),
    };
    await claimAll(port, [claimFor(address, holder, egress)], {
      nodeUID: undefined,
      pools: this.#caches.pools(),
      attempts: 5,
      exhausted: (ip) => new Error(`the claim of ${ip} kept disappearing`),
      checkEach: true,
    });
    const created = await this.#claims.getClaim(address);
    if (!created) throw new Error(`the claim of ${address} is gone right after its creation`);
    return created;
  }

  /** Points the claim at `holder`, in place (same uid: a DEL of the old pod leaves it alone). */
  async #moveClaim(
    claim: KubeObject,
    fip: FloatingIpObject,
    holder: Candidate,
    egress: boolean,
  ): Promise<KubeObject> {
    const key = floatingIpKey(fip.metadata.namespace ?? "default", fip.metadata.name);
    const address = String(claim.spec?.ip ?? "");
    const next = decorate(
      claimToObject(claimFor(address, holder, egress), undefined),
      key,
      fip.metadata.uid ?? "",
    );
    return (await this.options.custom.replaceClusterCustomObject({
      group: BUOY_API_GROUP,
      version: BUOY_VERSION,
      plural: "floatingipclaims",
      name: claim.metadata.name,
      body: {
        ...next,
        metadata: { ...next.metadata, resourceVersion: claim.metadata.resourceVersion ?? "" },
      },
    })) as KubeObject;
  }

  async #deleteClaim(claim: KubeObject, key: string): Promise<void> {
    // On its uid: a claim made again for another holder meanwhile stays.
    await this.#claims.deleteClaim(String(claim.spec?.ip ?? ""), claim.metadata.uid ?? "");
    this.options.logger.log("info", "controller.released", {
      floatingIP: key,
      address: claim.spec?.ip,
    });
  }

  /** Claims labelled for a FloatingIP that no longer exists (deleted while no controller ran). */
  #collectOrphans(): void {
    for (const key of this.#caches.orphanClaimKeys()) this.#schedule(key);
  }

  async #namespaceLabels(namespace: string): Promise<Record<string, string>> {
    const object = await this.options.core.readNamespace({ name: namespace });
    return object.metadata?.labels ?? {};
  }

  async #writeStatus(
    fip: FloatingIpObject,
    address: string | undefined,
    assignment: Assignment,
    report?: ReturnType<typeof claimReport>,
  ): Promise<void> {
    const previous = (fip.status ?? {}) as FloatingIpStatusShape;
    const now = new Date().toISOString();
    const next = planFloatingIpStatus(
      previous,
      fip.metadata.generation ?? 0,
      address,
      assignment,
      report,
      now,
    );
    if (JSON.stringify(next) === JSON.stringify(previous)) return;
    const before = previous.conditions?.find((c) => c.type === "Assigned");
    const after = next.conditions?.find((c) => c.type === "Assigned");
    if (
      after?.status === "False" &&
      (before?.reason !== after.reason || before.message !== after.message)
    ) {
      this.#event(fip, "Warning", after.reason, after.message);
      this.options.logger.log("warn", "controller.refused", {
        floatingIP: floatingIpKey(fip.metadata.namespace ?? "default", fip.metadata.name),
        reason: after.reason,
        message: after.message,
      });
    }
    try {
      await this.options.custom.replaceNamespacedCustomObjectStatus({
        group: BUOY_API_GROUP,
        version: BUOY_VERSION,
        namespace: fip.metadata.namespace ?? "default",
        plural: "floatingips",
        name: fip.metadata.name,
        body: { ...fip, status: next },
      });
    } catch (error) {
      // Changed meanwhile: its event brings it back here.
      if (statusOf(error) !== 409 && statusOf(error) !== 404) throw error;
    }
  }

  #event(fip: FloatingIpObject, type: string, reason: string, message: string): void {
    this.#writeEvent(
      fip.metadata.namespace ?? "default",
      {
        apiVersion: BUOY_API_VERSION,
        kind: "FloatingIP",
        name: fip.metadata.name,
        uid: fip.metadata.uid,
      },
      type,
      reason,
      message,
    );
  }

  #podEvent(pod: Candidate, type: string, reason: string, message: string): void {
    this.#writeEvent(
      pod.namespace,
      { apiVersion: "v1", kind: "Pod", name: pod.pod, uid: pod.podUID },
      type,
      reason,
      message,
    );
  }

  #writeEvent(
    namespace: string,
    involved: { apiVersion: string; kind: string; name: string; uid: string | undefined },
    type: string,
    reason: string,
    message: string,
  ): void {
    const now = new Date();
    void this.options.core
      .createNamespacedEvent({
        namespace,
        body: {
          metadata: {
            name: `${involved.name.slice(0, 200)}.${randomUUID().slice(0, 13)}`,
            namespace,
          },
          involvedObject: {
            apiVersion: involved.apiVersion,
            kind: involved.kind,
            name: involved.name,
            namespace,
            ...(involved.uid ? { uid: involved.uid } : {}),
          },
          reason,
          message,
          type,
          source: { component: "buoy-controller" },
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      })
      .catch((error: unknown) =>
        this.options.logger.log("warn", "controller.error", {
          phase: "event",
          reason,
          error: describeKubeError(error),
        }),
      );
  }
}

/** The claim a holder makes: its sandbox and address, as its endpoint object has them. */
function claimFor(address: string, holder: Candidate, egress: boolean): FloatingIpClaim {
  return {
    ...(egress ? { egress: true } : {}),
    ip: address,
    namespace: holder.namespace,
    pod: holder.pod,
    podUID: holder.podUID,
    containerID: holder.containerID,
    node: holder.node,
    internalIP: holder.internalIP,
    endpoint: holder.endpoint,
    ...(holder.network !== undefined ? { network: holder.network } : {}),
    createdAt: "",
  };
}

/** A claim object marked as the FloatingIP's: its key in the spec, its uid as a label. */
function decorate(object: KubeObject, key: string, uid: string): KubeObject {
  const labels: Record<string, string> = { ...object.metadata.labels, [FLOATING_IP_LABEL]: uid };
  const container = containerLabel(String(object.spec?.containerID ?? ""));
  if (container) labels[CONTAINER_LABEL] = container;
  return {
    ...object,
    metadata: {
      ...object.metadata,
      name: object.metadata.name || (ipObjectName(String(object.spec?.ip ?? "")) ?? ""),
      labels,
    },
    spec: { ...object.spec, floatingIP: key },
  };
}

function claimFromSpec(claim: KubeObject): {
  podUID?: string;
  containerID: string;
  node: string;
  pod: string;
} {
  const spec = claim.spec ?? {};
  return {
    ...(typeof spec.podUID === "string" ? { podUID: spec.podUID } : {}),
    containerID: String(spec.containerID ?? ""),
    node: String(spec.node ?? ""),
    pod: String(spec.pod ?? ""),
  };
}

function claimReport(claim: KubeObject) {
  const status = claim.status ?? {};
  return {
    node: String(claim.spec?.node ?? ""),
    generation: claim.metadata.generation,
    observedGeneration:
      typeof status.observedGeneration === "number" ? status.observedGeneration : undefined,
    programmed: status.programmed === true,
    announced: typeof status.announced === "string" ? status.announced : undefined,
  };
}
