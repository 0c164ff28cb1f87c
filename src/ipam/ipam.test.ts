import { describe, expect, it } from "vitest";
import { MemoryKv } from "../etcd/memory-kv.js";
import { keys, Store } from "../etcd/store.js";
import { EtcdDatastore } from "../etcd/etcd-datastore.js";
import type { AllocationOwner } from "../model/records.js";
import { assignAddress, IpamExhaustedError, listNodeHandles, releaseHandle } from "./ipam.js";
import { validatePool } from "./pool.js";

/** An etcd datastore over an in-memory Kv; `kv` reads the records IPAM wrote. */
async function storeWith(
  ...pools: [string, Record<string, unknown>][]
): Promise<EtcdDatastore & { kv: MemoryKv }> {
  const kv = new MemoryKv();
  const store = new Store(kv);
  for (const [name, spec] of pools) await store.putPool(validatePool(name, spec));
  return Object.assign(new EtcdDatastore(store), { kv });
}
const owner = (handle: string, node = "n1"): AllocationOwner => ({
  handle,
  node,
  namespace: "ns",
  pod: handle,
});

describe("assignAddress()", () => {
  it("assignAddress() claims a block affine to the node and fills it in order", async () => {
    const store = await storeWith(["pods", { cidr: "10.244.0.0/16" }]);
    const a = await assignAddress(store, { family: 4, owner: owner("a"), pools: [] });
    const b = await assignAddress(store, { family: 4, owner: owner("b"), pools: [] });
    expect([a, b]).toEqual(["10.244.0.0", "10.244.0.1"]);
    const blocks = await store.listBlocks();
    expect(blocks.map((block) => [block.value.cidr, block.value.affinity])).toEqual([
      ["10.244.0.0/26", "n1"],
    ]);
    // The affinity record routing agents watch, written once with the block.
    const affinities = await store.kv.list(keys.affinities);
    expect(affinities.map((entry) => [entry.key, JSON.parse(entry.value)])).toEqual([
      [keys.affinity("n1", "10.244.0.0/26"), { cidr: "10.244.0.0/26", node: "n1" }],
    ]);
    expect(affinities[0]?.modRevision).toBe(affinities[0]?.createRevision);
  });

  it("assignAddress() gives another node its own block", async () => {
    const store = await storeWith(["pods", { cidr: "10.244.0.0/16" }]);
    await assignAddress(store, { family: 4, owner: owner("a", "n1"), pools: [] });
    expect(await assignAddress(store, { family: 4, owner: owner("b", "n2"), pools: [] })).toBe(
      "10.244.0.64",
    );
  });

  it("assignAddress() returns the same address when the handle already has one", async () => {
    const store = await storeWith(["pods", { cidr: "10.244.0.0/16" }]);
    const first = await assignAddress(store, { family: 4, owner: owner("a"), pools: [] });
    expect(await assignAddress(store, { family: 4, owner: owner("a"), pools: [] })).toBe(first);
  });

  it("assignAddress() never hands out a held floating IP", async () => {
    const store = await storeWith(["pods", { cidr: "10.244.0.0/16" }]);
    await store.kv.txn(
      [],
      [{ put: keys.claim("10.244.0.0"), value: JSON.stringify({ ip: "10.244.0.0" }) }],
    );
    expect(await assignAddress(store, { family: 4, owner: owner("a"), pools: [] })).toBe(
      "10.244.0.1",
    );
  });

  it("assignAddress() takes only pools whose namespaceSelector selects the owner's namespace", async () => {
    const store = await storeWith(
      ["team-a", { cidr: "10.1.0.0/24", namespaceSelector: "team == 'a'" }],
      ["others", { cidr: "10.2.0.0/24", namespaceSelector: "!has(team)" }],
    );
    await store.kv.txn(
      [],
      [
        {
          put: keys.namespace("shop"),
          value: JSON.stringify({ name: "shop", labels: { team: "a" } }),
        },
      ],
    );
    const inShop = { ...owner("a"), namespace: "shop" };
    expect(await assignAddress(store, { family: 4, owner: inShop, pools: [] })).toBe("10.1.0.0");
    // No record: no labels.
    expect(await assignAddress(store, { family: 4, owner: owner("b"), pools: [] })).toBe(
      "10.2.0.0",
    );
    // Labels the caller read already are not read again.
    expect(
      await assignAddress(store, {
        family: 4,
        owner: owner("c"),
        pools: [],
        namespaceLabels: { team: "a" },
      }),
    ).toBe("10.1.0.1");
    await expect(
      assignAddress(store, { family: 4, owner: owner("d"), pools: ["team-a"] }),
    ).rejects.toThrow(
      new IpamExhaustedError("no enabled IPv4 IP pool among team-a that namespace ns may use"),
    );
  });

  it("assignAddress() skips disabled pools and honours ipv4_pools", async () => {
    const store = await storeWith(
      ["floating", { cidr: "10.0.0.0/24", disabled: true }],
      ["first", { cidr: "10.1.0.0/24" }],
      ["second", { cidr: "10.2.0.0/24" }],
    );
    expect(await assignAddress(store, { family: 4, owner: owner("a"), pools: [] })).toBe(
      "10.1.0.0",
    );
    expect(
      await assignAddress(store, { family: 4, owner: owner("b"), pools: ["10.2.0.0/24"] }),
    ).toBe("10.2.0.0");
    expect(await assignAddress(store, { family: 4, owner: owner("c"), pools: ["second"] })).toBe(
      "10.2.0.1",
    );
    await expect(
      assignAddress(store, { family: 4, owner: owner("d"), pools: ["floating"] }),
    ).rejects.toThrow("no enabled IPv4 IP pool among floating");
  });

  it("assignAddress() assigns IPv6 from a /122 block", async () => {
    const store = await storeWith(["v6", { cidr: "fd00:10::/64" }]);
    expect(await assignAddress(store, { family: 6, owner: owner("a"), pools: [] })).toBe(
      "fd00:10::",
    );
    const [block] = await store.listBlocks();
    expect(block?.value.cidr).toBe("fd00:10::/122");
  });

  it("assignAddress() borrows from another node's block when no block is left, then reports exhaustion", async () => {
    const store = await storeWith(["tiny", { cidr: "10.9.0.0/30", blockSize: 31 }]);
    const got = [];
    got.push(await assignAddress(store, { family: 4, owner: owner("a", "n1"), pools: [] }));
    got.push(await assignAddress(store, { family: 4, owner: owner("b", "n2"), pools: [] }));
    got.push(await assignAddress(store, { family: 4, owner: owner("c", "n2"), pools: [] }));
    got.push(await assignAddress(store, { family: 4, owner: owner("d", "n3"), pools: [] }));
    expect(got.sort()).toEqual(["10.9.0.0", "10.9.0.1", "10.9.0.2", "10.9.0.3"]);
    await expect(
      assignAddress(store, { family: 4, owner: owner("e", "n3"), pools: [] }),
    ).rejects.toThrow(IpamExhaustedError);
    await expect(
      assignAddress(store, { family: 4, owner: owner("e", "n3"), pools: [] }),
    ).rejects.toThrow("no free IPv4 address in IP pools 10.9.0.0/30");
  });

  it("assignAddress() records a borrowed address with its node, and releaseHandle() drops it", async () => {
    const store = await storeWith(["tiny", { cidr: "10.9.0.0/30", blockSize: 31 }]);
    await assignAddress(store, { family: 4, owner: owner("a", "n1"), pools: [] });
    await assignAddress(store, { family: 4, owner: owner("b", "n2"), pools: [] });
    await assignAddress(store, { family: 4, owner: owner("c", "n2"), pools: [] });
    const borrowed = await assignAddress(store, { family: 4, owner: owner("d", "n3"), pools: [] });
    const records = await store.kv.list(keys.borrowed);
    // Only n3's address came from another node's block.
    expect(records.map((entry) => JSON.parse(entry.value))).toEqual([{ ip: borrowed, node: "n3" }]);
    await releaseHandle(store, "d", "n3");
    expect(await store.kv.list(keys.borrowed)).toEqual([]);
  });

  it("assignAddress() makes a listed CIDR whose block is gone a block again (Kubernetes keeps deleted CIDRs listed)", async () => {
    const store = await storeWith(["tiny", { cidr: "10.9.0.0/30", blockSize: 31 }]);
    // Both CIDRs listed in the region, neither block there.
    await store.kv.txn(
      [],
      [
        {
          put: keys.region("10.9.0.0/20"),
          value: JSON.stringify({ cidr: "10.9.0.0/20", blocks: ["10.9.0.0/31", "10.9.0.2/31"] }),
        },
      ],
    );
    expect(await assignAddress(store, { family: 4, owner: owner("a", "n1"), pools: [] })).toBe(
      "10.9.0.0",
    );
    const blocks = await store.listBlocks();
    expect(blocks.map((block) => [block.value.cidr, block.value.affinity])).toEqual([
      ["10.9.0.0/31", "n1"],
    ]);
  });

  it("assignAddress() gives 30 concurrent requests 30 distinct addresses", async () => {
    const store = await storeWith(["pods", { cidr: "10.244.0.0/16" }]);
    const ips = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        assignAddress(store, { family: 4, owner: owner(`h${i}`), pools: [] }),
      ),
    );
    expect(new Set(ips).size).toBe(30);
  });
});

describe("releaseHandle()", () => {
  it("releaseHandle() frees the addresses it is told of even when the node's list is a moment behind (a cache)", async () => {
    const store = await storeWith(["pods", { cidr: "10.244.0.0/16" }]);
    await assignAddress(store, { family: 4, owner: owner("a"), pools: [] });
    const behind = await store.listNodeBlocks("n1");
    const ip = await assignAddress(store, { family: 4, owner: owner("b"), pools: [] });
    // The list (as a watch cache may) still shows the block without b's address.
    const cached = Object.assign(Object.create(store) as typeof store, {
      listNodeBlocks: async () => behind,
    });
    expect(await releaseHandle(cached, "b", "n1")).toEqual([]);
    expect(await releaseHandle(cached, "b", "n1", [ip])).toEqual([ip]);
    expect(await listNodeHandles(store, "n1")).toEqual(new Map([["a", ["10.244.0.0"]]]));
  });

  it("releaseHandle() frees every address of the handle and is idempotent", async () => {
    const store = await storeWith(
      ["pods", { cidr: "10.244.0.0/16" }],
      ["v6", { cidr: "fd00::/64" }],
    );
    await assignAddress(store, { family: 4, owner: owner("a"), pools: [] });
    await assignAddress(store, { family: 6, owner: owner("a"), pools: [] });
    await assignAddress(store, { family: 4, owner: owner("b"), pools: [] });
    expect((await releaseHandle(store, "a", "n1")).sort()).toEqual(["10.244.0.0", "fd00::"]);
    expect(await releaseHandle(store, "a", "n1")).toEqual([]);
    expect(await listNodeHandles(store, "n1")).toEqual(new Map([["b", ["10.244.0.1"]]]));
    expect(await assignAddress(store, { family: 4, owner: owner("c"), pools: [] })).toBe(
      "10.244.0.0",
    );
  });
});
