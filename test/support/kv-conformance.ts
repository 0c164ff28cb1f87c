// One suite, two implementations: the in-memory fake (unit tests) and etcd
// through its JSON gateway (integration tests) must behave the same.
import { describe, expect, it } from "vitest";
import type { Kv } from "../../src/datastore/kv.js";

export function kvConformance(name: string, makeKv: () => Promise<Kv> | Kv): void {
  describe(`${name} conformance`, () => {
    const fresh = async () => makeKv();
    const unique = () => `/conformance/${Math.random().toString(36).slice(2)}/`;

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

    it("list() returns exactly the prefix, in key order", async () => {
      const kv = await fresh();
      const base = unique();
      for (const key of ["b", "a", "c/d"])
        await kv.txn([], [{ put: `${base}x/${key}`, value: key }]);
      await kv.txn([], [{ put: `${base}y`, value: "outside" }]);
      const listed = await kv.list(`${base}x/`);
      expect(listed.map((entry) => entry.value)).toEqual(["a", "b", "c/d"]);
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

    it("watch() says ready, then signals changes under its prefix only, until aborted", async () => {
      const kv = await fresh();
      const base = unique();
      const controller = new AbortController();
      const seen: string[] = [];
      const watching = (async () => {
        for await (const signal of kv.watch(`${base}w/`, controller.signal)) {
          seen.push(signal);
          if (signal === "ready") {
            await kv.txn([], [{ put: `${base}other`, value: "x" }]);
            await kv.txn([], [{ put: `${base}w/a`, value: "1" }]);
          }
          if (seen.length === 2) controller.abort();
        }
      })();
      await watching;
      expect(seen).toEqual(["ready", "changed"]);
    });

    it("ping() resolves when the store answers", async () => {
      const kv = await fresh();
      await expect(kv.ping()).resolves.toBeUndefined();
    });
  });
}
