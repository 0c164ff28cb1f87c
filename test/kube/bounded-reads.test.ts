// Issue 14 on a real kube-apiserver: what one pod's ADD and DEL ask the API
// server for does not grow with the cluster. The same ADD (IPAM, a floating
// IP's claim, the endpoint, the pod's annotations) and DEL run with the
// cluster empty and holding 500 other nodes' blocks and 1,000 claims; every
// request the plugin's datastore makes is counted, with the bytes it got.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseNetConf } from "../../src/cni/netconf.js";
import type {
  AllocationOwner,
  FloatingIpClaim,
  WorkloadEndpoint,
} from "../../src/model/records.js";
import { assignAddress } from "../../src/ipam/ipam.js";
import { validatePool } from "../../src/ipam/pool.js";
import { createKubeHttp, type KubeHttp } from "../../src/kube/http.js";
import { KubernetesDatastore } from "../../src/kube/kube-datastore.js";
import { parseKubeconfig } from "../../src/kube/kubeconfig.js";
import { blockToObject, claimToObject } from "../../src/kube/objects.js";
import {
  applyManifests,
  installCniFromConfigMap,
  waitForBuoyCrds,
} from "../support/buoy-install.js";
import { CNI_DIR, runPrefix, type Conflist } from "../support/harness.js";
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

interface Reads {
  requests: number;
  bytes: number;
}

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

function owner(pod: string, node: string): AllocationOwner {
  return {
    handle: `net.${pod}`,
    node,
    namespace: NAMESPACE,
    pod,
    network: "net",
    containerID: pod,
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

/** Other nodes' blocks (20 pods each, with their region records) and claims held by pods on them. */
async function fill(nodes: number, claims: number): Promise<void> {
  const regions = new Map<string, string[]>();
  const blocks = Array.from({ length: nodes }, (_, n) => {
    const node = `other-${n}`;
    const base = `10.1.${Math.floor(n / 4)}.`;
    const first = (n % 4) * 64;
    const cidr = `${base}${first}/26`;
    const region = `10.1.${Math.floor(n / 64) * 16}.0/20`;
    regions.set(region, [...(regions.get(region) ?? []), cidr]);
    const allocations = Object.fromEntries(
      Array.from({ length: 20 }, (_, p) => [`${base}${first + p}`, owner(`${node}-${p}`, node)]),
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
    held.map((claim) => claimToObject(claim, undefined)),
  );
}

/** One pod's ADD with one floating IP, then its DEL, on node-1; the requests of each. */
async function addAndDel(pod: string): Promise<{ add: Reads; del: Reads }> {
  const counted = counting(http);
  const datastore = new KubernetesDatastore(counted.http, NODE);
  await kube.admin.json("POST", `/api/v1/namespaces/${NAMESPACE}/pods`, {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: pod },
    spec: { nodeName: NODE, containers: [{ name: "c", image: "busybox" }] },
  });
  // The node has run pods before: its block exists.
  await assignAddress(datastore, { family: 4, owner: owner(`${pod}-earlier`, NODE), pools: [] });
  // The watch cache serves the node's blocks: let it see that one.
  await new Promise((resolve) => setTimeout(resolve, 500));
  const start = { ...counted.reads };
  const floating = "203.0.200.7";
  const snapshot = await datastore.readAllocationSnapshot({ node: NODE, floatingIps: [floating] });
  const podOwner = owner(pod, NODE);
  const ip = await assignAddress(
    datastore,
    { family: 4, owner: podOwner, pools: [], exclude: [floating] },
    snapshot,
  );
  const createdAt = new Date().toISOString();
  const endpoint: WorkloadEndpoint = {
    node: NODE,
    namespace: NAMESPACE,
    pod,
    containerID: pod,
    endpoint: "eth0",
    interfaceName: "calipod",
    mac: "0a:58:0a:00:00:05",
    ipNetworks: [`${ip}/32`],
    ipNATs: [{ internalIP: ip, externalIP: floating }],
    network: "net",
    createdAt,
  };
  await datastore.commitAttachment({
    endpoint,
    claims: [
      {
        ip: floating,
        namespace: NAMESPACE,
        pod,
        containerID: pod,
        node: NODE,
        internalIP: ip,
        createdAt,
        endpoint: "eth0",
        network: "net",
      },
    ],
    pools: POOLS,
    seen: snapshot,
  });
  const add = {
    requests: counted.reads.requests - start.requests,
    bytes: counted.reads.bytes - start.bytes,
  };
  const before = { ...counted.reads };
  const released = await datastore.release({
    node: NODE,
    containerID: pod,
    ifname: "eth0",
    handle: podOwner.handle,
    namespace: NAMESPACE,
    pod,
  });
  expect(released).toEqual({ addresses: [ip], floatingIps: [floating] });
  const del = {
    requests: counted.reads.requests - before.requests,
    bytes: counted.reads.bytes - before.bytes,
  };
  return { add, del };
}

beforeAll(async () => {
  kube = await startKubeApiserver();
  work = mkdtempSync(join(tmpdir(), `${prefix}-bounded-`));
  applyManifests(kube, ["crds.yaml", "rbac.yaml", "calico-config.yaml"]);
  await waitForBuoyCrds(kube);
  const path = await installCniFromConfigMap(kube, work, NODE, join(CNI_DIR, "buoy"));
  const conflist = JSON.parse(readFileSync(path, "utf8")) as Conflist;
  const conf = parseNetConf({
    ...conflist.plugins[0],
    name: conflist.name,
    cniVersion: conflist.cniVersion,
  });
  const kubeconfig = conf.kubeconfig ?? "";
  http = createKubeHttp(
    parseKubeconfig(readFileSync(kubeconfig, "utf8"), kubeconfig, (file) =>
      readFileSync(file, "utf8"),
    ),
  );
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
  it("ADD and DEL make as many requests, and read no more bytes, with 500 nodes' blocks and 1,000 claims as with none", async () => {
    const empty = await addAndDel("empty");
    await fill(500, 1000);
    const full = await addAndDel("full");
    expect(full.add.requests).toBe(empty.add.requests);
    expect(full.del.requests).toBe(empty.del.requests);
    // The same objects, give or take digits in names and resourceVersions.
    expect(full.add.bytes).toBeLessThanOrEqual(empty.add.bytes * 1.2);
    expect(full.del.bytes).toBeLessThanOrEqual(empty.del.bytes * 1.2);
    process.stdout.write(`bounded reads: ${JSON.stringify({ empty, full })}\n`);
  }, 180_000);
});
