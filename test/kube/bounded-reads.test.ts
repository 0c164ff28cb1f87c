// Issue 14 on a real kube-apiserver: what one pod's ADD and DEL ask the API
// server for does not grow with the cluster. The same ADD (IPAM, a floating
// IP's claim, the endpoint, the pod's annotations) and DEL run with the
// cluster empty and holding 500 other nodes' blocks and 1,000 claims (250
// of them an older buoy's, without the container label DEL selects by);
// every request the plugin's datastore makes is counted, with the bytes it
// got.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FloatingIpClaim } from "../../src/model/records.js";
import { validatePool } from "../../src/ipam/pool.js";
import type { KubeHttp } from "../../src/kube/http.js";
import { KubernetesDatastore } from "../../src/kube/kube-datastore.js";
import { blockToObject, claimToObject } from "../../src/kube/objects.js";
import { installPluginConf, pluginKubeHttp } from "../support/buoy-install.js";
import { addAndDelCounted, podOwner, type Reads } from "../support/one-pod-add-del.js";
import { runPrefix } from "../support/harness.js";
import { startKubeApiserver, type KubeApiserver } from "../support/kube.js";

const BUOY = "/apis/buoy.dev/v1";
const NODE = "node-1";
const NAMESPACE = "default";
const POOLS = [
  validatePool("pods", { cidr: "10.0.0.0/8", blockSize: 26 }),
  validatePool("floating", { cidr: "203.0.0.0/16", disabled: true }),
];
const prefix = runPrefix();

let kube: KubeApiserver;
let work: string;
let http: KubeHttp;

/** The KubeHttp, counting its requests and the bytes of what they returned. */
function counting(inner: KubeHttp): { http: KubeHttp; reads: Reads } {
  const reads: Reads = { requests: 0, bytes: 0 };
  const count = async <T>(call: Promise<T>): Promise<T> => {
    reads.requests++;
    const result = await call;
    reads.bytes += result === undefined ? 0 : JSON.stringify(result).length;
    return result;
  };
  return {
    reads,
    http: {
      server: inner.server,
      get: (path) => count(inner.get(path)),
      create: (path, body) => count(inner.create(path, body)),
      replace: (path, body) => count(inner.replace(path, body)),
      patch: (path, body, type) => count(inner.patch(path, body, type)),
      delete: (path, preconditions) => count(inner.delete(path, preconditions)),
    },
  };
}

/** POSTs in parallel, 16 at a time. */
async function createAll(path: string, objects: readonly unknown[]): Promise<void> {
  for (let start = 0; start < objects.length; start += 16) {
    await Promise.all(
      objects.slice(start, start + 16).map((object) => kube.admin.json("POST", path, object)),
    );
  }
}

/**
 * Other nodes' blocks (20 pods each, with their region records) and claims
 * held by pods on them, the last `unlabelled` as an older buoy wrote them:
 * without the container label.
 */
async function fill(nodes: number, claims: number, unlabelled: number): Promise<void> {
  const regions = new Map<string, string[]>();
  const blocks = Array.from({ length: nodes }, (_, n) => {
    const node = `other-${n}`;
    const base = `10.1.${Math.floor(n / 4)}.`;
    const first = (n % 4) * 64;
    const cidr = `${base}${first}/26`;
    const region = `10.1.${Math.floor(n / 64) * 16}.0/20`;
    regions.set(region, [...(regions.get(region) ?? []), cidr]);
    const allocations = Object.fromEntries(
      Array.from({ length: 20 }, (_, p) => [
        `${base}${first + p}`,
        podOwner(`${node}-${p}`, node, NAMESPACE),
      ]),
    );
    return blockToObject({ cidr, affinity: node, allocations });
  });
  await createAll(`${BUOY}/ipamblocks`, blocks);
  await createAll(
    `${BUOY}/ipamregions`,
    [...regions].map(([cidr, listed]) => ({
      apiVersion: "buoy.dev/v1",
      kind: "IPAMRegion",
      metadata: { name: cidr.replace("/", "-") },
      spec: { cidr, blocks: listed.sort() },
    })),
  );
  const held: FloatingIpClaim[] = Array.from({ length: claims }, (_, c) => ({
    ip: `203.0.${Math.floor(c / 256) + 1}.${c % 256}`,
    namespace: NAMESPACE,
    pod: `holder-${c}`,
    containerID: `holder-${c}`,
    node: `other-${c % nodes}`,
    internalIP: "10.0.0.1",
    createdAt: "",
  }));
  await createAll(
    `${BUOY}/floatingipclaims`,
    held.map((claim, c) => {
      const object = claimToObject(claim, undefined);
      if (c < claims - unlabelled) return object;
      return { ...object, metadata: { ...object.metadata, labels: {} } };
    }),
  );
}

/** One pod's ADD and DEL on node-1, with the plugin's token, counted at its KubeHttp. */
async function addAndDel(pod: string): Promise<{ add: Reads; del: Reads }> {
  const counted = counting(http);
  await kube.admin.json("POST", `/api/v1/namespaces/${NAMESPACE}/pods`, {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: pod },
    spec: { nodeName: NODE, containers: [{ name: "c", image: "busybox" }] },
  });
  return addAndDelCounted({
    datastore: new KubernetesDatastore(counted.http, NODE),
    reads: counted.reads,
    node: NODE,
    pod,
    namespace: NAMESPACE,
    floating: "203.0.200.7",
    pools: POOLS,
    // The watch cache serves the node's blocks: let it see the first one.
    settle: () => new Promise((resolve) => setTimeout(resolve, 500)),
  });
}

beforeAll(async () => {
  kube = await startKubeApiserver();
  work = mkdtempSync(join(tmpdir(), `${prefix}-bounded-`));
  const conf = await installPluginConf(kube, work, NODE);
  http = pluginKubeHttp(conf);
  await kube.admin.json("POST", "/api/v1/nodes", {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: NODE },
  });
  for (const pool of POOLS) {
    await kube.admin.json("POST", `${BUOY}/ippools`, {
      apiVersion: "buoy.dev/v1",
      kind: "IPPool",
      metadata: { name: pool.name },
      spec: { cidr: pool.cidr, blockSize: pool.blockSize, disabled: pool.disabled },
    });
  }
}, 180_000);

afterAll(async () => {
  await kube?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("ADD and DEL on Kubernetes ask the same whatever the cluster holds", () => {
  it("ADD and DEL make as many requests, and read no more bytes, with 500 nodes' blocks and 1,000 claims (250 unlabelled) as with none", async () => {
    const empty = await addAndDel("empty");
    await fill(500, 1000, 250);
    const full = await addAndDel("full");
    process.stdout.write(`bounded reads: ${JSON.stringify({ empty, full })}\n`);
    expect(full.add.requests).toBe(empty.add.requests);
    expect(full.del.requests).toBe(empty.del.requests);
    // The same objects, give or take digits in names and resourceVersions.
    expect(full.add.bytes).toBeLessThanOrEqual(empty.add.bytes * 1.2);
    expect(full.del.bytes).toBeLessThanOrEqual(empty.del.bytes * 1.2);
  }, 180_000);
});
