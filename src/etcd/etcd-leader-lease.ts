// One FloatingIP controller at a time on etcd (issue 15 item 4): the
// replicas race to create one key under a lease of their own; the holder
// keeps the lease alive, the others look again every renewal period until
// the key is gone (revoked on a clean stop, or expired with the lease).
// A holder that has not renewed for most of the TTL, counted from when it
// sent its last renewal that succeeded, gives up (its process ends), so it
// has stopped before etcd lets the key go: etcd renewed no earlier than
// asked, and expires the key a whole TTL after that.
import type { Kv } from "../datastore/kv.js";
import { keys } from "./store.js";

export interface EtcdLeaderLeaseOptions {
  kv: Kv;
  /** This replica's name in the key. */
  identity: string;
  ttlSeconds: number;
  /** Monotonic milliseconds. */
  now: () => number;
}

export class EtcdLeaderLease {
  #lease: string | undefined;
  /** When the last renewal (or the creation) that succeeded was sent. */
  #renewedAt: number | undefined;

  constructor(private readonly options: EtcdLeaderLeaseOptions) {}

  get leading(): boolean {
    const at = this.#renewedAt;
    return at !== undefined && this.options.now() - at < this.options.ttlSeconds * 800;
  }

  /** Renews the lease, or takes the key when it is free; whether this replica holds it now. */
  async tryAcquireOrRenew(): Promise<boolean> {
    const { kv, identity, ttlSeconds, now } = this.options;
    const sent = now();
    if (this.#lease !== undefined) {
      if (await kv.keepAliveLease(this.#lease)) {
        this.#renewedAt = sent;
        return true;
      }
      // Expired: the key went with it, and this replica stopped acting.
      this.#lease = undefined;
      this.#renewedAt = undefined;
      return false;
    }
    if (await kv.get(keys.controllerLeader)) return false;
    const lease = await kv.grantLease(ttlSeconds);
    const value = JSON.stringify({ identity, since: new Date().toISOString() });
    const won = await kv
      .txn(
        [{ key: keys.controllerLeader, createRevision: 0 }],
        [{ put: keys.controllerLeader, value, lease }],
      )
      .catch(async (error: unknown) => {
        await kv.revokeLease(lease).catch(() => undefined);
        throw error;
      });
    if (!won) {
      await kv.revokeLease(lease).catch(() => undefined);
      return false;
    }
    this.#lease = lease;
    this.#renewedAt = sent;
    return true;
  }

  /** Gives the key up (on a clean stop): a standby need not wait out the TTL. */
  async release(): Promise<void> {
    const lease = this.#lease;
    if (lease === undefined) return;
    this.#lease = undefined;
    this.#renewedAt = undefined;
    await this.options.kv.revokeLease(lease);
  }
}
