// The FloatingIP controller on the etcd datastore (issue 15 item 4): the
// Kubernetes one's rules (src/failover/) over etcd's records. A FloatingIP
// (`buoy apply`) goes to one Ready pod its selector picks among the Pod
// records of its namespace, whose endpoint names the pod's uid and node,
// on a node whose agent is alive (its nodesalive key, under the agent's
// status lease). Its address is held as any floating IP on etcd: a claim
// keyed by the address, marked with the FloatingIP, and the holder
// endpoint's ipNATs, both written in one transaction (live-change.ts), so a
// FloatingIP and an annotation never hold one address at once. The agents
// program it as they program a `buoy floatingip move`: the old node
// withdraws first (ADR 0004).
//
// Work per event is what it touched: the caches are kept from watches
// (prefix-cache.ts) and indexed, and one FloatingIP's reconcile reads only
// its address's claim, region and blocks.
import type { Kv } from "../datastore/kv.js";
import { candidatesFor, type PodView } from "../failover/candidates.js";
import {
  chooseHolder,
  currentCandidate,
  lossReason,
  type Candidate,
} from "../failover/choose-holder.js";
import { FailoverTimer } from "../failover/failover-timer.js";
import {
  planFloatingIpStatus,
  type Assignment,
  type ClaimReport,
} from "../failover/floating-ip-status.js";
import { floatingIpKey, type FloatingIpRecord } from "../failover/floating-ip.js";
import { FloatingIpError } from "../floating/annotation.js";
import {
  DEFAULT_MAX_FLOATING_IPS,
  validateInPools,
  validatePoolNamespaces,
} from "../floating/validate.js";
import type { Logger } from "../log/logger.js";
import type { FloatingIpStatusShape } from "../model/floating-ip-resource.js";
import type {
  FloatingIpClaim,
  FloatingIpStatus,
  IpPool,
  NamespaceRecord,
  Versioned,
  WorkloadEndpoint,
} from "../model/records.js";
import type { ControllerMetrics } from "../controller/controller-metrics.js";
import { PoolAttempts } from "../failover/pool-address.js";
import { poolAddressFor } from "./allocate-pool-address.js";
import { readClaimLookup } from "./claims-transaction.js";
import { commitLiveChange } from "./commit-live-change.js";
import { planFloatingIpMove, planFloatingIpSet, type LiveState } from "./live-change.js";
import { FloatingIpIndex } from "./floating-ip-index.js";
import { PrefixCache, type CacheChange } from "./prefix-cache.js";
import { keys, type Store } from "./store.js";

export interface EtcdFloatingIpControllerOptions {
  store: Store;
  logger: Logger;
  metrics: ControllerMetrics;
  /** Monotonic milliseconds. */
  now: () => number;
}

const RETRY_MS = 1000;
/** A full pool is tried again after this. */
const POOL_RETRY_MS = 5000;
/** How long an own write may take to come back through the claims' watch before it is not waited for. */
const EXPECT_MS = 5000;

/** A FloatingIP with the address it stands for (its spec's or its pool's). */
type AddressedRecord = FloatingIpRecord & { spec: { address: string } };

const object = (value: unknown) =>
  typeof value === "object" && value !== null && !Array.isArray(value);

export class EtcdFloatingIpController {
  readonly #kv: Kv;
  readonly #fips: PrefixCache<FloatingIpRecord>;
  readonly #statuses: PrefixCache<FloatingIpStatusShape>;
  readonly #pods: PrefixCache<PodView>;
  readonly #endpoints: PrefixCache<WorkloadEndpoint>;
  readonly #claims: PrefixCache<FloatingIpClaim>;
  readonly #alive: PrefixCache<unknown>;
  readonly #programmed: PrefixCache<FloatingIpStatus>;
  readonly #pools: PrefixCache<IpPool>;
  readonly #namespaces: PrefixCache<NamespaceRecord>;
  readonly #all: PrefixCache<never>[];

  readonly #index = new FloatingIpIndex();
  /** The pool address each FloatingIP found taken when it came to claim it: not picked again. */
  readonly #passedOver = new Map<string, string>();
  readonly #poolAttempts = new PoolAttempts(POOL_RETRY_MS);

  readonly #timer = new FailoverTimer();
  /** Addresses this controller is taking from their holder (not a failover when their claim goes). */
  readonly #releasing = new Set<string>();
  /**
   * The holder (container) each address's claim has after this controller's
   * own write, until the claims' watch shows it: the caches come from
   * separate watches, and an endpoint's event may come first.
   */
  readonly #expected = new Map<string, { containerID: string | undefined; at: number }>();
  readonly #dirty = new Set<string>();
  readonly #synced = new Set<string>();
  #running = false;

  constructor(private readonly options: EtcdFloatingIpControllerOptions) {
    const { kv } = options.store;
    const { logger } = options;
    this.#kv = kv;
    const cache = <T>(prefix: string, decode: (value: unknown) => T | undefined = as<T>) =>
      new PrefixCache<T>(kv, prefix, decode, logger);
    this.#fips = cache<FloatingIpRecord>(keys.floatingIps, (value) => {
      const spec = object(value) ? (value as FloatingIpRecord).spec : undefined;
      return typeof spec?.address === "string" || typeof spec?.pool === "string"
        ? (value as FloatingIpRecord)
        : undefined;
    });
    this.#statuses = cache<FloatingIpStatusShape>(keys.floatingIpStatuses);
    this.#pods = cache<PodView>(keys.pods, (value) =>
      object(value) && object((value as PodView).metadata) ? (value as PodView) : undefined,
    );
    this.#endpoints = cache<WorkloadEndpoint>(keys.endpoints, (value) =>
      object(value) && Array.isArray((value as WorkloadEndpoint).ipNATs)
        ? (value as WorkloadEndpoint)
        : undefined,
    );
    this.#claims = cache<FloatingIpClaim>(keys.claims);
    this.#alive = cache<unknown>(keys.nodesAlive);
    this.#programmed = cache<FloatingIpStatus>(keys.statuses);
    this.#pools = cache<IpPool>(keys.pools);
    this.#namespaces = cache<NamespaceRecord>(keys.namespaces);
    this.#all = [
      this.#fips,
      this.#statuses,
      this.#pods,
      this.#endpoints,
      this.#claims,
      this.#alive,
      this.#programmed,
      this.#pools,
      this.#namespaces,
    ] as PrefixCache<never>[];
  }

  /** Watches and reconciles until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const route: Record<string, (changes: readonly CacheChange<never>[]) => void> = {
      [keys.floatingIps]: (changes) => this.#fipsChanged(changes),
      [keys.floatingIpStatuses]: (changes) => this.#statusesChanged(changes),
      [keys.pods]: (changes) => this.#podsChanged(changes),
      [keys.endpoints]: (changes) => this.#endpointsChanged(changes),
      [keys.claims]: (changes) => this.#claimsChanged(changes),
      [keys.nodesAlive]: (changes) => this.#nodesChanged(changes),
      [keys.statuses]: (changes) => this.#programmedChanged(changes),
      [keys.pools]: () => this.#scheduleAll(),
      [keys.namespaces]: (changes) => {
        for (const { key } of changes)
          for (const fip of this.#index.fipsIn.get(key.slice(keys.namespaces.length)))
            this.#schedule(fip);
      },
    };
    await Promise.all(
      this.#all.map((cache) =>
        cache.run(signal, {
          changed: (changes) => route[cache.prefix]?.(changes),
          synced: (up) => {
            const was = this.#synced.size === this.#all.length;
            if (up) this.#synced.add(cache.prefix);
            else this.#synced.delete(cache.prefix);
            if (!was && this.#synced.size === this.#all.length) this.#scheduleAll();
          },
        }),
      ),
    );
  }

  get #ready(): boolean {
    return this.#synced.size === this.#all.length;
  }

  #fipsChanged(changes: readonly CacheChange<FloatingIpRecord>[]): void {
    for (const { before, after } of changes) {
      this.#index.fip(before, after);
      const record = after ?? before;
      if (record) this.#schedule(floatingIpKey(record.namespace, record.name));
    }
  }

  #podsChanged(changes: readonly CacheChange<PodView>[]): void {
    for (const { key, before, after } of changes) {
      this.#index.pod(key, before, after);
      this.#scheduleNamespace((after ?? before)?.metadata.namespace ?? "default");
    }
  }

  #endpointsChanged(changes: readonly CacheChange<WorkloadEndpoint>[]): void {
    for (const { key, before, after } of changes) {
      this.#index.endpoint(key, before, after);
      const namespace = (after ?? before)?.namespace;
      if (namespace !== undefined) this.#scheduleNamespace(namespace);
    }
  }

  #claimsChanged(changes: readonly CacheChange<FloatingIpClaim>[]): void {
    for (const { before, after } of changes) {
      // A claim of a FloatingIP's gone, and not by its controller: its
      // holder's DEL released it (the pod was deleted); the failover starts.
      if (before?.floatingIP !== undefined && after?.floatingIP !== before.floatingIP) {
        if (!this.#releasing.delete(before.ip) && this.#record(before.floatingIP)) {
          this.#timer.lost(before.floatingIP, "Deleted", 0, this.options.now());
        }
      }
      this.#index.claim(before, after);
      const ip = (after ?? before)?.ip;
      for (const key of ip !== undefined ? this.#index.fipsOf.get(ip) : []) this.#schedule(key);
      for (const claim of [before, after]) {
        if (claim?.floatingIP !== undefined) this.#schedule(claim.floatingIP);
      }
    }
  }

  /**
   * A node's agent came or went: the FloatingIPs held there (to move away),
   * and those of the namespaces of its pods (one may now hold them). What
   * the node holds and runs, never every FloatingIP.
   */
  #nodesChanged(changes: readonly CacheChange<unknown>[]): void {
    const namespaces = new Set<string>();
    for (const { key } of changes) {
      const node = key.slice(keys.nodesAlive.length);
      for (const fip of this.#index.fipsHeldOn.get(node)) this.#schedule(fip);
      for (const pod of this.#index.podsOn.get(node)) {
        namespaces.add(this.#pods.get(pod)?.metadata.namespace ?? "default");
      }
    }
    for (const namespace of namespaces) this.#scheduleNamespace(namespace);
  }

  #programmedChanged(changes: readonly CacheChange<FloatingIpStatus>[]): void {
    for (const { before, after } of changes) {
      const ip = (after ?? before)?.ip;
      if (ip === undefined) continue;
      for (const key of this.#index.fipsOf.get(ip)) this.#schedule(key);
      // A pool's address is its claim's (and its status's), not its spec's.
      const mark = this.#claims.get(keys.claim(ip))?.floatingIP;
      if (mark !== undefined) this.#schedule(mark);
    }
  }

  /** The addresses FloatingIPs' statuses name: a pool's, taken even while no pod holds it. */
  #statusesChanged(changes: readonly CacheChange<FloatingIpStatusShape>[]): void {
    for (const { key, before, after } of changes) {
      this.#index.status(key.slice(keys.floatingIpStatuses.length), before, after);
    }
  }

  #scheduleNamespace(namespace: string): void {
    for (const key of this.#index.fipsIn.get(namespace)) this.#schedule(key);
  }

  #scheduleAll(): void {
    for (const key of this.#fipKeys()) this.#schedule(key);
    // Claims of FloatingIPs deleted while no controller ran.
    for (const key of this.#index.claimsOf.keys()) this.#schedule(key);
  }

  *#fipKeys(): Iterable<string> {
    for (const record of this.#fips.values()) yield floatingIpKey(record.namespace, record.name);
  }

  #schedule(key: string): void {
    this.#dirty.add(key);
    if (this.#running || !this.#ready) return;
    this.#running = true;
    void (async () => {
      while (this.#dirty.size > 0 && this.#ready) {
        const [next] = this.#dirty;
        if (next === undefined) break;
        this.#dirty.delete(next);
        try {
          await this.#reconcile(next);
        } catch (error) {
          this.options.logger.log("warn", "controller.error", {
            floatingIP: next,
            error: (error as Error).message,
            retryInMs: RETRY_MS,
          });
          setTimeout(() => this.#schedule(next), RETRY_MS).unref();
        }
      }
      this.#running = false;
    })();
  }

  #record(key: string): FloatingIpRecord | undefined {
    const slash = key.indexOf("/");
    if (slash < 0) return undefined;
    return this.#fips.get(keys.floatingIp(key.slice(0, slash), key.slice(slash + 1)));
  }

  #live = (node: string): boolean => {
    try {
      return this.#alive.get(keys.nodeAlive(node)) !== undefined;
    } catch {
      return false;
    }
  };

  /** One FloatingIP: choose its holder, make the claim and endpoints say so, write its status. */
  async #reconcile(key: string): Promise<void> {
    const record = this.#record(key);
    const where = record && (await this.#addressFor(key, record));
    const address = where && "address" in where ? where.address : undefined;
    // Claims of a FloatingIP deleted meanwhile, or of its former address, go.
    for (const ip of [...this.#index.claimsOf.get(key)]) {
      if (ip !== address) await this.#release(key, ip);
    }
    if (!record || !where) {
      this.#timer.forget(key);
      this.#passedOver.delete(key);
      this.#poolAttempts.forget(key);
      return;
    }
    if ("reason" in where) {
      await this.#writeStatus(record, { holder: undefined, ...where });
      return;
    }
    // From here on it has an address, its spec's or its pool's.
    const fip = { ...record, spec: { ...record.spec, address: where.address } };
    if (address === undefined || this.#awaitingOwnWrite(address)) return;
    const { namespace } = fip;
    const pools = [...this.#pools.values()];
    const claim = this.#claims.versioned(keys.claim(address));
    const ours = claim?.value.floatingIP === key ? claim : undefined;
    const refuse = async (reason: string, message: string) => {
      if (ours) await this.#release(key, address);
      await this.#writeStatus(fip, { holder: undefined, reason, message });
    };
    try {
      validateInPools([address], pools);
      const labels = this.#namespaces.get(keys.namespace(namespace))?.labels ?? {};
      validatePoolNamespaces([address], pools, namespace, labels);
    } catch (error) {
      if (error instanceof FloatingIpError) return refuse("AddressRefused", error.message);
      throw error;
    }
    if (claim && !ours) {
      // Another pod's (an annotation's) or another FloatingIP's: its release
      // comes back here through the claims' watch.
      return refuse("AddressInUse", `floating IP ${address} is held by a pod it does not select`);
    }
    const candidates = candidatesFor(
      address,
      fip.spec.podSelector,
      namespace,
      this.#podsOf(namespace),
      (uid) => this.#endpointsOf(uid).map((endpoint) => endpoint.value),
      this.#live,
    );
    const held = ours && {
      ...(ours.value.podUID !== undefined ? { podUID: ours.value.podUID } : {}),
      containerID: ours.value.containerID,
      node: ours.value.node,
      pod: ours.value.pod,
    };
    const choice = chooseHolder(candidates, held);
    const was = held && currentCandidate(candidates, held);
    const lost = held ? lossReason(was) : undefined;
    const version = Number(ours?.revision ?? 0);
    if (lost) this.#timer.lost(key, lost, version, this.options.now());
    if (!choice.holder) {
      const message =
        choice.why === "NoPodSelected"
          ? "no pod with an address of its family matches spec.podSelector"
          : "no pod it selects is Ready";
      return refuse(choice.why, message);
    }
    const holder = choice.holder;
    if (!ours) {
      if (!(await this.#assign(key, fip, holder))) return;
      this.options.logger.log("info", "controller.assigned", {
        floatingIP: key,
        address,
        pod: holder.pod,
        node: holder.node,
      });
      const reason = this.#timer.reason(key);
      if (reason) this.options.metrics.failovers.inc({ reason });
      // The claim's own event brings the status.
      return;
    }
    if (!choice.kept) {
      if (!(await this.#move(key, fip, ours, holder))) return;
      const reason = lost ?? this.#timer.reason(key) ?? "Deleted";
      this.options.metrics.failovers.inc({ reason });
      this.options.logger.log("info", "controller.moved", {
        floatingIP: key,
        address,
        from: ours.value.pod,
        to: holder.pod,
        node: holder.node,
        reason,
      });
      return;
    }
    if ((ours.value.egress === true) !== fip.spec.egress) {
      // The same holder, egress turned on or off: the claim says so, in place.
      await this.#markEgress(key, ours, fip.spec.egress);
      return;
    }
    const report = this.#report(ours.value);
    if (report.programmed) {
      const ended = this.#timer.programmed(key, version, this.options.now());
      if (ended) {
        this.options.metrics.failoverSeconds.observe({ reason: ended.reason }, ended.seconds);
      }
    }
    if (!lost) this.#timer.recovered(key, version);
    await this.#writeStatus(fip, { holder, since: ours.value.createdAt }, report);
  }

  /** The address a FloatingIP stands for (its spec's or its pool's), or why none. */
  async #addressFor(
    key: string,
    fip: FloatingIpRecord,
  ): Promise<{ address: string } | { reason: string; message: string }> {
    const { address, pool } = fip.spec;
    if (address !== undefined || pool === undefined) return { address: address ?? "" };
    const found = await poolAddressFor(fip, pool, {
      store: this.options.store,
      pools: [...this.#pools.values()],
      labels: this.#namespaces.get(keys.namespace(fip.namespace))?.labels ?? {},
      held: this.#index.claimsOf.get(key),
      named: this.#statuses.get(keys.floatingIpStatus(fip.namespace, fip.name))?.address,
      passedOver: this.#passedOver.get(key),
      // Any claim but this FloatingIP's own (an annotation's has no mark).
      claimedByOther: (ip) =>
        [this.#claims.get(keys.claim(ip))].some((c) => c && c.floatingIP !== key),
      namedByOther: (ip) =>
        this.#index.fipsOf.get(ip).size > 0 ||
        [...this.#index.statusOf.get(ip)].some((other) => other !== key),
      attempt: this.#poolAttempts.next(key, this.options.now()),
    });
    if ("allocated" in found) {
      this.#poolAttempts.forget(key);
      const fields = { floatingIP: key, address: found.address, pool };
      this.options.logger.log("info", "controller.allocated", fields);
    }
    if (found.reason === "PoolExhausted" && this.#poolAttempts.wasFull(key, this.options.now())) {
      setTimeout(() => this.#schedule(key), POOL_RETRY_MS).unref();
    }
    return found;
  }

  /** Whether the claims' cache has yet to show this controller's last write of `address`. */
  #awaitingOwnWrite(address: string): boolean {
    const expected = this.#expected.get(address);
    if (!expected) return false;
    const current = this.#claims.get(keys.claim(address))?.containerID;
    if (current !== expected.containerID && this.options.now() - expected.at < EXPECT_MS) {
      return true;
    }
    this.#expected.delete(address);
    return false;
  }

  #wrote(key: string, address: string, containerID: string | undefined): void {
    this.#expected.set(address, { containerID, at: this.options.now() });
    // Its claim's event brings the FloatingIP back here; this, if none comes.
    setTimeout(() => this.#schedule(key), EXPECT_MS).unref();
  }

  *#podsOf(namespace: string): Iterable<PodView> {
    for (const key of this.#index.podsIn.get(namespace)) {
      const pod = this.#pods.get(key);
      if (pod) yield pod;
    }
  }

  #endpointsOf(podUID: string): Versioned<WorkloadEndpoint>[] {
    return [...this.#index.endpointsOfPod.get(podUID)].flatMap(
      (key) => this.#endpoints.versioned(key) ?? [],
    );
  }

  #endpointOf(candidate: Candidate): Versioned<WorkloadEndpoint> | undefined {
    return this.#endpoints.versioned(
      keys.endpoint(candidate.node, candidate.containerID, candidate.endpoint),
    );
  }

  /** The state a plan needs about one address and the endpoints it names, read for them alone. */
  async #state(
    address: string,
    endpoints: Versioned<WorkloadEndpoint>[],
    claim: Versioned<FloatingIpClaim> | undefined,
  ) {
    const pools = [...this.#pools.values()];
    const lookup = await readClaimLookup(this.options.store, pools, [address]);
    const namespaces = [...new Set(endpoints.map((endpoint) => endpoint.value.namespace))].flatMap(
      (name) => this.#namespaces.get(keys.namespace(name)) ?? [],
    );
    const state: LiveState = {
      pools,
      blocks: [],
      regions: [],
      claims: claim ? [claim] : [],
      endpoints,
      namespaces,
    };
    return { state, lookup };
  }

  /** Gives the address to `holder`: its claim and its endpoint's ipNATs, in one transaction. */
  async #assign(key: string, fip: AddressedRecord, holder: Candidate): Promise<boolean> {
    const address = fip.spec.address;
    const endpoint = this.#endpointOf(holder);
    if (!endpoint) return false;
    const { state, lookup } = await this.#state(address, [endpoint], undefined);
    const held = endpoint.value.ipNATs.map((nat) => nat.externalIP);
    try {
      const change = planFloatingIpSet(
        state,
        `${holder.namespace}/${holder.pod}`,
        [...held.filter((ip) => ip !== address), address],
        Math.max(DEFAULT_MAX_FLOATING_IPS, held.length + 1),
        { lookup, floatingIP: { ip: address, key, egress: fip.spec.egress } },
      );
      if (await commitLiveChange(this.#kv, change)) {
        this.#wrote(key, address, holder.containerID);
        return true;
      }
    } catch (error) {
      if (!(error instanceof FloatingIpError)) throw error;
      if (fip.spec.pool !== undefined) {
        // Taken since it was picked: the pool has others (after a pause, in
        // case what refused it was not the address).
        this.#passedOver.set(key, address);
        setTimeout(() => this.#schedule(key), RETRY_MS).unref();
      }
      await this.#writeStatus(fip, {
        holder: undefined,
        reason: "AddressInUse",
        message: error.message,
      });
      return false;
    }
    // Lost a race: what changed comes back through the watch.
    this.#schedule(key);
    return false;
  }

  /** Points the claim at `holder` and moves the ipNAT between the endpoints, in one transaction. */
  async #move(
    key: string,
    fip: AddressedRecord,
    claim: Versioned<FloatingIpClaim>,
    holder: Candidate,
  ): Promise<boolean> {
    const address = fip.spec.address;
    const target = this.#endpointOf(holder);
    if (!target) return false;
    const source = this.#holderEndpoint(claim.value);
    const { state } = await this.#state(address, source ? [target, source] : [target], claim);
    const held = target.value.ipNATs.length + 1;
    const change = planFloatingIpMove(
      state,
      address,
      `${holder.namespace}/${holder.pod}`,
      Math.max(DEFAULT_MAX_FLOATING_IPS, held),
      { floatingIP: { ip: address, key, egress: fip.spec.egress } },
    );
    if (await this.#kv.txn(change.compares, change.ops)) {
      this.#wrote(key, address, holder.containerID);
      return true;
    }
    this.#schedule(key);
    return false;
  }

  /**
   * Marks the claim `egress` or not: its holder's agent then has the pod
   * leave from the address (nat-plan.ts), or stop.
   */
  async #markEgress(
    key: string,
    claim: Versioned<FloatingIpClaim>,
    egress: boolean,
  ): Promise<void> {
    const value: FloatingIpClaim = { ...claim.value, egress: true };
    if (!egress) delete value.egress;
    const claimKey = keys.claim(claim.value.ip);
    const written = await this.#kv.txn(
      [{ key: claimKey, modRevision: Number(claim.revision) }],
      [{ put: claimKey, value: JSON.stringify(value) }],
    );
    if (written) {
      this.options.logger.log("info", "controller.egress", {
        floatingIP: key,
        address: claim.value.ip,
        egress,
      });
    }
    // Its claim's event, or the race's winner, brings the FloatingIP back here.
    else this.#schedule(key);
  }

  /** The endpoint that lists the claim's address (its holder's), if it is still there. */
  #holderEndpoint(claim: FloatingIpClaim): Versioned<WorkloadEndpoint> | undefined {
    const endpoint = this.#endpoints.versioned(
      keys.endpoint(claim.node, claim.containerID, claim.endpoint ?? "eth0"),
    );
    return endpoint?.value.ipNATs.some((nat) => nat.externalIP === claim.ip) ? endpoint : undefined;
  }

  /** Takes the address from its holder: the claim, and the ipNAT from its endpoint. */
  async #release(key: string, ip: string): Promise<void> {
    const claim = this.#claims.versioned(keys.claim(ip));
    if (!claim || claim.value.floatingIP !== key) return;
    const source = this.#holderEndpoint(claim.value);
    const compares = [{ key: keys.claim(ip), modRevision: Number(claim.revision) }];
    const ops: ({ delete: string } | { put: string; value: string })[] = [
      { delete: keys.claim(ip) },
    ];
    if (source) {
      const { node, containerID, endpoint } = source.value;
      const key = keys.endpoint(node, containerID, endpoint);
      compares.push({ key, modRevision: Number(source.revision) });
      const ipNATs = source.value.ipNATs.filter((nat) => nat.externalIP !== ip);
      ops.push({ put: key, value: JSON.stringify({ ...source.value, ipNATs }) });
    }
    this.#releasing.add(ip);
    if (await this.#kv.txn(compares, ops)) {
      this.#wrote(key, ip, undefined);
      this.options.logger.log("info", "controller.released", { floatingIP: key, address: ip });
    } else {
      this.#releasing.delete(ip);
      this.#schedule(key);
    }
  }

  /** What the holder's node reports: the agent's status record of the address. */
  #report(claim: FloatingIpClaim): ClaimReport {
    const status = this.#programmed.get(keys.status(claim.node, claim.ip));
    const programmed = status?.internalIP === claim.internalIP;
    return {
      node: claim.node,
      // One claim record per move: the status is of this one when it names its pod address.
      generation: 1,
      observedGeneration: programmed ? 1 : undefined,
      programmed,
      announced: programmed ? status?.announced : undefined,
    };
  }

  async #writeStatus(
    fip: FloatingIpRecord,
    assignment: Assignment,
    report?: ClaimReport,
  ): Promise<void> {
    const statusKey = keys.floatingIpStatus(fip.namespace, fip.name);
    const previous = this.#statuses.get(statusKey) ?? {};
    const next = planFloatingIpStatus(
      previous,
      fip.generation,
      fip.spec.address,
      assignment,
      report,
      new Date().toISOString(),
    );
    if (JSON.stringify(next) === JSON.stringify(previous)) return;
    const before = previous.conditions?.find((c) => c.type === "Assigned");
    const after = next.conditions?.find((c) => c.type === "Assigned");
    if (
      after?.status === "False" &&
      (before?.reason !== after.reason || before.message !== after.message)
    ) {
      this.options.logger.log("warn", "controller.refused", {
        floatingIP: floatingIpKey(fip.namespace, fip.name),
        reason: after.reason,
        message: after.message,
      });
    }
    // Only while the FloatingIP is there: a status never outlives it.
    const record = this.#fips.versioned(keys.floatingIp(fip.namespace, fip.name));
    if (!record) return;
    await this.#kv.txn(
      [{ key: keys.floatingIp(fip.namespace, fip.name), modRevision: Number(record.revision) }],
      [{ put: statusKey, value: JSON.stringify(next) }],
    );
  }
}

function as<T>(value: unknown): T | undefined {
  return object(value) ? (value as T) : undefined;
}
