// The resident server's cache (src/kube/node-cache.ts) on a real
// kube-apiserver: a served ADD reads the pools, the node's blocks and its
// Node from a watch, and a cache behind the API server costs a retry, never
// a wrong allocation. The stale cases hold a cache that never hears the
// watch (only the datastore's own writes and reads reach it), so another
// writer's change is always missed, not only sometimes.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { residentDatastores } from "../../src/cni/open-datastore.js";
import type { Datastore } from "../../src/datastore/datastore.js";
import { assignAddress } from "../../src/ipam/ipam.js";
import { validatePool } from "../../src/ipam/pool.js";
import { silentLogger } from "../../src/log/logger.js";
import type { IpamBlock } from "../../src/model/records.js";
import type { KubeHttp } from "../../src/kube/http.js";
import { KubernetesDatastore } from "../../src/kube/kube-datastore.js";
import type { KubeReadCache } from "../../src/kube/node-cache.js";
import { ObjectCache } from "../../src/kube/object-cache.js";
import { blockToObject, type KubeObject } from "../../src/kube/objects.js";
import type { NetConf } from "../../src/cni/netconf.js";
import { installPluginConf, pluginKubeHttp } from "../support/buoy-install.js";
import { podOwner } from "../support/one-pod-add-del.js";
import { runPrefix } from "../support/harness.js";
import { startKubeApiserver, type KubeApiserver } from "../support/kube.js";

const BUOY = "/apis/buoy.dev/v1";
const NODE = "node-1";
const NAMESPACE = "default";
const POOL = validatePool("pods", { cidr: "10.20.0.0/16", blockSize: 26 });
const prefix = runPrefix();

let kube: KubeApiserver;
let work: string;
let conf: NetConf;
let http: KubeHttp;

/** The KubeHttp, recording each request as "METHOD path". */
function recording(inner: KubeHttp): { http: KubeHttp; calls: string[] } {
  const calls: string[] = [];
  const note = <T>(what: string, call: () => Promise<T>) => {
    calls.push(what);
    return call();
  };
  return {
    calls,
    http: {
      server: inner.server,
      get: (path) => note(`GET ${path}`, () => inner.get(path)),
      create: (path, body) => note(`POST ${path}`, () => inner.create(path, body)),
      replace: (path, body) => note(`PUT ${path}`, () => inner.replace(path, body)),
      patch: (path, body, type) => note(`PATCH ${path}`, () => inner.patch(path, body, type)),
      delete: (path, pre) => note(`DELETE ${path}`, () => inner.delete(path, pre)),
    },
  };
}

/** A cache that hears no watch: what it holds changes only by the datastore's own writes and reads. */
function deafCache(node: string): KubeReadCache & { blocks: ObjectCache } {
  const blocks = new ObjectCache();
  return {
    blocks,
    nodeBlocks: (asked) => (asked === node ? blocks.list() : undefined),
    nodeUID: () => undefined,
    blockSeen: (name, object, supersedes) =>
      object ? blocks.put(object, supersedes) : blocks.remove(name),
  };
}

async function readBlock(cidr: string): Promise<KubeObject<IpamBlock>> {
  return kube.admin.json<KubeObject<IpamBlock>>(
    "GET",
    `${BUOY}/ipamblocks/${cidr.replace("/", "-")}`,
  );
}

/** Another writer allocates `ip` in the block, behind the cache's back. */
async function allocateBehind(cidr: string, ip: string, pod: string): Promise<void> {
  const object = await readBlock(cidr);
  const spec = object.spec!;
  const changed = {
    ...spec,
    allocations: { ...spec.allocations, [ip]: podOwner(pod, NODE, NAMESPACE) },
  };
  await kube.admin.json(
    "PUT",
    `${BUOY}/ipamblocks/${cidr.replace("/", "-")}`,
    blockToObject(changed, object.metadata.resourceVersion),
  );
}

beforeAll(async () => {
  kube = await startKubeApiserver();
  work = mkdtempSync(join(tmpdir(), `${prefix}-served-cache-`));
  conf = await installPluginConf(kube, work, NODE);
  http = pluginKubeHttp(conf);
  await kube.admin.json("POST", "/api/v1/nodes", { metadata: { name: NODE } });
  await kube.admin.json("POST", `${BUOY}/ippools`, {
    apiVersion: "buoy.dev/v1",
    kind: "IPPool",
    metadata: { name: POOL.name },
    spec: { cidr: POOL.cidr, blockSize: POOL.blockSize },
  });
}, 180_000);

afterAll(async () => {
  await kube?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("the resident server's cache", () => {
  it("a block another writer changed behind the cache: the write conflicts, is read by name, and the retry gives a free address", async () => {
    const cache = deafCache(NODE);
    const recorded = recording(http);
    const datastore: Datastore = new KubernetesDatastore(recorded.http, NODE, cache);
    const first = await assignAddress(datastore, {
      family: 4,
      owner: podOwner("first", NODE, NAMESPACE),
      pools: [],
    });
    const [cidr] = cache.blocks.list().map((object) => (object.spec as unknown as IpamBlock).cidr);
    expect(cidr).toBeDefined();
    // The address the cache would pick next, taken by someone else.
    const next = `${first.split(".").slice(0, 3).join(".")}.${Number(first.split(".")[3]) + 1}`;
    await allocateBehind(cidr!, next, "behind");
    recorded.calls.length = 0;
    const second = await assignAddress(datastore, {
      family: 4,
      owner: podOwner("second", NODE, NAMESPACE),
      pools: [],
    });
    expect(second).not.toBe(first);
    expect(second).not.toBe(next);
    const held = (await readBlock(cidr!)).spec!.allocations;
    expect(Object.keys(held).sort()).toEqual([first, next, second].sort());
    // No list of blocks: the cache; one conflicted write, one read by name, one retry.
    const puts = recorded.calls.filter((call) => call.startsWith("PUT "));
    expect(puts).toHaveLength(2);
    expect(recorded.calls.filter((call) => call.startsWith(`GET ${BUOY}/ipamblocks?`))).toEqual([]);
  });

  it("a block deleted behind the cache: the write finds it gone, and a new block is made", async () => {
    const cache = deafCache(NODE);
    const datastore = new KubernetesDatastore(http, NODE, cache);
    const first = await assignAddress(datastore, {
      family: 4,
      owner: podOwner("gone-1", NODE, NAMESPACE),
      pools: [],
    });
    const [cidr] = cache.blocks.list().map((object) => (object.spec as unknown as IpamBlock).cidr);
    await kube.admin.json("DELETE", `${BUOY}/ipamblocks/${cidr!.replace("/", "-")}`);
    const second = await assignAddress(datastore, {
      family: 4,
      owner: podOwner("gone-2", NODE, NAMESPACE),
      pools: [],
    });
    expect(second).toBeDefined();
    expect(cache.blocks.get(cidr!.replace("/", "-"))).toBeUndefined();
    expect(first).toBeDefined();
  });

  it("the resident datastore, kept across requests, and the executable's, allocating at once on one node, never share an address", async () => {
    const resident = residentDatastores(silentLogger);
    try {
      const served = await resident.open(conf, NODE);
      // The executable's datastore: no cache, writing the same node's blocks.
      const executable = new KubernetesDatastore(http, NODE);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const ips = new Set<string>();
      const owners = Array.from({ length: 12 }, (_, i) => podOwner(`mix-${i}`, NODE, NAMESPACE));
      // Both at once: the cache is behind the executable's writes every time.
      const given = await Promise.all(
        owners.map((owner, i) =>
          assignAddress(i % 2 === 0 ? served : executable, { family: 4, owner, pools: [] }),
        ),
      );
      for (const ip of given) ips.add(ip);
      expect(ips.size).toBe(owners.length);
      expect(await resident.open(conf, NODE)).toBe(served);
    } finally {
      resident.stop();
    }
  });
});
