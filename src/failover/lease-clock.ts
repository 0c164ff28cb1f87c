// Whether a node's status Lease is still renewed, judged the way the agents
// judge it (ADR 0006): a Lease counts as lapsed when no change of it was seen
// for its duration, and time counts only while the Lease watch is heard
// from. Every live node renews its Lease every third of its duration, so a
// watch that works delivers a change every so often; time runs on for
// `grace` past the last change heard of any Lease, and stops there. A
// stalled watch or an API server away makes no node look lost; a node's
// clock never enters, only the observer's. Pure: times are passed in
// (monotonic ms).

export class LeaseClock {
  /** When each Lease was last seen to change, by name. */
  readonly #observed = new Map<string, { version: string; at: number }>();
  #upSince = 0;
  #heardAt = 0;

  /** @param grace how long past the last change heard time still runs (ms) */
  constructor(private readonly grace: number) {}

  /** The Lease watch was established (again): no Lease counts as older than now. */
  started(now: number): void {
    this.#upSince = now;
    this.#heardAt = now;
  }

  /** A Lease as the watch has it now (added or changed). */
  seen(name: string, version: string, now: number): void {
    if (this.#observed.get(name)?.version === version) return;
    this.#observed.set(name, { version, at: now });
    this.#heardAt = now;
  }

  forget(name: string): void {
    this.#observed.delete(name);
  }

  /** Forgets every Lease not in `names` (deleted ones). */
  forgetAllBut(names: ReadonlySet<string>): void {
    for (const name of this.#observed.keys()) if (!names.has(name)) this.#observed.delete(name);
  }

  /** Whether `name` (absent: never renewed) was seen to change within `durationMs`. */
  live(name: string, durationMs: number, now: number): boolean {
    const observed = this.#observed.get(name);
    if (!observed) return false;
    const judged = Math.min(now, this.#heardAt + this.grace);
    return judged - Math.max(observed.at, this.#upSince) <= durationMs;
  }
}
