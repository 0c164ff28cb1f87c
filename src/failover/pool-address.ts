// Where a FloatingIP with spec.pool gets its address (issue 15): the pool is
// one its namespace may use, and the addresses it tries start at a point its
// uid fixes and go round the pool, so a retry, a restart or another replica
// tries the same ones in the same order, and two FloatingIPs rarely try the
// same first. Which of them is free is the datastore's to say (a claim is
// created only if absent); at most ALLOCATION_TRIES are tried per attempt,
// so a full pool costs a bounded number of reads, never a walk of it. Pure.
import { FloatingIpError } from "../floating/annotation.js";
import { poolPrefix, poolSelectsNamespace } from "../ipam/pool.js";
import type { IpPool } from "../model/records.js";
import type { Labels } from "../model/selector.js";
import { formatAddress, prefixContains, parseAddress, prefixSize } from "../net/address.js";

/** Addresses tried per attempt before the pool is reported full. */
export const ALLOCATION_TRIES = 32;

/** The pool `name`, which `namespace` (with these labels) may use; else why not. */
export function poolToAllocateFrom(
  name: string,
  pools: readonly IpPool[],
  namespace: string,
  labels: Labels,
): IpPool {
  const pool = pools.find((candidate) => candidate.name === name);
  if (!pool) throw new FloatingIpError(`spec.pool names no IP pool: '${name}'`);
  if (!poolSelectsNamespace(pool, labels)) {
    throw new FloatingIpError(`IP pool ${pool.name} is not one namespace ${namespace} may use`);
  }
  return pool;
}

/** Whether `address` lies in `pool`. */
export function inPool(address: string, pool: IpPool): boolean {
  const parsed = parseAddress(address);
  return parsed !== undefined && prefixContains(poolPrefix(pool), parsed);
}

/**
 * An address of the pool to stand for any of it (its family, for choosing
 * pods with an address of that family before one is allocated).
 */
export function poolRepresentative(pool: IpPool): string {
  const prefix = poolPrefix(pool);
  return formatAddress({ family: prefix.family, value: prefix.base });
}

/**
 * The pool's addresses in the order `seed` (the FloatingIP's uid) fixes, at
 * most `limit`, skipping `skip(address)`, walking at most `limit` x 4 of
 * them. `attempt` n starts n such walks further on, so attempts after a full
 * one cover the rest of the pool. An IPv4 pool of more than two addresses
 * leaves out its first and last (network and broadcast to routers that take
 * the pool as a subnet); an IPv6 one its first (subnet-router anycast).
 */
export function* poolAddressCandidates(
  pool: IpPool,
  seed: string,
  limit = ALLOCATION_TRIES,
  skip: (address: string) => boolean = () => false,
  attempt = 0,
): Generator<string> {
  const prefix = poolPrefix(pool);
  const size = prefixSize(prefix);
  const reserved =
    prefix.family === 4 ? (size > 2n ? [1n, 1n] : [0n, 0n]) : size > 1n ? [1n, 0n] : [0n, 0n];
  const [low = 0n, high = 0n] = reserved;
  const usable = size - low - high;
  const walk = BigInt(limit) * 4n;
  const start = (fnv1a64(seed) + BigInt(attempt) * walk) % usable;
  let yielded = 0;
  // Skipped addresses count toward the bound too: the walk is bounded either way.
  for (let i = 0n; i < usable && i < walk && yielded < limit; i++) {
    const value = prefix.base + low + ((start + i) % usable);
    const address = formatAddress({ family: prefix.family, value });
    if (skip(address)) continue;
    yielded++;
    yield address;
  }
}

/** FNV-1a, 64 bits, of the text's UTF-16 code units: a spread, not a secret. */
function fnv1a64(text: string): bigint {
  let hash = 0xcbf29ce484222325n;
  for (let i = 0; i < text.length; i++) {
    hash ^= BigInt(text.charCodeAt(i));
    hash = (hash * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return hash;
}

/**
 * The pool FloatingIPs that found their pool full: how many attempts, and
 * not before when the next. A full attempt is repeated only after `waitMs`
 * however many events come meanwhile (one retry timer per attempt), and each
 * one looks further round the pool (poolAddressCandidates' `attempt`).
 */
export class PoolAttempts {
  readonly #full = new Map<string, { attempts: number; until: number }>();

  constructor(private readonly waitMs: number) {}

  /** The attempt to make now, or undefined while the last full one waits out. */
  next(key: string, now: number): number | undefined {
    const last = this.#full.get(key);
    if (!last) return 0;
    return now < last.until ? undefined : last.attempts;
  }

  /** The pool was full: true when this starts a new wait (set one retry timer then). */
  wasFull(key: string, now: number): boolean {
    const last = this.#full.get(key);
    if (last && now < last.until) return false;
    this.#full.set(key, { attempts: (last?.attempts ?? 0) + 1, until: now + this.waitMs });
    return true;
  }

  /** An address was found, or the FloatingIP is gone. */
  forget(key: string): void {
    this.#full.delete(key);
  }
}
