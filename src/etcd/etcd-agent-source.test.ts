// Issue 14: a node's agent reads, and wakes for, the claims of the floating
// IPs its own endpoints ask for, not every claim in the cluster.
import { describe, expect, it } from "vitest";
import { createStreamLogger } from "../log/logger.js";
import type { FloatingIpClaim, WorkloadEndpoint } from "../model/records.js";
import { EtcdAgentSource } from "./etcd-agent-source.js";
import { MemoryKv } from "./memory-kv.js";
import { keys } from "./store.js";

const endpoint = (node: string, container: string, floating: string): WorkloadEndpoint => ({
  node,
  namespace: "ns",
  pod: container,
  containerID: container,
  endpoint: "eth0",
  interfaceName: `cali${container}`,
  mac: "0a:58:0a:00:00:05",
  ipNetworks: ["10.0.0.5/32"],
  ipNATs: [{ internalIP: "10.0.0.5", externalIP: floating }],
  network: "net",
  createdAt: "2026-12-02T00:00:00Z",
});

const claim = (ip: string, node: string, container: string): FloatingIpClaim => ({
  ip,
  namespace: "ns",
  pod: container,
  containerID: container,
  node,
  internalIP: "10.0.0.5",
  createdAt: "2026-12-02T00:00:00Z",
});

async function cluster(): Promise<MemoryKv> {
  const kv = new MemoryKv();
  const put = (key: string, value: unknown) => ({ put: key, value: JSON.stringify(value) });
  await kv.txn(
    [],
    [
      put(keys.endpoint("n1", "mine", "eth0"), endpoint("n1", "mine", "203.0.113.10")),
      put(keys.claim("203.0.113.10"), claim("203.0.113.10", "n1", "mine")),
      put(keys.endpoint("n2", "theirs", "eth0"), endpoint("n2", "theirs", "203.0.113.20")),
      put(keys.claim("203.0.113.20"), claim("203.0.113.20", "n2", "theirs")),
    ],
  );
  return kv;
}

/** Endpoints and claims of this node (n1), floating IPs 203.0.113.1 and on. */
const mine = (containers: readonly string[]) =>
  containers.flatMap((container, index) => [
    {
      put: keys.endpoint("n1", container, "eth0"),
      value: JSON.stringify(endpoint("n1", container, `203.0.113.${index + 1}`)),
    },
    {
      put: keys.claim(`203.0.113.${index + 1}`),
      value: JSON.stringify(claim(`203.0.113.${index + 1}`, "n1", container)),
    },
  ]);

/** A MemoryKv that notes its reads of the claims: pages of the prefix, or keys read. */
class CountingKv extends MemoryKv {
  readonly reads: string[] = [];

  override listPage(prefix: string, after: string | undefined, limit: number) {
    if (prefix === keys.claims) this.reads.push("claims page");
    return super.listPage(prefix, after, limit);
  }

  override readMany(reads: Parameters<MemoryKv["readMany"]>[0]) {
    const claims = reads.filter((read) => "key" in read && read.key.startsWith(keys.claims));
    if (claims.length > 0) this.reads.push(`claims readMany ${claims.length}`);
    return super.readMany(reads);
  }
}

/** A source over `kv` for n1 that reads in pages of 2. */
const paged = (kv: MemoryKv) =>
  new EtcdAgentSource({
    kv,
    node: "n1",
    routing: "none",
    logger: createStreamLogger(() => {}, "error"),
    readPageSize: 2,
  });

const source = (kv: MemoryKv) =>
  new EtcdAgentSource({
    kv,
    node: "n1",
    routing: "none",
    logger: createStreamLogger(() => {}, "error"),
  });

/** Watches `agent`, counting its wake-ups, once the watch is connected. */
async function watchCounting(agent: EtcdAgentSource) {
  const controller = new AbortController();
  let changes = 0;
  let up!: () => void;
  const connected = new Promise<void>((resolve) => (up = resolve));
  const watching = agent.watch(controller.signal, {
    changed: () => changes++,
    connected: (isUp) => isUp && up(),
  });
  await connected;
  return {
    changes: () => changes,
    stop: async () => {
      controller.abort();
      await watching;
    },
  };
}

describe("EtcdAgentSource", () => {
  it("read() gives the claims this node's endpoints ask for, not another node's", async () => {
    const state = await source(await cluster()).read();
    expect(state.claim.map((record) => record.key)).toEqual([keys.claim("203.0.113.10")]);
    expect(state.endpoint).toHaveLength(1);
  });

  it("readInPages() hands over each prefix in pages of at most the page size, and the claims asked for", async () => {
    const kv = await cluster();
    await kv.txn([], mine(["a", "b", "c", "d"]));
    const pages: string[] = [];
    await paged(kv).readInPages((kind, records) => pages.push(`${kind} ${records.length}`));
    expect(pages.filter((page) => page.startsWith("endpoint"))).toEqual([
      "endpoint 2",
      "endpoint 2",
      "endpoint 1",
    ]);
    // read() is the same pages, gathered: this node's claims only.
    const state = await paged(kv).read();
    expect(state.endpoint.map((record) => record.key)).toEqual(
      ["a", "b", "c", "d", "mine"].map((container) => keys.endpoint("n1", container, "eth0")),
    );
    expect(state.claim.map((record) => record.key).sort()).toEqual(
      ["1", "10", "2", "3", "4"].map((last) => keys.claim(`203.0.113.${last}`)).sort(),
    );
  });

  for (const { desc, others, claimReads } of [
    {
      desc: "pages through the claims prefix when it holds at most twice the claims asked for",
      others: 0,
      claimReads: ["page", "page", "page"],
    },
    {
      desc: "reads the claims by key when the prefix holds more than twice as many",
      others: 12,
      claimReads: ["readMany 5"],
    },
  ]) {
    it(`readInPages() ${desc}`, async () => {
      const kv = new CountingKv();
      await kv.txn([], mine(["a", "b", "c", "d", "e"]));
      const theirs = Array.from({ length: others }, (_, index) => ({
        put: keys.claim(`198.51.100.${index + 1}`),
        value: JSON.stringify(claim(`198.51.100.${index + 1}`, "n2", `c${index}`)),
      }));
      if (theirs.length > 0) await kv.txn([], theirs);
      kv.reads.length = 0;
      const state = await paged(kv).read();
      expect(kv.reads.filter((read) => read.startsWith("claims"))).toEqual(
        claimReads.map((read) => `claims ${read}`),
      );
      expect(state.claim).toHaveLength(5);
    });
  }

  it("watch() wakes for a status record of one of its floating IPs, not another's (no direct routes)", async () => {
    const kv = await cluster();
    const agent = source(kv);
    await agent.read();
    const watch = await watchCounting(agent);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const before = watch.changes();
    const status = (ip: string) => ({
      put: keys.status("n2", ip),
      value: JSON.stringify({ ip, node: "n2", internalIP: "10.0.0.5", programmedSince: "" }),
    });
    await kv.txn([], [status("203.0.113.20")]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(watch.changes()).toBe(before);
    await kv.txn([], [status("203.0.113.10")]);
    await expect.poll(watch.changes, { timeout: 1000 }).toBe(before + 1);
    await watch.stop();
  });

  it("watch() wakes for a change of this node's claim, not for another node's", async () => {
    const kv = await cluster();
    const agent = source(kv);
    await agent.read();
    const watch = await watchCounting(agent);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const before = watch.changes();
    await kv.txn([], [{ delete: keys.claim("203.0.113.20") }]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(watch.changes()).toBe(before);
    await kv.txn([], [{ delete: keys.claim("203.0.113.10") }]);
    await expect.poll(watch.changes, { timeout: 1000 }).toBe(before + 1);
    await watch.stop();
  });

  it("readChanges() gives its own status writes as written, at their revision, and wakes for none of their echoes", async () => {
    const kv = await cluster();
    const agent = source(kv);
    const watch = await watchCounting(agent);
    await agent.read();
    const settle = () => new Promise((resolve) => setTimeout(resolve, 20));
    await settle();
    const before = watch.changes();
    const status = { ip: "203.0.113.10", node: "n1", internalIP: "10.0.0.5", programmedSince: "t" };
    await agent.recordStatus([status], []);
    await settle();
    expect(watch.changes()).toBe(before);
    const written = await kv.get(keys.status("n1", "203.0.113.10"));
    const own = await agent.readChanges();
    expect(own).toEqual([
      {
        kind: "status",
        key: keys.status("n1", "203.0.113.10"),
        record: {
          key: keys.status("n1", "203.0.113.10"),
          version: String(written?.modRevision),
          value: status,
        },
      },
    ]);
    expect(own?.[0]?.record?.value).toBe(status);
    expect(await agent.readChanges()).toEqual([]);
    // Someone else's write of the same record is kept, and wakes the agent.
    await kv.txn(
      [],
      [
        {
          put: keys.status("n1", "203.0.113.10"),
          value: JSON.stringify({ ...status, internalIP: "10.0.0.6" }),
        },
      ],
    );
    await expect.poll(watch.changes, { timeout: 1000 }).toBe(before + 1);
    expect((await agent.readChanges())?.map((change) => change.record?.value)).toEqual([
      { ...status, internalIP: "10.0.0.6" },
    ]);
    await watch.stop();
  });

  it("readChanges() reads by key only what changed, the claims an endpoint comes to ask for, and forgets the rest", async () => {
    const kv = await cluster();
    const agent = source(kv);
    const controller = new AbortController();
    let up!: () => void;
    const connected = new Promise<void>((resolve) => (up = resolve));
    const watching = agent.watch(controller.signal, {
      changed: () => {},
      connected: (isUp) => isUp && up(),
    });
    await connected;
    // A watch that has just been (re)established: what it missed is unknown.
    expect(await agent.readChanges()).toBeUndefined();
    await agent.read();
    expect(await agent.readChanges()).toEqual([]);
    const settle = () => new Promise((resolve) => setTimeout(resolve, 20));
    const put = (key: string, value: unknown) => ({ put: key, value: JSON.stringify(value) });

    // "mine" comes to ask for another floating IP; another node's claim changes meanwhile.
    await kv.txn([], [put(keys.claim("203.0.113.11"), claim("203.0.113.11", "n1", "mine"))]);
    await kv.txn([], [put(keys.claim("203.0.113.20"), claim("203.0.113.20", "n2", "other"))]);
    await kv.txn(
      [],
      [
        put(keys.endpoint("n1", "mine", "eth0"), {
          ...endpoint("n1", "mine", "203.0.113.10"),
          ipNATs: [{ internalIP: "10.0.0.5", externalIP: "203.0.113.11" }],
        }),
      ],
    );
    await settle();
    const summary = (changes: Awaited<ReturnType<EtcdAgentSource["readChanges"]>>) =>
      changes?.map(({ kind, key, record }) => `${kind} ${key} ${record ? "put" : "gone"}`);
    expect(summary(await agent.readChanges())).toEqual([
      `endpoint ${keys.endpoint("n1", "mine", "eth0")} put`,
      // No endpoint asks for .10 any more: forgotten; .11 is read because one does now.
      `claim ${keys.claim("203.0.113.10")} gone`,
      `claim ${keys.claim("203.0.113.11")} put`,
    ]);
    expect(await agent.readChanges()).toEqual([]);

    // A status record anywhere is kept (who hosts an address), read by its key.
    await kv.txn(
      [],
      [
        put(keys.status("n2", "203.0.113.30"), {
          ip: "203.0.113.30",
          node: "n2",
          internalIP: "10.0.0.9",
          programmedSince: "",
        }),
      ],
    );
    await settle();
    expect(summary(await agent.readChanges())).toEqual([
      `status ${keys.status("n2", "203.0.113.30")} put`,
    ]);
    controller.abort();
    await watching;
  });
});
