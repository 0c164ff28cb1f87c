// The agent's datastore side over etcd: prefix watches, one readMany at one
// revision, and status records written under a lease the agent keeps alive
// (a dead node's records vanish with it).
import { MAX_TXN_OPS, type Kv, type KvEntry, type KvOp } from "../datastore/kv.js";
import type { FloatingIpStatus } from "../model/records.js";
import { keys, Store } from "./store.js";
import { routesToNodes, type RoutingMode } from "../dataplane/routing-plan.js";
import type { Logger } from "../log/logger.js";
import type {
  AgentSource,
  AgentState,
  RawRecord,
  RecordChange,
  RecordKind,
  WatchHandlers,
} from "../datastore/agent-source.js";
import { ClaimCollector } from "./claim-gc.js";
import { inParts } from "../datastore/in-parts.js";
import { canonicalAddress } from "../net/address.js";

export interface EtcdAgentSourceOptions {
  kv: Kv;
  node: string;
  routing: RoutingMode;
  logger: Logger;
  /** TTL of the lease under the status records; undefined: records without a lease. */
  statusTtlSeconds?: number;
  /** Release claims whose holder is gone after this long (ms); 0 turns the collector off. */
  claimGcGraceMs?: number;
  /** Keys per page of a complete read (READ_PAGE; tests make it small). */
  readPageSize?: number;
}

const STATUS_BATCH = 100;
/** A status record to put, or the floating IP of one to delete. */
type StatusWrite = FloatingIpStatus | string;
/** A status record this agent wrote, and the revision etcd applied it at. */
interface OwnWrite {
  own: FloatingIpStatus;
  revision: number;
}
/** What the watches said of a key since the last read (undefined: deleted), or what this agent wrote. */
type Pending = KvEntry | OwnWrite | undefined;
/**
 * Keys per page of a complete read (issue 14: 100k endpoints in one etcd
 * response, and their copies while decoded, were most of the agent's peak
 * memory). Not fewer: etcd 3.4 walks the rest of the range's index for every
 * limited range (its count), so 100k endpoints took 3.0-3.5 s in pages of
 * 1,000, 1.9 s in pages of 5,000 and 1.6-1.7 s in one range.
 */
const READ_PAGE = 5000;
/** Claims read as the whole prefix, not by key, when it holds at most this many times the wanted. */
const CLAIMS_BY_PREFIX = 2;
/**
 * Requests in flight at once when a read or a write takes many (100k
 * bindings: 782 claim reads and 1,000 status writes at a cold start).
 */
const IN_FLIGHT = 4;

export class EtcdAgentSource implements AgentSource {
  /** The status lease, and the one the records were last all written with. */
  #lease: string | undefined;
  /** Whether the liveness key is on the current lease. */
  #alive = false;
  #statusLease: string | undefined;
  readonly #collector: ClaimCollector | undefined;

  constructor(private readonly options: EtcdAgentSourceOptions) {
    const grace = options.claimGcGraceMs ?? 0;
    this.#collector =
      grace > 0
        ? new ClaimCollector({
            store: new Store(options.kv),
            graceMs: grace,
            logger: options.logger,
          })
        : undefined;
  }

  /**
   * Only what the plan reads, by prefix: this node's endpoints, the pools and
   * the nodes' status records; when routing, also nodes, BGP peers, block
   * affinities and borrowed addresses (not the blocks: every allocation
   * rewrites one). Claims are read by key (#read).
   */
  #prefixes(): [keyof AgentState, string][] {
    const { node, routing } = this.options;
    return [
      ["endpoint", keys.nodeEndpoints(node)],
      ["pool", keys.pools],
      ["status", keys.statuses],
      ...(routing === "none"
        ? []
        : ([
            ["node", keys.nodes],
            ["affinity", keys.affinities],
            ["peer", keys.bgpPeers],
            ["borrowed", keys.borrowed],
          ] as [keyof AgentState, string][])),
    ];
  }

  /**
   * The claim keys of the floating IPs this node's endpoints ask for (each
   * with how many endpoints ask), as of the last read: the only claims the
   * plan looks at, and the only claim changes that wake this node (issue 14:
   * not every claim in the cluster).
   */
  #claimKeys = new Map<string, number>();
  /** The claim keys each endpoint (by key) asks for: one as itself, more in an array. */
  #claimKeysOf = new Map<string, string | string[]>();
  /**
   * What the watches said changed since the last read, by kind and key
   * (undefined: deleted), and the status records this agent wrote since.
   */
  #pending = new Map<RecordKind, Map<string, Pending>>();
  /**
   * Revisions of this agent's status transactions whose watch events may
   * still come (issue 14): a put at one of them is its own write coming back,
   * already in #pending as it was written, and is dropped (at 100k bindings
   * 100k echoes, each a decoded entry, were held until the next reconcile).
   */
  #ownRevisions = new Set<number>();
  /** A watch was (re-)established: what it missed is unknown, so the next read is complete. */
  #gap = true;

  /**
   * Whether a change under `prefix` can change this node's plan: a claim
   * only if its own endpoints ask for it; a status record (another node
   * translating an address) only if it is one of those addresses, except
   * with direct (and vxlan) routes, which route every node's floating IPs.
   */
  #concerns(prefix: string, changed: readonly string[]): boolean {
    if (prefix === keys.claims) return changed.some((key) => this.#claimKeys.has(key));
    if (prefix !== keys.statuses || routesToNodes(this.options.routing)) return true;
    return changed.some((key) =>
      this.#claimKeys.has(keys.claim(key.slice(key.lastIndexOf("/") + 1))),
    );
  }

  async read(): Promise<AgentState> {
    const state: AgentState = {
      endpoint: [],
      claim: [],
      pool: [],
      status: [],
      node: [],
      affinity: [],
      peer: [],
      borrowed: [],
    };
    await this.readInPages((kind, records) => {
      for (const record of records) state[kind].push(record);
    });
    return state;
  }

  async readInPages(
    take: (kind: RecordKind, records: readonly RawRecord[]) => void,
  ): Promise<void> {
    // Cleared before reading: a change made meanwhile is read again by the
    // next readChanges. A read that fails leaves a gap: the next is complete.
    this.#gap = false;
    this.#pending = new Map();
    this.#ownRevisions.clear();
    try {
      await this.#readAll(take);
    } catch (error) {
      this.#gap = true;
      throw error;
    }
  }

  /**
   * Each prefix page by page, the prefixes side by side, then the claims the
   * endpoints ask for: by key, or the whole claims prefix in pages when it
   * holds at most CLAIMS_BY_PREFIX times as many (100k claims against etcd
   * 3.4: by key 7.6-9.5 s, the prefix in pages of 1,000 3.0-4.2 s). Pages
   * are read at different revisions; what changes
   * meanwhile comes from the watches, which were established first.
   */
  async #readAll(take: (kind: RecordKind, records: readonly RawRecord[]) => void): Promise<void> {
    const { kv, logger } = this.options;
    const started = performance.now();
    // Where a complete read's time goes (--log-level debug): the agent's own
    // decoding and model updates, within the wall time of each part.
    let decodeMs = 0;
    const timed = (work: () => void) => {
      const at = performance.now();
      work();
      decodeMs += performance.now() - at;
    };
    // Set before reading, so a claim changed meanwhile wakes the next reconcile.
    this.#claimKeys = new Map();
    this.#claimKeysOf = new Map();
    const counting = kv.count?.(keys.claims);
    // Awaited below; a failed page read must not leave its rejection unhandled.
    counting?.catch(() => undefined);
    await Promise.all(
      this.#prefixes().map(([kind, prefix]) =>
        this.#readPrefix(prefix, (entries) =>
          timed(() => {
            const records = entries.map(raw);
            if (kind === "endpoint") {
              for (const record of records)
                this.#setClaimKeys(record.key, requestedClaimKeys(record.value));
            }
            take(kind, records);
          }),
        ),
      ),
    );
    const paged = performance.now();
    const claims = await counting;
    const byPrefix = claims !== undefined && claims <= CLAIMS_BY_PREFIX * this.#claimKeys.size;
    if (byPrefix) {
      await this.#readPrefix(keys.claims, (entries) =>
        timed(() =>
          take("claim", entries.filter((entry) => this.#claimKeys.has(entry.key)).map(raw)),
        ),
      );
    } else {
      await this.#readKeys([...this.#claimKeys.keys()], (entries) =>
        timed(() => take("claim", entries.map(raw))),
      );
    }
    logger.log("debug", "agent.read", {
      pagesMs: Math.round(paged - started),
      claimsMs: Math.round(performance.now() - paged),
      claims: byPrefix ? "prefix" : "keys",
      claimsWanted: this.#claimKeys.size,
      decodeMs: Math.round(decodeMs),
    });
  }

  /**
   * Every record under `prefix`, in pages (READ_PAGE keys), the next page
   * asked for while `each` decodes the last.
   */
  async #readPrefix(prefix: string, each: (entries: KvEntry[]) => void): Promise<void> {
    const { kv } = this.options;
    const size = this.options.readPageSize ?? READ_PAGE;
    let page = await kv.listPage(prefix, undefined, size);
    while (page.length > 0) {
      const last = page.length < size ? undefined : (page.at(-1) as KvEntry).key;
      const next = last === undefined ? undefined : kv.listPage(prefix, last, size);
      // A failure while decoding must not leave the next page's rejection unhandled.
      next?.catch(() => undefined);
      each(page);
      page = next ? await next : [];
    }
  }

  /**
   * The records changed since the last read, as the watches delivered them:
   * nothing is read but the claims an endpoint comes to ask for (by key).
   * A claim no endpoint asks for any more is reported deleted. Events come in
   * revision order, so a claim read here and changed meanwhile ends as its
   * last event says.
   */
  async readChanges(): Promise<RecordChange[] | undefined> {
    if (this.#gap) return undefined;
    try {
      return await this.#takeChanges();
    } catch (error) {
      // What was taken is lost with the failure: the next read is complete.
      this.#gap = true;
      throw error;
    }
  }

  async #takeChanges(): Promise<RecordChange[]> {
    const pending = this.#pending;
    this.#pending = new Map();
    const changes: RecordChange[] = [];
    const claims = new Map(
      [...(pending.get("claim") ?? [])].map(([key, held]) => [key, held as KvEntry | undefined]),
    );
    const wantedBefore = new Map<string, boolean>();
    for (const [key, entry] of pending.get("endpoint") ?? []) {
      const record = entry && raw(entry as KvEntry);
      changes.push({ kind: "endpoint", key, record });
      const wanted = record ? requestedClaimKeys(record.value) : [];
      for (const claim of [...this.#claimKeysOfEndpoint(key), ...wanted]) {
        if (!wantedBefore.has(claim)) wantedBefore.set(claim, this.#claimKeys.has(claim));
      }
      this.#setClaimKeys(key, wanted);
    }
    const newlyWanted: string[] = [];
    for (const [claim, before] of wantedBefore) {
      const now = this.#claimKeys.has(claim);
      if (now && !before && !claims.has(claim)) newlyWanted.push(claim);
      if (!now) {
        claims.delete(claim);
        if (before) changes.push({ kind: "claim", key: claim, record: undefined });
      }
    }
    const read = new Map<string, KvEntry>();
    await this.#readKeys(newlyWanted, (entries) => {
      for (const entry of entries) read.set(entry.key, entry);
    });
    for (const key of newlyWanted) claims.set(key, read.get(key));
    for (const [key, entry] of claims) {
      if (this.#claimKeys.has(key))
        changes.push({ kind: "claim", key, record: entry && raw(entry) });
    }
    for (const [kind, entries] of pending) {
      if (kind === "endpoint" || kind === "claim") continue;
      for (const [key, held] of entries) {
        // Its own write, as written: compared again with what it should say
        // (fencing or BIRD may have changed that meanwhile), not parsed again.
        const record =
          held && "own" in held
            ? { key, version: String(held.revision), value: held.own }
            : held && raw(held);
        changes.push({ kind, key, record });
      }
    }
    return changes;
  }

  /**
   * Reads keys by key, at most one transaction's worth per request, a few
   * requests at once; `each` takes what each request found.
   */
  async #readKeys(names: readonly string[], each: (entries: KvEntry[]) => void): Promise<void> {
    await inParts(names, MAX_TXN_OPS, IN_FLIGHT, async (part) => {
      const found = await this.options.kv.readMany(part.map((key) => ({ key })));
      each(found.flat());
    });
  }

  #claimKeysOfEndpoint(endpoint: string): readonly string[] {
    const held = this.#claimKeysOf.get(endpoint);
    return held === undefined ? [] : typeof held === "string" ? [held] : held;
  }

  /** Records which claim keys an endpoint asks for (none: forgotten). */
  #setClaimKeys(endpoint: string, wanted: readonly string[]): void {
    for (const key of this.#claimKeysOfEndpoint(endpoint)) {
      const count = (this.#claimKeys.get(key) ?? 1) - 1;
      if (count > 0) this.#claimKeys.set(key, count);
      else this.#claimKeys.delete(key);
    }
    if (wanted.length === 0) this.#claimKeysOf.delete(endpoint);
    // One key (almost every endpoint) is held as itself, not in an array.
    else this.#claimKeysOf.set(endpoint, wanted.length === 1 ? (wanted[0] as string) : [...wanted]);
    for (const key of wanted) this.#claimKeys.set(key, (this.#claimKeys.get(key) ?? 0) + 1);
  }

  async watch(signal: AbortSignal, handlers: WatchHandlers): Promise<void> {
    const { kv, logger } = this.options;
    const kinds: [RecordKind, string][] = [...this.#prefixes(), ["claim", keys.claims]];
    const prefixes = kinds.map(([, prefix]) => prefix);
    const established = prefixes.map(() => false);
    let connected = false;
    const update = () => {
      const now = established.every(Boolean);
      if (now !== connected) handlers.connected(now);
      connected = now;
    };
    const watchOne = async (prefix: string, index: number) => {
      const kind = (kinds[index] as [RecordKind, string])[0];
      let failures = 0;
      while (!signal.aborted) {
        try {
          for await (const event of kv.watch(prefix, signal)) {
            if (event === "ready") {
              failures = 0;
              established[index] = true;
              // What changed while it was not watching is unknown.
              this.#gap = true;
              update();
            } else {
              // Its own status writes coming back, or another node's floating
              // IP: nothing to plan again.
              const kept = this.#note(kind, event.changed, event.entries);
              if (!kept || !this.#concerns(prefix, event.changed)) continue;
            }
            handlers.changed();
          }
        } catch (error) {
          if (signal.aborted) break;
          failures += 1;
          // A stream that ends once (an idle body timeout) is re-watched at once
          // and quietly; only a watch that cannot be re-established counts as lost.
          if (failures > 1) {
            established[index] = false;
            update();
            logger.log("warn", "agent.watch", { prefix, error: (error as Error).message });
          }
          const delay = failures > 1 ? Math.min(5000, 100 * 2 ** failures) : 0;
          await new Promise((resolve) => setTimeout(resolve, delay));
        }
      }
    };
    await Promise.all(prefixes.map((prefix, index) => watchOne(prefix, index)));
  }

  /**
   * Keeps what readChanges reports: every status (the plan needs who
   * hosts an address when one of this node's endpoints comes to ask for
   * it), only the wanted claims, everything else under the prefixes read.
   */
  #note(
    kind: RecordKind,
    changed: readonly string[],
    entries: readonly (KvEntry | undefined)[],
  ): boolean {
    let pending = this.#pending.get(kind);
    if (!pending) this.#pending.set(kind, (pending = new Map()));
    let kept = false;
    let latest = 0;
    changed.forEach((key, index) => {
      const entry = entries[index];
      if (kind === "claim" && !this.#claimKeys.has(key)) return;
      if (kind === "status" && entry) {
        latest = Math.max(latest, entry.modRevision);
        if (this.#ownRevisions.has(entry.modRevision)) return;
        const held = pending.get(key);
        if (held && "own" in held && held.revision >= entry.modRevision) return;
      }
      pending.set(key, entry);
      kept = true;
    });
    // Events come in revision order: none of an earlier revision is to come.
    for (const revision of this.#ownRevisions) {
      if (revision < latest) this.#ownRevisions.delete(revision);
    }
    return kept;
  }

  /**
   * Status records this agent wrote at `revision`, kept for readChanges as
   * written (their echoes are then dropped), unless the watch already told
   * of something later for the key, or of its deletion.
   */
  #wrote(part: readonly StatusWrite[], revision: number): void {
    this.#ownRevisions.add(revision);
    let pending = this.#pending.get("status");
    if (!pending) this.#pending.set("status", (pending = new Map()));
    for (const write of part) {
      if (typeof write === "string") continue;
      const key = keys.status(this.options.node, write.ip);
      const held = pending.get(key);
      if (
        pending.has(key) &&
        (held === undefined || ("own" in held ? held.revision : held.modRevision) > revision)
      )
        continue;
      pending.set(key, { own: write, revision });
    }
  }

  async recordStatusChanges(
    desired: readonly FloatingIpStatus[],
    recorded: readonly FloatingIpStatus[],
  ): Promise<boolean> {
    const lease = await this.#currentLease();
    if (lease !== this.#statusLease) return false;
    try {
      await this.#writeStatus(this.#statusWrites(desired, recorded, false), lease);
      return true;
    } catch (error) {
      if (lease === undefined || (await this.options.kv.keepAliveLease(lease))) throw error;
      this.#lease = undefined;
      return false;
    }
  }

  async recordStatus(
    desired: readonly FloatingIpStatus[],
    recorded: readonly FloatingIpStatus[],
    retried = false,
  ): Promise<void> {
    const { kv } = this.options;
    const lease = await this.#currentLease();
    // Records from an earlier lease (a restart, or a lease lost) are all written again.
    const rewrite = lease !== this.#statusLease;
    try {
      await this.#writeStatus(this.#statusWrites(desired, recorded, rewrite), lease);
    } catch (error) {
      // The lease expired under us (the datastore was out of reach for longer
      // than the TTL): take a new one and write every record again, once.
      if (lease === undefined || retried || (await kv.keepAliveLease(lease))) throw error;
      this.options.logger.log("warn", "agent.lease", { lease, state: "expired, granting another" });
      this.#lease = undefined;
      return this.recordStatus(desired, recorded, true);
    }
    this.#statusLease = lease;
  }

  /**
   * The writes in transactions of STATUS_BATCH (etcd refuses more than 128
   * operations, --max-txn-ops), each part's operations made only when it is
   * sent: at 100k bindings they were all made (keys, JSON values) before the
   * first was sent, and held until the last was written.
   */
  async #writeStatus(writes: readonly StatusWrite[], lease: string | undefined): Promise<void> {
    const { node, kv } = this.options;
    await inParts(writes, STATUS_BATCH, IN_FLIGHT, async (part) => {
      const ops = part.map((write): KvOp => {
        if (typeof write === "string") return { delete: keys.status(node, write) };
        const put = keys.status(node, write.ip);
        const value = JSON.stringify(write);
        return lease ? { put, value, lease } : { put, value };
      });
      if (!kv.txnAt) return void (await kv.txn([], ops));
      const revision = await kv.txnAt([], ops);
      if (revision !== undefined) this.#wrote(part, revision);
    });
  }

  /** The records to write (those that differ, or all with `rewrite`) and the IPs of those to delete. */
  #statusWrites(
    desired: readonly FloatingIpStatus[],
    recorded: readonly FloatingIpStatus[],
    rewrite: boolean,
  ): StatusWrite[] {
    const previous = new Map(recorded.map((status) => [status.ip, status]));
    const writes: StatusWrite[] = [];
    for (const status of desired) {
      const before = previous.get(status.ip);
      previous.delete(status.ip);
      if (!rewrite && before && sameStatus(before, status)) continue;
      writes.push(status);
    }
    for (const stale of previous.keys()) writes.push(stale);
    return writes;
  }

  /**
   * The status lease, granted on first use, with the node's liveness key on
   * it (keys.nodeAlive: the FloatingIP controller's sign of this node's
   * life, gone when the lease lapses); undefined when status records need
   * none (no TTL).
   */
  async #currentLease(): Promise<string | undefined> {
    const ttl = this.options.statusTtlSeconds;
    if (ttl === undefined) return undefined;
    if (this.#lease === undefined) {
      this.#lease = await this.options.kv.grantLease(ttl);
      this.#alive = false;
    }
    if (!this.#alive) {
      const { node } = this.options;
      const value = JSON.stringify({ node, since: new Date().toISOString() });
      await this.options.kv.txn([], [{ put: keys.nodeAlive(node), value, lease: this.#lease }]);
      this.#alive = true;
    }
    return this.#lease;
  }

  /**
   * A lease that is gone (the datastore was unreachable for longer than the
   * TTL) is replaced on the next recordStatus, which writes every record again.
   */
  async keepAlive(): Promise<boolean> {
    // Without a lease yet (none granted, or one just lost) one is granted
    // here: a renewal that succeeds without reaching etcd would count as
    // contact and keep a cut-off node from fencing (ADR 0009).
    if (this.#lease === undefined && this.options.statusTtlSeconds !== undefined) {
      await this.#currentLease();
      return true;
    }
    const lease = this.#lease;
    if (lease === undefined) return true;
    if (await this.options.kv.keepAliveLease(lease)) {
      // A liveness key whose write failed is written once the lease answers.
      if (!this.#alive) await this.#currentLease();
      return true;
    }
    this.options.logger.log("warn", "agent.lease", { lease, state: "lost, granting another" });
    this.#lease = undefined;
    return false;
  }

  async collect(): Promise<string[]> {
    return this.#collector ? this.#collector.sweep() : [];
  }
}

function sameStatus(a: FloatingIpStatus, b: FloatingIpStatus): boolean {
  return (
    a.ip === b.ip &&
    a.node === b.node &&
    a.internalIP === b.internalIP &&
    a.programmedSince === b.programmedSince &&
    a.announced === b.announced
  );
}

/** The claim keys of the floating IPs an endpoint record's ipNATs name (none if it has no such list). */
function requestedClaimKeys(value: unknown): string[] {
  const { ipNATs } = (value ?? {}) as { ipNATs?: unknown };
  if (!Array.isArray(ipNATs)) return [];
  return ipNATs.flatMap((nat: unknown) => {
    const ip = (nat as { externalIP?: unknown } | null)?.externalIP;
    if (typeof ip !== "string" || ip === "" || ip.includes("/")) return [];
    // The text as written and its canonical form (the claim's key is the latter).
    return [...new Set([ip, canonicalAddress(ip) ?? ip])].map((text) => keys.claim(text));
  });
}

function raw(entry: KvEntry): RawRecord {
  let value: unknown;
  try {
    value = JSON.parse(entry.value);
  } catch {
    value = undefined;
  }
  return { key: entry.key, version: String(entry.modRevision), value };
}
