// Releases floating-IP claims whose holder is gone without a DEL: its
// endpoint deleted (a node is removed only once its endpoints are: `buoy
// delete node` refuses before, and a dead node's endpoints are deleted by
// whoever removes it). Node records themselves are not a signal: they are
// optional, and a node without one is not a removed node. A claim must be
// seen orphaned, unchanged, for a grace period before it goes, and it is
// deleted only at the revision it was seen at, so a claim taken over
// meanwhile is never touched. Every agent sweeps; the compare makes that safe.
import type { FloatingIpClaim, Versioned, WorkloadEndpoint } from "../model/records.js";
import { fitRecord } from "../model/record-shapes.js";
import { keys, type Store } from "./store.js";
import type { KvEntry } from "../datastore/kv.js";
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
}

export class ClaimCollector {
  /** First time each orphan was seen, by `ip@revision`. */
  #seen = new Map<string, number>();

  constructor(private readonly options: ClaimCollectorOptions) {}

  /** One pass; resolves to the floating IPs released. */
  async sweep(): Promise<string[]> {
    const { store, graceMs, logger } = this.options;
    const now = (this.options.now ?? performance.now.bind(performance))();
    const [claimEntries = [], endpointEntries = []] = await store.kv.readMany([
      { prefix: keys.claims },
      { prefix: keys.endpoints },
    ]);
    const claims = fitted("claim", claimEntries).map(({ value, entry }) => ({
      value,
      revision: String(entry.modRevision),
    }));
    const orphans = findOrphanClaims(
      claims,
      fitted("endpoint", endpointEntries).map(({ value }) => value),
    );
    const seen = new Map<string, number>();
    const released: string[] = [];
    for (const orphan of orphans) {
      const key = `${orphan.claim.ip}@${orphan.revision}`;
      const since = this.#seen.get(key) ?? now;
      seen.set(key, since);
      if (now - since < graceMs) continue;
      const claimKey = keys.claim(orphan.claim.ip);
      const done = await store.kv.txn(
        [{ key: claimKey, modRevision: Number(orphan.revision) }],
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
    this.#seen = seen;
    return released;
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
