// Fencing (issue 13, ADR 0009): an agent that has not renewed its liveness
// for `fenceAfterMs` withdraws its floating-IP announcements before any other
// node may take them over (at the status TTL). Pure: the clock is an argument.

/** When the agent last reached its datastore, and how long it may go without. */
export interface FenceInput {
  /**
   * When the last renewal that succeeded was *sent* (ms, the agent's clock):
   * the datastore renewed the lease no earlier, so no other node takes over
   * before this plus the TTL.
   */
  lastContactAt: number;
  now: number;
  fenceAfterMs: number;
}

export interface FenceDecision {
  fenced: boolean;
  /** How long ago the last contact was (ms). */
  ageMs: number;
}

/** Fenced once the last contact is `fenceAfterMs` old or older. */
export function planFence(input: FenceInput): FenceDecision {
  const ageMs = Math.max(0, input.now - input.lastContactAt);
  return { fenced: ageMs >= input.fenceAfterMs, ageMs };
}

/**
 * Why `fenceAfterMs` is not usable with `ttlMs`, or undefined: it must leave
 * time to withdraw before the TTL, and be longer than the renewal period
 * (`renewMs`), else a healthy agent fences between two renewals.
 */
export function validateFenceAfter(
  fenceAfterMs: number,
  ttlMs: number,
  renewMs: number,
): string | undefined {
  if (!(fenceAfterMs > 0))
    return `must be a positive number of seconds, got ${fenceAfterMs / 1000}`;
  if (fenceAfterMs >= ttlMs)
    return `must be less than --status-ttl (${ttlMs / 1000} s), got ${fenceAfterMs / 1000} s`;
  if (fenceAfterMs <= renewMs)
    return `must be more than the renewal period (a third of --status-ttl, ${Number((renewMs / 1000).toFixed(3))} s), got ${fenceAfterMs / 1000} s`;
  return undefined;
}

/**
 * How long after its `failures`-th failure in a row a renewal is sent again.
 * The first retry comes quickly: with the default TTL (5 s, renewed every
 * 1.67 s, fenced at 2.5 s) a renewal that fails at once is retried at 1.92 s,
 * leaving 0.58 s for its answer (0.33 s with 500 ms). Later ones back off to
 * 500 ms, so nodes whose datastore is away ask it twice a second, not four
 * times.
 */
export function renewalRetryMs(failures: number): number {
  return failures <= 1 ? 250 : 500;
}

/** The exports without this node's floating IPs (`floating`: addresses), what a fenced node announces. */
export function withoutFloatingExports(
  exports: readonly string[],
  floating: ReadonlySet<string>,
): string[] {
  return exports.filter((prefix) => {
    const [address, length] = prefix.split("/");
    const host = length === "32" || length === "128";
    return !(host && address !== undefined && floating.has(address));
  });
}
