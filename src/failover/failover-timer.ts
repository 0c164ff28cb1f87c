// How long each failover took (issue 15's histogram): from the controller
// finding a FloatingIP's holder lost to the new holder's node reporting the
// moved claim programmed. Pure, the clock passed in. A claim's `version`
// is anything that grows with every move of it (a Kubernetes generation, an
// etcd revision), so a later holder's loss starts the clock again and a
// report about the claim before the move never stops it.
import type { LossReason } from "./choose-holder.js";

interface Loss {
  at: number;
  reason: LossReason;
  version: number;
}

export class FailoverTimer {
  readonly #losses = new Map<string, Loss>();

  /** The holder of the claim at `version` is lost, for `reason`: the clock starts (once per version). */
  lost(key: string, reason: LossReason, version: number, now: number): void {
    if ((this.#losses.get(key)?.version ?? -1) < version) {
      this.#losses.set(key, { at: now, reason, version });
    }
  }

  /** Why the current failover of `key` began, if one is running. */
  reason(key: string): LossReason | undefined {
    return this.#losses.get(key)?.reason;
  }

  /**
   * The claim at `version` is programmed on its holder's node: the
   * failover's reason and seconds when this ends one (a move after the loss).
   */
  programmed(
    key: string,
    version: number,
    now: number,
  ): { reason: LossReason; seconds: number } | undefined {
    const loss = this.#losses.get(key);
    if (!loss || version <= loss.version) return undefined;
    this.#losses.delete(key);
    return { reason: loss.reason, seconds: (now - loss.at) / 1000 };
  }

  /** The holder recovered before anyone took over (its claim not moved since): nothing to time. */
  recovered(key: string, version: number): void {
    const loss = this.#losses.get(key);
    if (loss && version <= loss.version) this.#losses.delete(key);
  }

  forget(key: string): void {
    this.#losses.delete(key);
  }
}
