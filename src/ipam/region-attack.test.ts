// Attacks on ADR 0011 (blocks found by containment, listed in regions), over
// EtcdDatastore and the in-memory Kv: records written straight to the
// datastore, as an older buoy left them or as whoever can write etcd writes
// them (a review's attack cases). Each test states the promise. Known open,
// not here: two ADDs racing on blocks that already overlap (each write
// compares only its own block), and a corrupt region record (it stops ADD
// in its region; only whoever can write etcd can write one).
import { describe, expect, it } from "vitest";
import { EtcdDatastore } from "../etcd/etcd-datastore.js";
import { MemoryKv } from "../etcd/memory-kv.js";
import { keys, Store } from "../etcd/store.js";
import { etcdSnapshotLookup, planClaimCompares } from "../etcd/claims-transaction.js";
import { assignAddress } from "./ipam.js";
import { validatePool } from "./pool.js";
import { regionCidrOf } from "./region.js";
import { FloatingIpError } from "../floating/annotation.js";
import type {
  AllocationOwner,
  FloatingIpClaim,
  IpPool,
  IpamBlock,
  WorkloadEndpoint,
} from "../model/records.js";
import type { AllocationSnapshot, Attachment } from "../datastore/datastore.js";

const FLOATING_POOL = validatePool("floating", { cidr: "203.0.113.0/24", disabled: true });

async function setup(pools: readonly IpPool[]) {
  const kv = new MemoryKv();
  const store = new Store(kv);
  for (const pool of pools) await store.putPool(pool);
  return { kv, store, datastore: new EtcdDatastore(store) };
}

/** A block record as an older buoy (no regions) wrote it: the block key only. */
async function putLegacyBlock(kv: MemoryKv, block: IpamBlock): Promise<void> {
  await kv.txn([], [{ put: keys.block(block.cidr), value: JSON.stringify(block) }]);
}

const owner = (pod: string, node: string): AllocationOwner => ({
  handle: `net.${pod}`,
  node,
  namespace: "default",
  pod,
  network: "net",
  containerID: pod,
});

const request = (pod: string, node: string) => ({
  family: 4 as const,
  owner: owner(pod, node),
  pools: [],
});

async function owners(store: Store): Promise<Map<string, string[]>> {
  const byIp = new Map<string, string[]>();
  for (const { value } of await store.listBlocks()) {
    for (const [ip, o] of Object.entries(value.allocations)) {
      byIp.set(ip, [...(byIp.get(ip) ?? []), o.handle]);
    }
  }
  return byIp;
}

function attachment(
  pod: string,
  node: string,
  internalIP: string,
  floatingIps: readonly string[],
  pools: readonly IpPool[],
  seen: AllocationSnapshot | undefined,
): Attachment {
  const createdAt = new Date().toISOString();
  const endpoint: WorkloadEndpoint = {
    node,
    namespace: "default",
    pod,
    containerID: pod,
    endpoint: "eth0",
    interfaceName: `cali${pod}`,
    mac: "0a:58:0a:f4:00:05",
    ipNetworks: [`${internalIP}/32`],
    ipNATs: floatingIps.map((externalIP) => ({ internalIP, externalIP })),
    network: "net",
    createdAt,
  };
  const claims: FloatingIpClaim[] = floatingIps.map((ip) => ({
    ip,
    namespace: "default",
    pod,
    containerID: pod,
    node,
    internalIP,
    createdAt,
    endpoint: "eth0",
    network: "net",
  }));
  return { endpoint, claims, pools, seen };
}

describe("ADR 0011 under attack (etcd over MemoryKv)", () => {
  // ---- a block larger than a region, made by an older buoy --------------------
  // Before d4b5782 a pool's blockSize could be as short as its prefix (10.244.0.0/16
  // blockSize 18 was valid). Such a block spans several /20 regions; BlockIndex
  // files it under the region of its first address only.

  const legacyWide = (): IpamBlock => ({
    cidr: "10.244.0.0/18",
    affinity: "node-1",
    allocations: { "10.244.16.0": owner("old-pod", "node-1") },
  });

  it("a legacy /18 block: a new block is never made inside it, its address never given twice", async () => {
    // The pool, now refused at blockSize 18, rewritten at 26 (straight to etcd).
    const pool = validatePool("pods", { cidr: "10.244.0.0/16", blockSize: 26 });
    const { kv, store, datastore } = await setup([pool, FLOATING_POOL]);
    await putLegacyBlock(kv, legacyWide());
    const ip = await assignAddress(datastore, request("new-pod", "node-2"));
    const cidrs = (await store.listBlocks()).map((block) => block.value.cidr);
    // No block made inside it (one beside it is fine).
    const inside = cidrs.filter((cidr) => Number(cidr.split(".")[2]) < 64);
    expect(inside).toEqual(["10.244.0.0/18"]);
    expect((await owners(store)).get(ip)).toEqual(["net.new-pod"]);
  });

  for (const read of ["the snapshot", "the commit's own read"]) {
    it(`a legacy /18 block: an address allocated in its second /20 is no floating IP (${read})`, async () => {
      const pool = validatePool("pods", { cidr: "10.244.0.0/16", blockSize: 26 });
      const pools = [pool, FLOATING_POOL];
      const { kv, datastore } = await setup(pools);
      await putLegacyBlock(kv, legacyWide());
      const seen =
        read === "the snapshot"
          ? await datastore.readAllocationSnapshot({ node: "node-2", floatingIps: ["10.244.16.0"] })
          : undefined;
      {
        await expect(
          datastore.commitAttachment(
            attachment("tenant", "node-2", "10.244.200.1", ["10.244.16.0"], pools, seen),
          ),
        ).rejects.toThrow(FloatingIpError);
      }
      expect(await datastore.getClaim("10.244.16.0")).toBeUndefined();
    });
  }

  // ---- overlapping blocks an older buoy made: the "skipped in all" promise -----

  // ---- the upgrade gap: a block listed in no region, its pool's blockSize changed

  it("a legacy block listed in no region, pool blockSize changed: its address is no floating IP on the commit's own read", async () => {
    const pool = validatePool("pods", { cidr: "10.244.0.0/16", blockSize: 26 });
    const { kv, datastore, store } = await setup([pool, FLOATING_POOL]);
    await putLegacyBlock(kv, {
      cidr: "10.244.0.0/26",
      affinity: "node-1",
      allocations: { "10.244.0.5": owner("victim", "node-1") },
    });
    const changed = { ...pool, blockSize: 28 };
    await store.putPool(changed);
    // seen undefined: the path commitClaimsAndEndpoint() takes on every retry
    // after its first transaction lost a race (and readClaimLookup()).
    await expect(
      datastore.commitAttachment(
        attachment("tenant", "node-2", "10.244.200.1", ["10.244.0.5"], [changed], undefined),
      ),
    ).rejects.toThrow(FloatingIpError);
    expect(await datastore.getClaim("10.244.0.5")).toBeUndefined();
  });

  // ---- region records that are not what buoy writes -----------------------------

  // ---- etcd's --max-txn-ops (128) -----------------------------------------------

  it("a claim transaction of 64 floating IPs stays within etcd's 128 compares", async () => {
    // 64 floating IPs, each in its own /20 of a pool that also has pod blocks
    // there: before regions, 2 compares an IP (claim, block) = 128.
    const pool = validatePool("wide", { cidr: "10.0.0.0/8", blockSize: 26 });
    const blocks = Array.from({ length: 64 }, (_, i) => ({
      value: { cidr: `10.${i}.0.0/26`, affinity: "n", allocations: {} } as IpamBlock,
      revision: "5",
    }));
    const snapshot: AllocationSnapshot = {
      pools: [pool],
      blocks,
      claims: [],
      regions: blocks.map((block) => ({
        value: { cidr: regionCidrOf(block.value.cidr) ?? "", blocks: [block.value.cidr] },
        revision: "5",
      })),
    };
    const ips = blocks.map((block) => block.value.cidr.replace("0/26", "9"));
    const compares = planClaimCompares(
      ips,
      { namespace: "default", pod: "p", containerID: "c", node: "n" },
      etcdSnapshotLookup(snapshot),
    );
    expect(compares.length).toBeLessThanOrEqual(128);
  });

  // ---- "overlaps" and the retry loop ----------------------------------------------

  it("every new block refused as overlapping on a stale snapshot: the ADD re-reads, it is not 'exhausted'", async () => {
    // Another node made 10.244.0.0/24 at the pool's new blockSize 24 after this
    // ADD read its snapshot (blockSize 25, no block yet).
    const stale = validatePool("pods", { cidr: "10.244.0.0/24", blockSize: 25 });
    const { datastore, store } = await setup([{ ...stale, blockSize: 24 }]);
    const seen = await datastore.readAllocationSnapshot({ node: "node-1", floatingIps: [] });
    expect(
      await datastore.writeBlock({
        block: {
          cidr: "10.244.0.0/24",
          affinity: "node-1",
          allocations: { "10.244.0.0": owner("a", "node-1") },
        },
        revision: undefined,
      }),
    ).toBe("written");
    const snapshot = { ...seen, pools: [stale] };
    const ip = await assignAddress(datastore, request("b", "node-2"), snapshot);
    expect((await owners(store)).get(ip)).toEqual(["net.b"]);
  });

  // ---- IPv6: the same promises ------------------------------------------------------

  it("IPv6: blockSize changed under allocations, no address twice, no overlap, no own address claimed", async () => {
    const pool = validatePool("pods6", { cidr: "fd00:10::/112", blockSize: 122 });
    const { datastore, store } = await setup([pool]);
    const v6 = (pod: string, node: string) => ({ ...request(pod, node), family: 6 as const });
    const before = [];
    for (const i of [0, 1]) before.push(await assignAddress(datastore, v6(`a${i}`, "node-1")));
    await store.putPool({ ...pool, blockSize: 124 });
    const after = [];
    for (const i of [0, 1, 2]) after.push(await assignAddress(datastore, v6(`b${i}`, "node-2")));
    const all = [...before, ...after];
    expect(new Set(all).size).toBe(all.length);
    const cidrs = (await store.listBlocks()).map((block) => block.value.cidr).sort();
    expect(cidrs).toEqual(["fd00:10::/122", "fd00:10::40/124"]);
    for (const seen of [
      await datastore.readAllocationSnapshot({ node: "node-3", floatingIps: [before[0] ?? ""] }),
      undefined,
    ]) {
      await expect(
        datastore.commitAttachment(
          attachment(
            "t",
            "node-3",
            after[0] ?? "",
            [before[0] ?? ""],
            [{ ...pool, blockSize: 124 }],
            seen,
          ),
        ),
      ).rejects.toThrow(FloatingIpError);
    }
  });
});
