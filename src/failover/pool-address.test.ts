import { describe, expect, it } from "vitest";
import { storedPool } from "../ipam/pool.js";
import {
  inPool,
  PoolAttempts,
  poolAddressCandidates,
  poolRepresentative,
  poolToAllocateFrom,
} from "./pool-address.js";

/** A disabled pool (floating IPs only), its blocks as wide as it when it is small. */
const pool = (name: string, cidr: string, namespaceSelector?: string) => {
  const length = Number(cidr.split("/")[1]);
  const blockSize = cidr.includes(":") ? Math.max(length, 116) : Math.max(length, 26);
  return storedPool(name, { cidr, blockSize, disabled: true, namespaceSelector });
};

describe("poolToAllocateFrom", () => {
  const pools = [pool("open", "203.0.113.0/28"), pool("bank", "198.51.100.0/28", "tier == 'bank'")];

  it("gives the pool a namespace may use", () => {
    expect(poolToAllocateFrom("open", pools, "shop", {}).name).toBe("open");
    expect(poolToAllocateFrom("bank", pools, "vault", { tier: "bank" }).name).toBe("bank");
  });

  it("refuses a pool that does not exist, and one the namespace may not use", () => {
    expect(() => poolToAllocateFrom("nope", pools, "shop", {})).toThrow(
      "spec.pool names no IP pool: 'nope'",
    );
    expect(() => poolToAllocateFrom("bank", pools, "shop", { tier: "web" })).toThrow(
      "IP pool bank is not one namespace shop may use",
    );
  });
});

describe("poolAddressCandidates", () => {
  it("walks the whole of a small pool once, leaving out its first and last address", () => {
    const all = [...poolAddressCandidates(pool("p", "203.0.113.0/29"), "uid-1", 32)];
    expect(all.sort()).toEqual([1, 2, 3, 4, 5, 6].map((n) => `203.0.113.${n}`));
  });

  it("starts where the seed says: the same for a seed, elsewhere for another", () => {
    const big = pool("p", "10.96.0.0/16");
    const first = (seed: string) => [...poolAddressCandidates(big, seed, 1)][0];
    expect(first("uid-1")).toBe(first("uid-1"));
    const starts = new Set(["a", "b", "c", "d", "e", "f", "g", "h"].map(first));
    expect(starts.size).toBeGreaterThan(4);
    for (const address of starts) expect(inPool(String(address), big)).toBe(true);
  });

  it("yields at most the limit, and skips what it is told is taken", () => {
    const p = pool("p", "203.0.113.0/24");
    expect([...poolAddressCandidates(p, "s", 5)]).toHaveLength(5);
    const free = [...poolAddressCandidates(p, "s", 5, (ip) => ip.endsWith("7"))];
    expect(free).toHaveLength(5);
    expect(free.some((ip) => ip.endsWith("7"))).toBe(false);
  });

  it("ends when everything is skipped, without walking a large pool", () => {
    const huge = pool("p", "fd00:96::/64");
    let asked = 0;
    const none = [
      ...poolAddressCandidates(huge, "s", 32, () => {
        asked++;
        return true;
      }),
    ];
    expect(none).toEqual([]);
    expect(asked).toBeLessThanOrEqual(128);
  });

  it("covers single-address pools and IPv6", () => {
    expect([...poolAddressCandidates(pool("p", "203.0.113.9/32"), "s")]).toEqual(["203.0.113.9"]);
    const six = [...poolAddressCandidates(pool("p", "fd00:96::/126"), "s")];
    expect(six.sort()).toEqual(["fd00:96::1", "fd00:96::2", "fd00:96::3"]);
    expect(poolRepresentative(pool("p", "fd00:96::/126"))).toBe("fd00:96::");
  });
});

describe("attempts after a full walk", () => {
  it("look further round the pool, so a pool full only where the first walk looked is not full", () => {
    const p = pool("p", "203.0.113.0/24");
    // Everything the first walk (128 addresses) sees is taken.
    const first = new Set(poolAddressCandidates(p, "s", 32, () => false, 0));
    const seen = new Set<string>();
    for (const address of poolAddressCandidates(p, "s", 128, () => false, 0)) seen.add(address);
    const taken = (ip: string) => seen.has(ip);
    expect([...poolAddressCandidates(p, "s", 32, taken, 0)]).toEqual([]);
    const second = [...poolAddressCandidates(p, "s", 32, taken, 1)];
    expect(second.length).toBeGreaterThan(0);
    for (const address of second) expect(first.has(address) || seen.has(address)).toBe(false);
  });

  it("PoolAttempts: one wait per full attempt, whatever the events, then the next attempt", () => {
    const attempts = new PoolAttempts(5000);
    expect(attempts.next("a", 0)).toBe(0);
    expect(attempts.wasFull("a", 0)).toBe(true);
    expect(attempts.next("a", 100)).toBeUndefined();
    expect(attempts.wasFull("a", 100)).toBe(false); // no second timer
    expect(attempts.next("a", 5000)).toBe(1);
    expect(attempts.wasFull("a", 5000)).toBe(true);
    expect(attempts.next("a", 10_000)).toBe(2);
    attempts.forget("a");
    expect(attempts.next("a", 10_000)).toBe(0);
  });
});
