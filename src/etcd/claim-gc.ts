// Releases floating-IP claims whose holder is gone without a DEL: its
// endpoint deleted (a node is removed only once its endpoints are: `buoy
// delete node` refuses before, and a dead node's endpoints are deleted by
// whoever removes it). Node records themselves are not a signal: they are
// optional, and a node without one is not a removed node. A claim must be
// seen orphaned, unchanged, for a grace period before it goes, and it is
// deleted only at the revision it was seen at, so a claim taken over
// meanwhile is never touched. Every agent sweeps; the compare makes that safe.
// A container with a claim intent (an ADD making its claims in parts, ADR
// 0012) counts as a holder until the intent's lease ends, and a claim is
// deleted only if no intent of its holder exists at that revision.
import type { FloatingIpClaim, Versioned, WorkloadEndpoint } from "../model/records.js";
import { fitRecord } from "../model/record-shapes.js";
import { keys, type Store } from "./store.js";
import { MAX_TXN_OPS, type KvEntry } from "../datastore/kv.js";
import { inParts } from "../datastore/in-parts.js";
import type { Logger } from "../log/logger.js";

export interface OrphanClaim {
  claim: FloatingIpClaim;
  revision: string;
  reason: string;
}

/** Claims no live holder stands behind (pure). */
export function findOrphanClaims(
  claims: readonly Versioned<FloatingIpClaim>[],
  endpoints: readonly Pick<WorkloadEndpoint, "node" | "containerID">[],
): OrphanClaim[] {
  const holders = new Set(endpoints.map((endpoint) => `${endpoint.node}/${endpoint.containerID}`));
  const orphans: OrphanClaim[] = [];
  for (const { value: claim, revision } of claims) {
    if (!holders.has(`${claim.node}/${claim.containerID}`)) {
      orphans.push({
        claim,
        revision,
        reason: `container ${claim.containerID.slice(0, 12)} has no endpoint on node ${claim.node}`,
      });
    }
  }
  return orphans;
}

export interface ClaimCollectorOptions {
  store: Store;
  graceMs: number;
  logger: Logger;
  /** Monotonic milliseconds. */
  now?: () => number;
  /** Claims per sweep (SWEEP_PAGE). */
  pageSize?: number;
}

/**
 * Claims looked at per sweep (issue 14: a sweep costs the same in any
 * cluster). Every claim is looked at again after claims / SWEEP_PAGE sweeps:
 * with 100k claims and the default 10 s resync, about every 8 minutes.
 */
export const SWEEP_PAGE = 2048;

export class ClaimCollector {
  /** First time each orphan was seen, by `ip@revision`. */
  #seen = new Map<string, number>();
  /** The last claim key of the previous page; undefined: start from the first. */
  #cursor: string | undefined;
  /** Orphans seen since the pass over every page began (the rest are gone: forgotten at its end). */
  #pass = new Set<string>();

  constructor(private readonly options: ClaimCollectorOptions) {}

  /**
   * One pass over the next page of claims, each holder's endpoint read by
   * its node and container; resolves to the floating IPs released.
   */
  async sweep(): Promise<string[]> {
    const { store, graceMs, logger } = this.options;
    const now = (this.options.now ?? performance.now.bind(performance))();
    const size = this.options.pageSize ?? SWEEP_PAGE;
    const page = await store.kv.listPage(keys.claims, this.#cursor, size);
    const lastPage = page.length < size;
    this.#cursor = lastPage ? undefined : page.at(-1)?.key;
    const listed = fitted("claim", page);
    const claims = listed.map(({ value, entry }) => ({
      value,
      revision: String(entry.modRevision),
    }));
    // Deleted by the key it was listed under: a record whose ip does not
    // match its key (written past buoy) still goes.
    const keyOf = new Map(listed.map(({ value, entry }) => [value, entry.key]));
    const holders = [
      ...new Map(
        claims.flatMap(({ value }) => {
          const holder = holderKeys(value.node, value.containerID);
          return holder ? [[holder.endpoints, holder] as const] : [];
        }),
      ).values(),
    ];
    // Each holder's endpoints and claim intent, at one revision: an ADD in
    // parts (ADR 0012) has its intent until the part that writes its endpoint.
    const found = await inParts(holders, Math.floor(MAX_TXN_OPS / 2), 4, (part) =>
      store.kv.readMany(
        part.flatMap(({ endpoints, intent }) => [{ prefix: endpoints }, { key: intent }]),
      ),
    );
    const entries = found.flat(2);
    const orphans = findOrphanClaims(claims, [
      ...fitted("endpoint", entries).map(({ value }) => value),
      ...intentHolders(entries),
    ]);
    // What this page says replaces what earlier passes saw of its claims.
    const paged = new Set(claims.map(({ value }) => value.ip));
    const earlier = new Map<string, number>();
    for (const [key, since] of this.#seen) {
      if (!paged.has(key.slice(0, key.lastIndexOf("@")))) continue;
      earlier.set(key, since);
      this.#seen.delete(key);
    }
    const seen = new Map<string, number>();
    const released: string[] = [];
    for (const orphan of orphans) {
      const key = `${orphan.claim.ip}@${orphan.revision}`;
      const since = earlier.get(key) ?? now;
      seen.set(key, since);
      if (now - since < graceMs) continue;
      const claimKey = keyOf.get(orphan.claim) ?? keys.claim(orphan.claim.ip);
      // Only if no claim intent appeared meanwhile (an ADD reusing the container's claims).
      const intentKey = holderKeys(orphan.claim.node, orphan.claim.containerID)?.intent;
      const done = await store.kv.txn(
        [
          { key: claimKey, modRevision: Number(orphan.revision) },
          ...(intentKey ? [{ key: intentKey, createRevision: 0 }] : []),
        ],
        [{ delete: claimKey }],
      );
      seen.delete(key);
      if (!done) continue;
      released.push(orphan.claim.ip);
      logger.log("info", "agent.gc", {
        released: orphan.claim.ip,
        holder: `${orphan.claim.namespace}/${orphan.claim.pod}`,
        reason: orphan.reason,
        orphanedForMs: Math.round(now - since),
      });
    }
    for (const [key, since] of seen) {
      this.#seen.set(key, since);
      this.#pass.add(key);
    }
    if (lastPage) {
      for (const key of this.#seen.keys()) if (!this.#pass.has(key)) this.#seen.delete(key);
      this.#pass = new Set();
    }
    return released;
  }
}

/**
 * The key prefix of a container's endpoints and the key of its claim
 * intent; undefined when no endpoint can have these names.
 */
function holderKeys(
  node: string,
  containerID: string,
): { endpoints: string; intent: string } | undefined {
  try {
    return {
      endpoints: keys.endpoint(node, containerID, "x").slice(0, -1),
      intent: keys.claimIntent(node, containerID),
    };
  } catch {
    return undefined;
  }
}

function fitted<K extends "claim" | "endpoint">(kind: K, entries: readonly KvEntry[]) {
  return entries.flatMap((entry) => {
    let value: ReturnType<typeof fitRecord<K>>;
    try {
      value = fitRecord(kind, JSON.parse(entry.value));
    } catch {
      value = undefined;
    }
    return value ? [{ value, entry }] : [];
  });
}

/** The holders whose claim intents are among `entries` (by key: node and container). */
function intentHolders(
  entries: readonly KvEntry[],
): Pick<WorkloadEndpoint, "node" | "containerID">[] {
  return entries.flatMap((entry) => {
    if (!entry.key.startsWith(keys.claimIntents)) return [];
    const [node, containerID] = entry.key.slice(keys.claimIntents.length).split("/");
    return node && containerID ? [{ node, containerID }] : [];
  });
}
