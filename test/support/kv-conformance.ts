// One suite, two implementations: the in-memory fake (unit tests) and etcd
// through its JSON gateway (integration tests) must behave the same.
import { describe, expect, it } from "vitest";
import {
  MAX_TXN_OPS,
  TooManyOperationsError,
  type Kv,
  type WatchSignal,
} from "../../src/datastore/kv.js";

/** How the suite waits: real time for a real store, a clock moved by hand for a fake. */
export interface ConformanceClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

const realTime: ConformanceClock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

// Real etcd expires leases with about a second of slack and grants at least 2 s.
const LEASE_EXPIRY_LIMIT_MS = 5000;
const POLL_MS = 100;

export function kvConformance(
  name: string,
  makeKv: () => Promise<Kv> | Kv,
  clock: ConformanceClock = realTime,
): void {
  describe(`${name} conformance`, () => {
    const fresh = async () => makeKv();
    const unique = () => `/conformance/${Math.random().toString(36).slice(2)}/`;

    /** Polls until `key` is gone; resolves to the clock's time then. */
    const waitUntilGone = async (kv: Kv, key: string, startMs: number): Promise<number> => {
      while ((await kv.get(key)) !== undefined) {
        if (clock.now() - startMs > LEASE_EXPIRY_LIMIT_MS) {
          throw new Error(`${key} still there ${LEASE_EXPIRY_LIMIT_MS} ms after its lease's TTL`);
        }
        await clock.sleep(POLL_MS);
      }
      return clock.now();
    };

    /** Watches `prefix`, runs `act` once the watch is ready, resolves to the signals seen. */
    const watchWhile = async (
      kv: Kv,
      prefix: string,
      act: () => Promise<void>,
    ): Promise<WatchSignal[]> => {
      const controller = new AbortController();
      const seen: WatchSignal[] = [];
      for await (const signal of kv.watch(prefix, controller.signal)) {
        seen.push(signal);
        if (signal === "ready") await act();
        if (signal !== "ready") controller.abort();
      }
      return seen;
    };

    it("get() of a missing key is undefined", async () => {
      const kv = await fresh();
      expect(await kv.get(`${unique()}missing`)).toBeUndefined();
    });

    it("txn() with createRevision 0 creates once and only once", async () => {
      const kv = await fresh();
      const key = `${unique()}claim`;
      const create = () => kv.txn([{ key, createRevision: 0 }], [{ put: key, value: "a" }]);
      expect(await create()).toBe(true);
      expect(await create()).toBe(false);
      const entry = await kv.get(key);
      expect(entry?.value).toBe("a");
      expect(entry?.createRevision).toBeGreaterThan(0);
      expect(entry?.modRevision).toBe(entry?.createRevision);
    });

    it("txn() on modRevision is a compare-and-swap", async () => {
      const kv = await fresh();
      const key = `${unique()}block`;
      await kv.txn([], [{ put: key, value: "1" }]);
      const first = (await kv.get(key))!;
      expect(
        await kv.txn([{ key, modRevision: first.modRevision }], [{ put: key, value: "2" }]),
      ).toBe(true);
      expect(
        await kv.txn([{ key, modRevision: first.modRevision }], [{ put: key, value: "3" }]),
      ).toBe(false);
      const second = (await kv.get(key))!;
      expect(second.value).toBe("2");
      expect(second.modRevision).toBeGreaterThan(first.modRevision);
      expect(second.createRevision).toBe(first.createRevision);
    });

    it("txn() applies all operations or none", async () => {
      const kv = await fresh();
      const base = unique();
      await kv.txn([], [{ put: `${base}taken`, value: "x" }]);
      const ok = await kv.txn(
        [{ key: `${base}taken`, createRevision: 0 }],
        [
          { put: `${base}a`, value: "1" },
          { put: `${base}b`, value: "2" },
        ],
      );
      expect(ok).toBe(false);
      expect(await kv.list(base)).toHaveLength(1);
    });

    it("txn() can delete and put in one step", async () => {
      const kv = await fresh();
      const base = unique();
      await kv.txn([], [{ put: `${base}old`, value: "1" }]);
      expect(await kv.txn([], [{ delete: `${base}old` }, { put: `${base}new`, value: "2" }])).toBe(
        true,
      );
      expect((await kv.list(base)).map((entry) => entry.key)).toEqual([`${base}new`]);
    });

    it("txnAt() resolves to the modRevision of its puts, undefined when a compare fails", async () => {
      const kv = await fresh();
      const base = unique();
      const ops = [
        { put: `${base}a`, value: "1" },
        { put: `${base}b`, value: "2" },
      ];
      const revision = await kv.txnAt?.([], ops);
      expect((await kv.list(base)).map((entry) => entry.modRevision)).toEqual([revision, revision]);
      expect(await kv.txnAt?.([{ key: `${base}a`, createRevision: 0 }], ops)).toBeUndefined();
    });

    it("list() returns exactly the prefix, in key order", async () => {
      const kv = await fresh();
      const base = unique();
      for (const key of ["b", "a", "c/d"])
        await kv.txn([], [{ put: `${base}x/${key}`, value: key }]);
      await kv.txn([], [{ put: `${base}y`, value: "outside" }]);
      const listed = await kv.list(`${base}x/`);
      expect(listed.map((entry) => entry.value)).toEqual(["a", "b", "c/d"]);
    });

    it("listPage() pages through a prefix in key order, each key once", async () => {
      const kv = await fresh();
      const base = unique();
      for (const key of ["e", "a", "d", "b", "c", "b/x"])
        await kv.txn([], [{ put: `${base}x/${key}`, value: key }]);
      await kv.txn([], [{ put: `${base}y`, value: "outside" }]);
      const pages: string[][] = [];
      let after: string | undefined;
      for (;;) {
        const page = await kv.listPage(`${base}x/`, after, 2);
        if (page.length === 0) break;
        pages.push(page.map((entry) => entry.value));
        after = page.at(-1)?.key;
      }
      expect(pages).toEqual([
        ["a", "b"],
        ["b/x", "c"],
        ["d", "e"],
      ]);
    });

    it("count() counts the keys under a prefix and no other", async () => {
      const kv = await fresh();
      const base = unique();
      for (const key of ["a", "b", "b/x"])
        await kv.txn([], [{ put: `${base}x/${key}`, value: key }]);
      await kv.txn([], [{ put: `${base}y`, value: "outside" }]);
      expect(await kv.count?.(`${base}x/`)).toBe(3);
      expect(await kv.count?.(`${base}z/`)).toBe(0);
    });

    it("readMany() answers keys and prefixes in order, empty when missing", async () => {
      const kv = await fresh();
      const base = unique();
      await kv.txn(
        [],
        [
          { put: `${base}p/1`, value: "1" },
          { put: `${base}p/2`, value: "2" },
          { put: `${base}k`, value: "k" },
          { put: `${base}kk`, value: "kk" },
        ],
      );
      const [prefixed, key, missing, none] = await kv.readMany([
        { prefix: `${base}p/` },
        { key: `${base}k` },
        { key: `${base}nope` },
        { prefix: `${base}q/` },
      ]);
      expect(prefixed?.map((entry) => entry.value)).toEqual(["1", "2"]);
      expect(key?.map((entry) => entry.value)).toEqual(["k"]);
      expect(missing).toEqual([]);
      expect(none).toEqual([]);
      expect(key?.[0]?.modRevision).toBeGreaterThan(0);
    });

    it("values round-trip unicode and JSON unchanged", async () => {
      const kv = await fresh();
      const key = `${unique()}ünï`;
      const value = JSON.stringify({ pod: "café", ip: "fd00::1" });
      await kv.txn([], [{ put: key, value }]);
      expect((await kv.get(key))?.value).toBe(value);
    });

    it("watch() says ready, then the keys each change under its prefix touched, until aborted", async () => {
      const kv = await fresh();
      const base = unique();
      const controller = new AbortController();
      const seen: WatchSignal[] = [];
      const watching = (async () => {
        for await (const signal of kv.watch(`${base}w/`, controller.signal)) {
          seen.push(signal);
          if (signal === "ready") {
            await kv.txn([], [{ put: `${base}other`, value: "x" }]);
            await kv.txn([], [{ put: `${base}w/a`, value: "1" }]);
            await kv.txn([], [{ delete: `${base}w/a` }]);
          }
          if (seen.length === 3) controller.abort();
        }
      })();
      await watching;
      expect(seen).toEqual([
        "ready",
        {
          changed: [`${base}w/a`],
          entries: [
            {
              key: `${base}w/a`,
              value: "1",
              createRevision: expect.any(Number),
              modRevision: expect.any(Number),
            },
          ],
        },
        { changed: [`${base}w/a`], entries: [undefined] },
      ]);
      const [, put] = seen as unknown as {
        entries: { createRevision: number; modRevision: number }[];
      }[];
      expect(put?.entries[0]?.modRevision).toBe(put?.entries[0]?.createRevision);
    });

    it("ping() resolves when the store answers", async () => {
      const kv = await fresh();
      await expect(kv.ping()).resolves.toBeUndefined();
    });

    it("grantLease() resolves to distinct decimal IDs and refuses a TTL that is not whole seconds", async () => {
      const kv = await fresh();
      const [a, b] = [await kv.grantLease(30), await kv.grantLease(30)];
      expect(a).toMatch(/^\d+$/);
      expect(b).toMatch(/^\d+$/);
      expect(a).not.toBe(b);
      await Promise.all([kv.revokeLease(a), kv.revokeLease(b)]);
      for (const ttl of [0, -1, 1.5, Number.NaN]) {
        await expect(kv.grantLease(ttl)).rejects.toThrow(/lease TTL must be a positive whole/);
      }
    });

    it("revokeLease() deletes the keys attached to the lease at a new revision, and watch() sees it", async () => {
      const kv = await fresh();
      const base = unique();
      const lease = await kv.grantLease(30);
      await kv.txn(
        [],
        [
          { put: `${base}s/leased`, value: "1", lease },
          { put: `${base}s/kept`, value: "2" },
        ],
      );
      const leased = (await kv.get(`${base}s/leased`))!;
      const seen = await watchWhile(kv, `${base}s/`, () => kv.revokeLease(lease));
      expect(seen).toEqual(["ready", { changed: [`${base}s/leased`], entries: [undefined] }]);
      expect((await kv.list(`${base}s/`)).map((entry) => entry.key)).toEqual([`${base}s/kept`]);
      await kv.txn([], [{ put: `${base}later`, value: "3" }]);
      // The revoke took a revision of its own, as a delete would.
      expect((await kv.get(`${base}later`))?.modRevision).toBeGreaterThan(leased.modRevision + 1);
      expect(await kv.keepAliveLease(lease)).toBe(false);
    });

    it("revokeLease() of a revoked or unknown lease resolves", async () => {
      const kv = await fresh();
      const lease = await kv.grantLease(30);
      await kv.revokeLease(lease);
      await expect(kv.revokeLease(lease)).resolves.toBeUndefined();
      await expect(kv.revokeLease("12345")).resolves.toBeUndefined();
    });

    it("keepAliveLease() resolves false for an unknown lease", async () => {
      const kv = await fresh();
      expect(await kv.keepAliveLease("12345")).toBe(false);
      expect(await kv.keepAliveLease("9223372036854775807")).toBe(false);
    });

    it("a lease without keep-alives expires on its own, deleting its keys, and watch() sees it", async () => {
      const kv = await fresh();
      const base = unique();
      const startMs = clock.now();
      const lease = await kv.grantLease(1);
      await kv.txn([], [{ put: `${base}e/status`, value: "up", lease }]);
      expect(await kv.get(`${base}e/status`)).toBeDefined();
      let goneMs = 0;
      const seen = await watchWhile(kv, `${base}e/`, async () => {
        goneMs = await waitUntilGone(kv, `${base}e/status`, startMs);
      });
      expect(seen).toEqual(["ready", { changed: [`${base}e/status`], entries: [undefined] }]);
      // Never before its TTL; the upper bound is waitUntilGone's limit.
      expect(goneMs - startMs).toBeGreaterThanOrEqual(1000);
      expect(await kv.keepAliveLease(lease)).toBe(false);
    });

    it("keepAliveLease() keeps the lease and its keys past the TTL", async () => {
      const kv = await fresh();
      const key = `${unique()}status`;
      const lease = await kv.grantLease(1);
      await kv.txn([], [{ put: key, value: "up", lease }]);
      // Well past the 1 s asked for and etcd's 2 s minimum.
      for (let i = 0; i < 8; i++) {
        await clock.sleep(400);
        expect(await kv.keepAliveLease(lease)).toBe(true);
      }
      expect((await kv.get(key))?.value).toBe("up");
      await kv.revokeLease(lease);
      expect(await kv.get(key)).toBeUndefined();
    });

    it("txn() put without a lease detaches the key from its lease", async () => {
      const kv = await fresh();
      const key = `${unique()}status`;
      const lease = await kv.grantLease(30);
      await kv.txn([], [{ put: key, value: "leased", lease }]);
      await kv.txn([], [{ put: key, value: "own" }]);
      await kv.revokeLease(lease);
      expect((await kv.get(key))?.value).toBe("own");
    });

    it(`txn() and readMany() take ${MAX_TXN_OPS} compares, operations or reads, and refuse one more`, async () => {
      const kv = await fresh();
      const base = unique();
      const keysOf = (n: number) => Array.from({ length: n }, (_, i) => `${base}${i}`);
      const puts = (n: number) => keysOf(n).map((key) => ({ put: key, value: "1" }));
      const absent = (n: number) => keysOf(n).map((key) => ({ key, createRevision: 0 }));
      await expect(kv.txn(absent(MAX_TXN_OPS + 1), [])).rejects.toThrow(TooManyOperationsError);
      await expect(kv.txn([], puts(MAX_TXN_OPS + 1))).rejects.toThrow(TooManyOperationsError);
      await expect(kv.readMany(keysOf(MAX_TXN_OPS + 1).map((key) => ({ key })))).rejects.toThrow(
        TooManyOperationsError,
      );
      expect(await kv.list(base)).toEqual([]);
      expect(await kv.txn(absent(MAX_TXN_OPS), puts(MAX_TXN_OPS))).toBe(true);
      const read = await kv.readMany(keysOf(MAX_TXN_OPS).map((key) => ({ key })));
      expect(read.flat()).toHaveLength(MAX_TXN_OPS);
    });

    it("txn() rejects a put on a lease that does not exist, applying nothing", async () => {
      const kv = await fresh();
      const base = unique();
      const lease = await kv.grantLease(30);
      await kv.revokeLease(lease);
      await expect(
        kv.txn(
          [],
          [
            { put: `${base}a`, value: "1" },
            { put: `${base}b`, value: "2", lease },
          ],
        ),
      ).rejects.toThrow(/lease.* not found/);
      expect(await kv.list(base)).toEqual([]);
      // A transaction whose compares fail never looks at the lease.
      expect(
        await kv.txn(
          [{ key: `${base}a`, modRevision: 1 }],
          [{ put: `${base}b`, value: "2", lease }],
        ),
      ).toBe(false);
    });
  });
}
