// `buoy apply` of files larger than one etcd transaction, on the in-memory
// Kv, which refuses more than MAX_TXN_OPS operations as etcd does (the Kv
// conformance suite holds both to it).
import { describe, expect, it } from "vitest";
import type { Resource } from "../cli/manifest.js";
import { MAX_TXN_OPS } from "../datastore/kv.js";
import { validatePool } from "../ipam/pool.js";
import { applyInParts } from "./apply-in-parts.js";
import { MemoryKv } from "./memory-kv.js";
import { keys, Store } from "./store.js";

const node = (i: number): Resource => ({
  kind: "Node",
  source: `document ${i + 1}`,
  node: { name: `node-${i}`, addresses: [`192.168.${i >> 8}.${i & 255}`] },
});
const pool = (name: string, cidr: string): Resource => ({
  kind: "IPPool",
  source: name,
  pool: validatePool(name, { cidr }),
});

describe("applyInParts()", () => {
  it("applies 10,000 nodes and two pools, the pools first, saying how far it got", async () => {
    const store = new Store(new MemoryKv());
    const resources = [
      ...Array.from({ length: 10_000 }, (_, i) => node(i)),
      pool("a", "10.0.0.0/16"),
      pool("b", "10.1.0.0/16"),
    ];
    const progress: number[] = [];
    await applyInParts(store, resources, "apply big.yaml", (applied) => progress.push(applied));
    expect((await store.listNodes()).length).toBe(10_000);
    expect((await store.listPools()).map((stored) => stored.name)).toEqual(["a", "b"]);
    expect(progress[0]).toBe(2);
    expect(progress.at(-1)).toBe(10_002);
    expect(progress.length).toBe(1 + Math.ceil(10_000 / MAX_TXN_OPS));
    // Applied again: every record compared at its revision, nothing refused.
    await applyInParts(store, resources, "apply big.yaml");
    expect((await store.listNodes()).length).toBe(10_000);
  });

  it("refuses the whole file before writing anything when one part would be refused", async () => {
    const store = new Store(new MemoryKv());
    const resources = [
      ...Array.from({ length: 500 }, (_, i) => node(i)),
      pool("a", "10.0.0.0/16"),
      pool("b", "10.0.0.0/24"),
    ];
    await expect(applyInParts(store, resources, "apply big.yaml")).rejects.toThrow(
      "IP pool a (10.0.0.0/16) overlaps IP pool b (10.0.0.0/24)",
    );
    expect(await store.kv.list(keys.nodes)).toEqual([]);
    expect(await store.listPools()).toEqual([]);
  });

  it("a file that fits is one transaction and says nothing of parts", async () => {
    const store = new Store(new MemoryKv());
    const progress: number[] = [];
    await applyInParts(store, [node(1), pool("a", "10.0.0.0/16")], "apply", (n) =>
      progress.push(n),
    );
    expect(progress).toEqual([]);
    expect((await store.listNodes()).map((stored) => stored.name)).toEqual(["node-1"]);
  });

  it("more pools than one transaction holds: refused with what to do, nothing written", async () => {
    const store = new Store(new MemoryKv());
    const pools = Array.from({ length: MAX_TXN_OPS }, (_, i) => pool(`p${i}`, `10.${i}.0.0/16`));
    await expect(applyInParts(store, pools, "apply pools.yaml")).rejects.toThrow(
      /apply pools.yaml: its 128 IP pools make a transaction of 129 operations, more than etcd accepts \(128\); apply them in smaller files/,
    );
    expect(await store.listPools()).toEqual([]);
  });
});
