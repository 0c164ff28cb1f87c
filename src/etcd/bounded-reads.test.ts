// Issue 14: what one pod's ADD and DEL read from etcd does not grow with the
// cluster. The same ADD (IPAM, a floating IP's claim, the endpoint) and DEL
// run against an empty store and one holding 1,000 other nodes' blocks and
// 2,000 claims; the requests and the bytes read are counted at the Kv port.
import { describe, expect, it } from "vitest";
import type { Kv, KvEntry, KvRead } from "../datastore/kv.js";
import type { FloatingIpClaim } from "../model/records.js";
import { addAndDelCounted, podOwner, type Reads } from "../../test/support/one-pod-add-del.js";
import { validatePool } from "../ipam/pool.js";
import { EtcdDatastore } from "./etcd-datastore.js";
import { MemoryKv } from "./memory-kv.js";
import { keys, Store } from "./store.js";
import { regionCidrOf } from "../ipam/region.js";

const POOLS = [
  validatePool("pods", { cidr: "10.0.0.0/8", blockSize: 26 }),
  validatePool("floating", { cidr: "203.0.0.0/16", disabled: true }),
];

/** A Kv that counts the read requests made through it and the bytes they return. */
function counting(kv: Kv): { kv: Kv; reads: Reads } {
  const reads: Reads = { requests: 0, bytes: 0 };
  const size = (entries: readonly KvEntry[]) =>
    entries.reduce((sum, entry) => sum + entry.key.length + entry.value.length, 0);
  const proxy: Kv = Object.create(kv) as Kv;
  proxy.get = async (key) => {
    reads.requests++;
    const entry = await kv.get(key);
    reads.bytes += entry ? size([entry]) : 0;
    return entry;
  };
  proxy.list = async (prefix) => {
    reads.requests++;
    const entries = await kv.list(prefix);
    reads.bytes += size(entries);
    return entries;
  };
  proxy.readMany = async (many: readonly KvRead[]) => {
    reads.requests++;
    const results = await kv.readMany(many);
    reads.bytes += size(results.flat());
    return results;
  };
  proxy.txn = (compares, ops) => kv.txn(compares, ops);
  return { kv: proxy, reads };
}

/** A cluster of `nodes` other nodes, each with a block of 20 pods, and `claims` floating IPs held. */
async function cluster(nodes: number, claims: number): Promise<MemoryKv> {
  const kv = new MemoryKv();
  const store = new Store(kv);
  for (const pool of POOLS) await store.putPool(pool);
  // Each block written as IPAM writes one: the block, its affinity, its region's list.
  const regions = new Map<string, string[]>();
  for (let n = 0; n < nodes; n++) {
    const node = `other-${n}`;
    const base = `10.0.${Math.floor(n / 4)}.${(n % 4) * 64}`;
    const block = `${base}/26`;
    const allocations = Object.fromEntries(
      Array.from({ length: 20 }, (_, p) => [
        base.replace(/\d+$/, String((n % 4) * 64 + p)),
        podOwner(`${node}-${p}`, node),
      ]),
    );
    await kv.txn(
      [],
      [
        {
          put: keys.block(block),
          value: JSON.stringify({ cidr: block, affinity: node, allocations }),
        },
        { put: keys.affinity(node, block), value: JSON.stringify({ cidr: block, node }) },
      ],
    );
    const region = regionCidrOf(block) ?? "";
    regions.set(region, [...(regions.get(region) ?? []), block]);
  }
  for (const [cidr, blocks] of regions) {
    await kv.txn(
      [],
      [{ put: keys.region(cidr), value: JSON.stringify({ cidr, blocks: blocks.sort() }) }],
    );
  }
  const ops = [];
  for (let c = 0; c < claims; c++) {
    const ip = `203.0.${Math.floor(c / 256) + 1}.${c % 256}`;
    const claim: FloatingIpClaim = {
      ip,
      namespace: "ns",
      pod: `holder-${c}`,
      containerID: `holder-${c}`,
      node: `other-${c % Math.max(nodes, 1)}`,
      internalIP: "10.0.0.1",
      createdAt: "2026-12-02T00:00:00Z",
    };
    ops.push({ put: keys.claim(ip), value: JSON.stringify(claim) });
    if (ops.length === 128) await kv.txn([], ops.splice(0));
  }
  if (ops.length > 0) await kv.txn([], ops);
  return kv;
}

/** One pod's ADD and DEL on node-1, counted at the Kv port. */
async function addAndDel(kv: MemoryKv): Promise<{ add: Reads; del: Reads }> {
  const counted = counting(kv);
  return addAndDelCounted({
    datastore: new EtcdDatastore(new Store(counted.kv)),
    reads: counted.reads,
    node: "node-1",
    pod: "pod",
    namespace: "ns",
    floating: "203.0.200.7",
    pools: POOLS,
  });
}

describe("ADD and DEL on etcd read the same whatever the cluster holds", () => {
  it("ADD and DEL read as many requests and bytes with 1,000 nodes' blocks and 2,000 claims as with none", async () => {
    const empty = await addAndDel(await cluster(0, 0));
    const full = await addAndDel(await cluster(1000, 2000));
    expect(full.add.requests).toBe(empty.add.requests);
    expect(full.del.requests).toBe(empty.del.requests);
    // The same records, give or take digits in revisions and names.
    expect(full.add.bytes).toBeLessThanOrEqual(empty.add.bytes * 1.1);
    expect(full.del.bytes).toBeLessThanOrEqual(empty.del.bytes * 1.1);
    // Bounded outright: the pools, one block, one claim, one region, the endpoint.
    expect(full.add.requests).toBeLessThanOrEqual(4);
    expect(full.del.requests).toBeLessThanOrEqual(2);
  }, 60_000);
});
