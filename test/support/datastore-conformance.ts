// One suite, every implementation of the Datastore port
// (src/datastore/datastore.ts): EtcdDatastore over the in-memory Kv (unit
// tests) and over a real etcd (integration tests), KubernetesDatastore against
// a real kube-apiserver (kube tests). Each case drives the port as the CNI
// plugin and IPAM do (src/cni/plugin.ts, src/ipam/ipam.ts): addresses from
// assignAddress, then commitAttachment with the snapshot read before, and
// release as DEL, rollback and GC call it.
//
// Where the two datastores keep a promise differently, the setup says how
// (DatastoreUnderTest's last fields) and the case states both ways.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type {
  AllocationSnapshot,
  Attachment,
  Datastore,
  EndpointRef,
  ReleaseTarget,
  Released,
} from "../../src/datastore/datastore.js";
import { FloatingIpError } from "../../src/floating/annotation.js";
import { emptyBlock, withAllocation } from "../../src/ipam/block.js";
import { assignAddress } from "../../src/ipam/ipam.js";
import { validatePool } from "../../src/ipam/pool.js";
import { parsePrefix, prefixSize } from "../../src/net/address.js";
import type {
  FloatingIpClaim,
  IpPool,
  IpamBlock,
  Versioned,
  WorkloadEndpoint,
} from "../../src/model/records.js";

export interface DatastoreUnderTest {
  datastore: Datastore & { listBlocks(): Promise<Versioned<IpamBlock>[]> };
  /** The namespace the suite's pods are in (it exists). */
  namespace: string;
  /** Creates an IP pool, straight in the datastore (no `buoy apply`, no webhook). */
  addPool(pool: IpPool): Promise<void>;
  /** Changes an IP pool's cidr and blockSize the same way, past every check. */
  changePool(pool: IpPool): Promise<void>;
  /**
   * Gives the suite's namespace these labels, as the administrator does
   * (Kubernetes: the Namespace; etcd: buoy's namespaces/<name> record).
   */
  labelNamespace(labels: Record<string, string>): Promise<void>;
  /**
   * Creates the pod on `node`, asking for `floatingIps` (its annotation),
   * where the datastore keeps pods (Kubernetes); resolves to its uid, or undefined where the runtime alone
   * knows the pod (etcd).
   */
  addPod(name: string, node: string, floatingIps: readonly string[]): Promise<string | undefined>;
  /**
   * What listAttachedContainers lists: every container with an endpoint
   * record (etcd, and Kubernetes since its endpoints are objects: ADR 0008),
   * or only those holding a floating-IP claim.
   */
  attachedBy: "endpoint" | "claim";
  /**
   * What writeBlock does with an address a claim holds: fails writing nothing
   * (etcd: the claim's absence is a compare of the same transaction), or
   * writes, sees the claim, and takes the address back (Kubernetes: no
   * multi-object transaction), which leaves the block's other changes, a
   * new block included, written.
   */
  claimedAddressWrite: "writes nothing" | "takes back";
  cleanup(): Promise<void>;
}

const NODE = "node-1";
/** How long a read from the API server's watch cache may lag behind a write. */
const LAGS = { timeout: 5000 };
const NETWORK = "k8s-pod-network";
const POD_POOL = validatePool("pods", { cidr: "10.244.0.0/16", blockSize: 26 });
const FLOATING_POOL = validatePool("floating", { cidr: "203.0.113.0/24", disabled: true });
const POOLS = [POD_POOL, FLOATING_POOL];

/** One container as ADD makes it, and how DEL and CHECK name it. */
interface Container {
  pod: string;
  podUID: string | undefined;
  containerID: string;
  network: string;
  handle: string;
  /** Its address, from IPAM. */
  ip: string;
  /** The floating IPs its pod asks for. */
  floatingIps: readonly string[];
  ref: EndpointRef;
  /** DEL's target: this interface, the pod (CNI_ARGS), the IPAM handle. */
  target: ReleaseTarget;
}

interface ContainerOptions {
  node?: string;
  network?: string;
  /** The pools IPAM may draw from (`ipv4_pools`); all when absent. */
  pools?: string[];
}

export function datastoreConformance(name: string, setup: () => Promise<DatastoreUnderTest>): void {
  describe(`${name}: Datastore conformance`, () => {
    let under: DatastoreUnderTest;
    let store: DatastoreUnderTest["datastore"];
    let sequence = 0;

    beforeEach(async () => {
      under = await setup();
      store = under.datastore;
      for (const pool of POOLS) await under.addPool(pool);
    });

    afterEach(async () => {
      await under?.cleanup();
    });

    /** A fresh container of a new pod asking for `floatingIps`: its address assigned, nothing committed yet. */
    const prepare = async (
      pod: string,
      floatingIps: readonly string[] = [],
      options: ContainerOptions = {},
    ): Promise<Container> => {
      const node = options.node ?? NODE;
      const network = options.network ?? NETWORK;
      const podUID = await under.addPod(pod, node, floatingIps);
      const containerID = `${pod}-${(++sequence).toString(16).padStart(8, "0")}`;
      const handle = `${network}.${containerID}`;
      const ip = await assignAddress(store, {
        family: 4,
        owner: { handle, node, namespace: under.namespace, pod, network, containerID },
        pools: options.pools ?? [],
      });
      const ref = { node, containerID, ifname: "eth0", namespace: under.namespace, pod };
      return {
        pod,
        podUID,
        containerID,
        network,
        handle,
        ip,
        floatingIps,
        ref,
        target: { ...ref, handle },
      };
    };

    /** The records ADD commits for `container`, as src/cni/plugin.ts makes them. */
    const attachment = (container: Container, seen: AllocationSnapshot): Attachment => {
      const createdAt = new Date().toISOString();
      const endpoint: WorkloadEndpoint = {
        node: container.ref.node,
        namespace: under.namespace,
        pod: container.pod,
        containerID: container.containerID,
        endpoint: "eth0",
        interfaceName: `cali${container.containerID.slice(-11)}`,
        mac: "0a:58:0a:f4:00:05",
        ipNetworks: [`${container.ip}/32`],
        ipNATs: container.floatingIps.map((externalIP) => ({
          internalIP: container.ip,
          externalIP,
        })),
        network: container.network,
        createdAt,
      };
      const claims: FloatingIpClaim[] = container.floatingIps.map((ip) => ({
        ip,
        namespace: under.namespace,
        pod: container.pod,
        containerID: container.containerID,
        node: container.ref.node,
        internalIP: container.ip,
        createdAt,
        endpoint: "eth0",
        network: container.network,
        ...(container.podUID ? { podUID: container.podUID } : {}),
      }));
      return {
        endpoint,
        claims,
        pools: POOLS,
        seen,
        ...(container.podUID ? { podUID: container.podUID } : {}),
      };
    };

    /** A whole ADD: the snapshot read first, the address, then claims and endpoint. */
    const attach = async (
      pod: string,
      floatingIps: readonly string[] = [],
      options: ContainerOptions = {},
    ): Promise<Container> => {
      const seen = await store.readAllocationSnapshot({ node: NODE, floatingIps });
      const container = await prepare(pod, floatingIps, options);
      await store.commitAttachment(attachment(container, seen));
      return container;
    };

    /** Every address allocated, with its handle. */
    const allocations = async (): Promise<Record<string, string>> => {
      const owners: Record<string, string> = {};
      for (const { value } of await store.listBlocks()) {
        for (const [ip, owner] of Object.entries(value.allocations)) owners[ip] = owner.handle;
      }
      return owners;
    };

    /** What the datastore holds for `containers` (read by name, not from a cache), and every block. */
    const state = async (containers: readonly Container[], ips: readonly string[]) => ({
      blocks: (await store.listBlocks()).sort((a, b) => a.value.cidr.localeCompare(b.value.cidr)),
      claims: await Promise.all(ips.map((ip) => store.getClaim(ip))),
      endpoints: await Promise.all(
        containers.map(async (container) => (await store.getEndpoint(container.ref))?.containerID),
      ),
    });

    const sorted = (released: Released) => ({
      addresses: [...released.addresses].sort(),
      floatingIps: [...released.floatingIps].sort(),
    });

    const attachedIDs = async (node = NODE, network = NETWORK) =>
      (await store.listAttachedContainers(node, network)).map((c) => c.containerID).sort();

    // ---- one winner of a claim race ----------------------------------------------

    it("many ADDs racing for one floating IP: exactly one wins, every other is refused naming it", async () => {
      const floating = "203.0.113.10";
      const racers = 8;
      // Every racer read the IP free before any committed, as concurrent ADDs do.
      const seen = await store.readAllocationSnapshot({ node: NODE, floatingIps: [floating] });
      const containers = [];
      for (let i = 0; i < racers; i++) containers.push(await prepare(`racer-${i}`, [floating]));
      const outcomes = await Promise.allSettled(
        containers.map((container) => store.commitAttachment(attachment(container, seen))),
      );

      const winners = containers.filter((_, i) => outcomes[i]?.status === "fulfilled");
      expect(winners).toHaveLength(1);
      const winner = winners[0]!;
      for (const outcome of outcomes) {
        if (outcome.status === "fulfilled") continue;
        expect(outcome.reason).toBeInstanceOf(FloatingIpError);
        expect((outcome.reason as Error).message).toBe(
          `floating IP ${floating} is already held by pod ${under.namespace}/${winner.pod}`,
        );
      }
      expect(await store.getClaim(floating)).toMatchObject({
        containerID: winner.containerID,
        pod: winner.pod,
        internalIP: winner.ip,
      });
      const endpoints = await Promise.all(containers.map((c) => store.getEndpoint(c.ref)));
      expect(endpoints.map((endpoint) => endpoint?.containerID)).toEqual(
        containers.map((c) => (c === winner ? c.containerID : undefined)),
      );
      // The winner holds a claim and has an endpoint: listed by either datastore.
      expect(await attachedIDs()).toEqual([winner.containerID]);
    });

    // ---- what ADD and DEL read: the node's and the pod's, not the cluster's (issue 14)

    it("listNodeBlocks() gives a node its affine blocks and those it borrowed from, no other node's", async () => {
      await under.addPool(validatePool("tiny", { cidr: "10.9.1.0/30", blockSize: 31 }));
      const tiny = { pools: ["tiny"] };
      const c = await prepare("c", [], { ...tiny, node: "node-c" });
      const d = await prepare("d", [], { ...tiny, node: "node-d" });
      // No block is left: node-a borrows from node-c's.
      const lent = await prepare("lent", [], { ...tiny, node: "node-a" });
      expect([c.ip, d.ip, lent.ip]).toEqual(["10.9.1.0", "10.9.1.2", "10.9.1.1"]);
      // Kubernetes lists from the API server's watch cache, which may lag a moment.
      const cidrs = async (node: string) =>
        (await store.listNodeBlocks(node)).map((block) => block.value.cidr).sort();
      await expect.poll(() => cidrs("node-a"), LAGS).toEqual(["10.9.1.0/31"]);
      await expect.poll(() => cidrs("node-c"), LAGS).toEqual(["10.9.1.0/31"]);
      await expect.poll(() => cidrs("node-d"), LAGS).toEqual(["10.9.1.2/31"]);
      // Its lent address released, node-a no longer finds node-c's block.
      await store.release(lent.target);
      await expect.poll(() => cidrs("node-a"), LAGS).toEqual([]);
      await expect.poll(() => cidrs("node-none"), LAGS).toEqual([]);
    });

    it("readAllocationSnapshot() reads the node's blocks and the asked floating IPs' claims and blocks only", async () => {
      const mine = await attach("mine");
      const elsewhere = await attach("elsewhere", ["203.0.113.50"], { node: "node-2" });
      await attach("other", ["203.0.113.51"], { node: "node-3" });
      expect([mine.ip, elsewhere.ip]).toEqual(["10.244.0.0", "10.244.0.64"]);
      const read = () =>
        store.readAllocationSnapshot({ node: NODE, floatingIps: ["203.0.113.50", elsewhere.ip] });
      // This node's block (Kubernetes: from the watch cache, which may lag
      // a moment) and the block holding the asked-about address; not node-3's.
      await expect
        .poll(async () => (await read()).blocks.map((block) => block.value.cidr).sort(), {
          timeout: 5000,
        })
        .toEqual(["10.244.0.0/26", "10.244.0.64/26"]);
      const seen = await read();
      expect(seen.pools.map((pool) => pool.name).sort()).toEqual(["floating", "pods"]);
      expect(seen.claims.map((claim) => claim.value.ip)).toEqual(["203.0.113.50"]);
    });

    it("assignAddress() passes over a claimed address in the node's block without knowing the claim beforehand", async () => {
      const first = await attach("first");
      // A floating IP inside node-1's block, claimed by a pod on another node.
      const claimedIp = "10.244.0.1";
      await attach("holder", [claimedIp], { node: "node-2" });
      const next = await prepare("next");
      expect(first.ip).toBe("10.244.0.0");
      expect(next.ip).toBe("10.244.0.2");
      expect((await allocations())[claimedIp]).toBeUndefined();
      expect((await store.getClaim(claimedIp))?.pod).toBe("holder");
    });

    it("writeBlock() of a new block with a CIDR that must be absent but exists: 'overlaps', nothing written", async () => {
      const made = await store.writeBlock({
        block: emptyBlock("10.244.200.0/26", NODE),
        revision: undefined,
        absent: ["10.244.200.0/25"],
      });
      expect(made).toBe("written");
      const refused = await store.writeBlock({
        block: emptyBlock("10.244.210.0/26", NODE),
        revision: undefined,
        absent: ["10.244.208.0/21", "10.244.200.0/26"],
      });
      expect(refused).toBe("overlaps");
      const cidrs = (await store.listBlocks()).map((block) => block.value.cidr);
      expect(cidrs).toEqual(["10.244.200.0/26"]);
    });

    // ---- compare-and-swap blocks -----------------------------------------------

    it("readNamespaceLabels() gives the namespace's labels, {} where it has none; IPAM picks by them", async () => {
      expect(await store.readNamespaceLabels(under.namespace)).toEqual({});
      expect(await store.readNamespaceLabels("no-such-namespace")).toEqual({});
      await under.addPool(
        validatePool("team-a", { cidr: "10.245.0.0/24", namespaceSelector: "team == 'a'" }),
      );
      const owner = { handle: `${NETWORK}.ns-case`, node: NODE, namespace: under.namespace };
      const only = { family: 4 as const, owner, pools: ["team-a"] };
      await expect(assignAddress(store, only)).rejects.toThrow(
        `no enabled IPv4 IP pool among team-a that namespace ${under.namespace} may use`,
      );
      await under.labelNamespace({ team: "a" });
      expect(await store.readNamespaceLabels(under.namespace)).toEqual({ team: "a" });
      expect(await assignAddress(store, only)).toBe("10.245.0.0");
    });

    it("writeBlock() is a compare-and-swap: creating a block that exists, or writing from a stale revision, is a conflict and changes nothing", async () => {
      const cidr = "10.244.63.0/26";
      const owner = (handle: string) => ({ handle, node: NODE });
      const block = (...ips: string[]): IpamBlock =>
        ips.reduce((b, ip, i) => withAllocation(b, ip, owner(`h${i}`)), emptyBlock(cidr, NODE));
      const current = async (): Promise<Versioned<IpamBlock> | undefined> =>
        (await store.listBlocks()).find((b) => b.value.cidr === cidr);

      expect(await store.writeBlock({ block: block("10.244.63.0"), revision: undefined })).toBe(
        "written",
      );
      const first = (await current())!;
      expect(Object.keys(first.value.allocations)).toEqual(["10.244.63.0"]);
      // "Must not exist yet": it does now.
      expect(await store.writeBlock({ block: block("10.244.63.9"), revision: undefined })).toBe(
        "conflict",
      );
      expect(await current()).toEqual(first);

      expect(
        await store.writeBlock({
          block: block("10.244.63.0", "10.244.63.1"),
          revision: first.revision,
        }),
      ).toBe("written");
      const second = (await current())!;
      expect(second.revision).not.toBe(first.revision);
      // The revision the first change was computed from is stale now.
      expect(
        await store.writeBlock({
          block: block("10.244.63.0", "10.244.63.2"),
          revision: first.revision,
        }),
      ).toBe("conflict");
      expect(await current()).toEqual(second);
      expect(Object.keys(second.value.allocations).sort()).toEqual(["10.244.63.0", "10.244.63.1"]);
    });

    it("writeBlock() never hands out an address a floating-IP claim holds", async () => {
      const holder = await attach("holder", ["203.0.113.40"]);
      const cidr = "203.0.113.0/26";
      const written = await store.writeBlock({
        block: withAllocation(emptyBlock(cidr, NODE), "203.0.113.40", {
          handle: "intruder",
          node: NODE,
        }),
        revision: undefined,
        assigned: { ip: "203.0.113.40", node: NODE },
      });
      expect(written).toBe("claimed");
      expect((await allocations())["203.0.113.40"]).toBeUndefined();
      expect((await store.getClaim("203.0.113.40"))?.containerID).toBe(holder.containerID);
      const block = (await store.listBlocks()).find((b) => b.value.cidr === cidr);
      if (under.claimedAddressWrite === "writes nothing") expect(block).toBeUndefined();
      else expect(block?.value.allocations).toEqual({});
    });

    // ---- IPAM stays right whatever pools reach the datastore ---------------------

    it("writeBlock() never creates a block overlapping one there is, of any size", async () => {
      const owner = { handle: "h", node: NODE };
      const create = (cidr: string, ip: string) =>
        store.writeBlock({
          block: withAllocation(emptyBlock(cidr, NODE), ip, owner),
          revision: undefined,
        });
      expect(await create("10.244.64.0/26", "10.244.64.1")).toBe("written");
      // Inside it, around it, and sharing its first address: all refused.
      expect(await create("10.244.64.16/28", "10.244.64.17")).toBe("overlaps");
      expect(await create("10.244.64.0/24", "10.244.64.200")).toBe("overlaps");
      expect(await create("10.244.64.0/28", "10.244.64.2")).toBe("overlaps");
      // Beside it: fine.
      expect(await create("10.244.64.64/28", "10.244.64.65")).toBe("written");
      const cidrs = (await store.listBlocks()).map((block) => block.value.cidr).sort();
      expect(cidrs).toEqual(["10.244.64.0/26", "10.244.64.64/28"]);
      // Made at once, as two nodes reading two sizes of one pool would: one stands.
      const race = await Promise.all([
        create("10.244.65.0/26", "10.244.65.1"),
        create("10.244.65.0/28", "10.244.65.2"),
        create("10.244.65.0/24", "10.244.65.3"),
      ]);
      expect(race.filter((outcome) => outcome === "written")).toHaveLength(1);
      expectNoOverlap((await store.listBlocks()).map((block) => block.value.cidr));
    });

    it("a pool's blockSize changed under allocations, straight in the datastore: no address is given twice", async () => {
      const before = await Promise.all([0, 1, 2].map((i) => prepare(`old-${i}`)));
      await under.changePool({ ...POD_POOL, blockSize: 28 });
      // Another node: it needs a block of its own, made at the new size.
      const after = await Promise.all(
        [0, 1, 2, 3].map((i) => prepare(`new-${i}`, [], { node: "node-2" })),
      );
      const ips = [...before, ...after].map((container) => container.ip);
      expect(new Set(ips).size).toBe(ips.length);
      const owners = await allocations();
      for (const container of [...before, ...after]) {
        expect(owners[container.ip]).toBe(container.handle);
      }
      expectNoOverlap((await store.listBlocks()).map((block) => block.value.cidr));
    });

    it("overlapping pools straight in the datastore: no address is given twice, no block overlaps", async () => {
      const outer = await Promise.all(
        [0, 1, 2].map((i) => prepare(`outer-${i}`, [], { pools: ["pods"] })),
      );
      await under.addPool(validatePool("inner", { cidr: "10.244.0.0/24", blockSize: 28 }));
      const inner = await Promise.all(
        [0, 1, 2, 3].map((i) => prepare(`inner-${i}`, [], { node: "node-2", pools: ["inner"] })),
      );
      const containers = [...outer, ...inner];
      const ips = containers.map((container) => container.ip);
      expect(new Set(ips).size).toBe(ips.length);
      expectNoOverlap((await store.listBlocks()).map((block) => block.value.cidr));
    });

    it("a pod's own address is no floating IP after its pool's blockSize changed", async () => {
      const pod = await attach("pod");
      await under.changePool({ ...POD_POOL, blockSize: 28 });
      const pools = [{ ...POD_POOL, blockSize: 28 }, FLOATING_POOL];
      const refused = await prepare("refused", [pod.ip]);
      // Both the early check (the snapshot) and the commit's own read.
      for (const seen of [
        await store.readAllocationSnapshot({ node: NODE, floatingIps: [pod.ip] }),
        undefined,
      ]) {
        await expect(
          store.commitAttachment({
            ...attachment(refused, seen as AllocationSnapshot),
            pools,
            seen,
          }),
        ).rejects.toThrow(
          new FloatingIpError(`floating IP ${pod.ip} is the address of pod ${under.namespace}/pod`),
        );
      }
      expect(await store.getClaim(pod.ip)).toBeUndefined();
      expect(await store.getEndpoint(refused.ref)).toBeUndefined();
    });

    it("a pod with 100 floating IPs attaches, and releases them all (no transaction bound caps it)", async () => {
      const ips = Array.from({ length: 100 }, (_, i) => `203.0.113.${100 + i}`);
      const many = await attach("many", ips);
      const claims = await Promise.all(ips.map((ip) => store.getClaim(ip)));
      expect(claims.every((claim) => claim?.containerID === many.containerID)).toBe(true);
      expect((await store.getEndpoint(many.ref))?.ipNATs).toHaveLength(100);
      const released = await store.release(many.target);
      expect(released.floatingIps.sort()).toEqual([...ips].sort());
      expect((await Promise.all(ips.map((ip) => store.getClaim(ip)))).filter(Boolean)).toEqual([]);
    });

    it("a pod with 100 floating IPs, each inside another node's block, attaches; one held among them leaves none", async () => {
      // 100 blocks of other nodes, empty; a floating IP in each (the pool's
      // addresses, so each claim also checks its block).
      const cidrs = Array.from(
        { length: 100 },
        (_, i) => `10.244.${64 + Math.floor(i / 4)}.${(i % 4) * 64}/26`,
      );
      for (const cidr of cidrs) {
        expect(
          await store.writeBlock({ block: emptyBlock(cidr, "node-9"), revision: undefined }),
        ).toBe("written");
      }
      const ips = cidrs.map((cidr) =>
        cidr.replace(/\.(\d+)\/26$/, (_, last: string) => `.${Number(last) + 5}`),
      );
      const many = await attach("many", ips);
      expect((await store.getEndpoint(many.ref))?.ipNATs).toHaveLength(100);
      const released = await store.release(many.target);
      expect(released.floatingIps.sort()).toEqual([...ips].sort());
      // Held by another pod, the 90th: the ADD is refused and none of the others stays claimed.
      await attach("holder", [ips[89] ?? ""]);
      await expect(attach("refused", ips)).rejects.toThrow(FloatingIpError);
      const left = await Promise.all(ips.map((ip) => store.getClaim(ip)));
      expect(left.filter(Boolean).map((claim) => claim?.pod)).toEqual(["holder"]);
    }, 60_000);

    // ---- as many floating IPs as the bounds allow (ADR 0012) ------------------------

    /** `count` addresses of the floating pool from 203.0.113.<first>. */
    const floatingRange = (first: number, count: number) =>
      Array.from({ length: count }, (_, i) => `203.0.113.${first + i}`);

    it("a pod with 240 floating IPs (what a 4 KiB annotation holds) attaches, and releases them all", async () => {
      const ips = floatingRange(1, 240);
      const started = performance.now();
      const many = await attach("many", ips);
      const attachedMs = performance.now() - started;
      const claims = await Promise.all(ips.map((ip) => store.getClaim(ip)));
      expect(claims.every((claim) => claim?.containerID === many.containerID)).toBe(true);
      expect((await store.getEndpoint(many.ref))?.ipNATs).toHaveLength(240);
      const releasing = performance.now();
      const released = await store.release(many.target);
      const releasedMs = performance.now() - releasing;
      expect(sorted(released)).toEqual({ addresses: [many.ip], floatingIps: [...ips].sort() });
      expect((await Promise.all(ips.map((ip) => store.getClaim(ip)))).filter(Boolean)).toEqual([]);
      expect(await store.getEndpoint(many.ref)).toBeUndefined();
      expect((await allocations())[many.ip]).toBeUndefined();
      // What it costs, for the record (ADR 0012).
      console.info(
        `${name}: 240 floating IPs attached in ${attachedMs.toFixed(0)} ms, released in ${releasedMs.toFixed(0)} ms`,
      );
    }, 60_000);

    it("one address among 200 held by another pod: the ADD is refused naming it, and leaves nothing", async () => {
      const ips = floatingRange(1, 200);
      await attach("holder", ["203.0.113.150"]);
      const refused = await prepare("refused", ips);
      await expect(
        store.commitAttachment(
          attachment(refused, await store.readAllocationSnapshot({ node: NODE, floatingIps: ips })),
        ),
      ).rejects.toThrow(
        new FloatingIpError(
          `floating IP 203.0.113.150 is already held by pod ${under.namespace}/holder`,
        ),
      );
      const left = await Promise.all(ips.map((ip) => store.getClaim(ip)));
      expect(left.filter(Boolean).map((claim) => claim?.pod)).toEqual(["holder"]);
      expect(await store.getEndpoint(refused.ref)).toBeUndefined();
      // The plugin's rollback of its address (as on every refused ADD) leaves no allocation.
      await store.release(refused.target);
      expect((await allocations())[refused.ip]).toBeUndefined();
    }, 60_000);

    it("two pods of 200 floating IPs racing over 160 of them: one gets them all, the other leaves nothing", async () => {
      const sets = [floatingRange(1, 200), floatingRange(41, 200)];
      const seen = await store.readAllocationSnapshot({ node: NODE, floatingIps: sets.flat() });
      const racers = await Promise.all(sets.map((ips, i) => prepare(`racer-${i}`, ips)));
      const outcomes = await Promise.allSettled(
        racers.map((racer) => store.commitAttachment(attachment(racer, seen))),
      );
      const won = outcomes.flatMap((outcome, i) => (outcome.status === "fulfilled" ? [i] : []));
      expect(won).toHaveLength(1);
      const winner = racers[won[0] as number] as Container;
      const loser = racers[1 - (won[0] as number)] as Container;
      const failure = outcomes[1 - (won[0] as number)] as PromiseRejectedResult;
      expect(failure.reason).toBeInstanceOf(FloatingIpError);
      expect(String(failure.reason)).toContain(`held by pod ${under.namespace}/${winner.pod}`);
      const claims = await Promise.all(
        floatingRange(1, 240).map(async (ip) => [ip, (await store.getClaim(ip))?.pod] as const),
      );
      expect(claims.filter(([, pod]) => pod !== undefined)).toEqual(
        winner.floatingIps.map((ip) => [ip, winner.pod]),
      );
      expect((await store.getEndpoint(winner.ref))?.ipNATs).toHaveLength(200);
      expect(await store.getEndpoint(loser.ref)).toBeUndefined();
    }, 60_000);

    // ---- release by handle -------------------------------------------------------

    it("release() frees the container's addresses, claims and endpoint, and nothing of another's", async () => {
      const a = await attach("a", ["203.0.113.10", "203.0.113.11"]);
      const b = await attach("b", ["203.0.113.12"]);
      expect(await allocations()).toMatchObject({ [a.ip]: a.handle, [b.ip]: b.handle });
      expect((await store.getEndpoint(a.ref))?.ipNetworks).toEqual([`${a.ip}/32`]);

      expect(sorted(await store.release(a.target))).toEqual({
        addresses: [a.ip],
        floatingIps: ["203.0.113.10", "203.0.113.11"],
      });

      const after = await allocations();
      expect(after[a.ip]).toBeUndefined();
      expect(after[b.ip]).toBe(b.handle);
      expect(await store.getClaim("203.0.113.10")).toBeUndefined();
      expect(await store.getClaim("203.0.113.11")).toBeUndefined();
      expect(await store.getEndpoint(a.ref)).toBeUndefined();
      expect((await store.getClaim("203.0.113.12"))?.containerID).toBe(b.containerID);
      expect((await store.getEndpoint(b.ref))?.containerID).toBe(b.containerID);
      // The freed floating IP is free for another pod at once.
      const c = await attach("c", ["203.0.113.10"]);
      expect((await store.getClaim("203.0.113.10"))?.containerID).toBe(c.containerID);
    });

    // ---- DEL is idempotent -------------------------------------------------------

    it("release() again, or of a container never added, resolves with nothing released and changes nothing", async () => {
      const a = await attach("a", ["203.0.113.10"]);
      const b = await attach("b", ["203.0.113.12"]);
      await store.release(a.target);
      const before = await state([a, b], ["203.0.113.10", "203.0.113.12"]);

      const none = { addresses: [], floatingIps: [] };
      expect(sorted(await store.release(a.target))).toEqual(none);
      // A stale DEL naming b's pod (an older sandbox of it), and one naming nothing.
      const stale = `${b.pod}-stale`;
      expect(
        sorted(
          await store.release({ ...b.target, containerID: stale, handle: `${NETWORK}.${stale}` }),
        ),
      ).toEqual(none);
      expect(await store.release({ node: NODE, containerID: "never-added" })).toEqual(none);

      expect(await state([a, b], ["203.0.113.10", "203.0.113.12"])).toEqual(before);
      expect(before.endpoints).toEqual([undefined, b.containerID]);
    });

    // ---- GC by attachment ---------------------------------------------------------

    it("listAttachedContainers() lists what is attached on that node and network; after release() it is gone", async () => {
      const a = await attach("a", ["203.0.113.10"]);
      const plain = await attach("plain");
      const other = await attach("other-net", ["203.0.113.11"], { network: "other-network" });
      const away = await attach("away", ["203.0.113.12"], { node: "node-2" });

      const listed = await store.listAttachedContainers(NODE, NETWORK);
      expect(listed).toContainEqual({
        containerID: a.containerID,
        namespace: under.namespace,
        pod: "a",
      });
      expect(await attachedIDs()).toEqual(
        under.attachedBy === "endpoint"
          ? [a.containerID, plain.containerID].sort()
          : [a.containerID],
      );
      expect(await attachedIDs(NODE, "other-network")).toEqual([other.containerID]);
      expect(await attachedIDs("node-2")).toEqual([away.containerID]);

      // GC as the plugin runs it: release every listed container the runtime does not know.
      for (const { containerID, namespace, pod } of listed) {
        if (containerID === plain.containerID) continue;
        await store.release({
          node: NODE,
          containerID,
          ...(namespace ? { namespace } : {}),
          ...(pod ? { pod } : {}),
          handle: `${NETWORK}.${containerID}`,
        });
      }
      expect(await attachedIDs()).toEqual(
        under.attachedBy === "endpoint" ? [plain.containerID] : [],
      );
      expect(await store.getClaim("203.0.113.10")).toBeUndefined();
      expect(await store.getEndpoint(a.ref)).toBeUndefined();
      expect((await allocations())[a.ip]).toBeUndefined();
      expect(await attachedIDs(NODE, "other-network")).toEqual([other.containerID]);
      expect(await attachedIDs("node-2")).toEqual([away.containerID]);
    });

    // ---- nothing left by a refused ADD -------------------------------------------

    it("a commitAttachment() refused for a held floating IP leaves none of its claims and no endpoint", async () => {
      // Read before the holder committed: the refusal is the commit's own, not the early check's.
      const seen = await store.readAllocationSnapshot({
        node: NODE,
        floatingIps: ["203.0.113.20", "203.0.113.10"],
      });
      const holder = await attach("holder", ["203.0.113.10"]);
      // The free IP first: a datastore that claims one by one has claimed it when refused.
      const refused = await prepare("refused", ["203.0.113.20", "203.0.113.10"]);
      await expect(store.commitAttachment(attachment(refused, seen))).rejects.toThrow(
        new FloatingIpError(
          `floating IP 203.0.113.10 is already held by pod ${under.namespace}/holder`,
        ),
      );
      expect(await store.getClaim("203.0.113.20")).toBeUndefined();
      expect((await store.getClaim("203.0.113.10"))?.containerID).toBe(holder.containerID);
      expect(await store.getEndpoint(refused.ref)).toBeUndefined();
      expect(await attachedIDs()).not.toContain(refused.containerID);
    });

    it("a commitAttachment() refused for another pod's own address leaves none of its claims and no endpoint", async () => {
      const seen = await store.readAllocationSnapshot({
        node: NODE,
        floatingIps: ["203.0.113.21"],
      });
      const pod = await attach("pod");
      const refused = await prepare("refused", ["203.0.113.21", pod.ip]);
      await expect(store.commitAttachment(attachment(refused, seen))).rejects.toThrow(
        new FloatingIpError(`floating IP ${pod.ip} is the address of pod ${under.namespace}/pod`),
      );
      expect(await store.getClaim("203.0.113.21")).toBeUndefined();
      expect(await store.getClaim(pod.ip)).toBeUndefined();
      expect(await store.getEndpoint(refused.ref)).toBeUndefined();
      expect(await attachedIDs()).not.toContain(refused.containerID);
    });
  });
}

/** Fails when two of the block CIDRs overlap. */
function expectNoOverlap(cidrs: readonly string[]): void {
  const ranges = cidrs.map((cidr) => {
    const prefix = parsePrefix(cidr);
    if (!prefix) throw new Error(`'${cidr}' is not a CIDR`);
    return { cidr, start: prefix.base, end: prefix.base + prefixSize(prefix) };
  });
  for (const a of ranges) {
    for (const b of ranges) {
      if (a !== b && a.start < b.end && b.start < a.end) {
        throw new Error(`blocks ${a.cidr} and ${b.cidr} overlap`);
      }
    }
  }
}
