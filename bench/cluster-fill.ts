// What a big cluster holds besides the benchmark's own pods, written
// straight into a datastore (objects only, no kubelets): `nodes` other
// nodes, each with its Node (Kubernetes) or node record (etcd), one /26
// block of 20 pods with its affinity and its region's record, and `claims`
// floating IPs held by pods on them. And the datastores' own counters of
// the requests they served and the bytes they sent, read from /metrics.
import {
  blockToObject,
  affinityObject,
  claimToObject,
  regionToObject,
} from "../src/kube/objects.js";
import { keys } from "../src/etcd/store.js";
import { regionCidrOf } from "../src/ipam/region.js";
import type { FloatingIpClaim, IpamBlock } from "../src/model/records.js";
import type { KvOp } from "../src/datastore/kv.js";
import type { Etcd } from "../test/support/harness.js";
import type { KubeApiserver } from "../test/support/kube.js";
import { MAX_TXN_OPS } from "../src/datastore/kv.js";
import { progress } from "./report.js";

const BUOY = "/apis/buoy.dev/v1";

/** Other nodes' blocks lie from OTHER_BASE on, inside the benchmark's pods pool. */
export const PODS_POOL = "10.128.0.0/12";
const OTHER_BASE = (10 << 24) | (136 << 16);

function ipOf(value: number): string {
  return [24, 16, 8, 0].map((shift) => (value >>> shift) & 255).join(".");
}

export function otherBlock(index: number): IpamBlock {
  const node = `other-${index}`;
  const base = OTHER_BASE + index * 64;
  const allocations = Object.fromEntries(
    Array.from({ length: 20 }, (_, p) => [
      ipOf(base + p),
      {
        handle: `k8s-pod-network.other-${index}-${p}`,
        node,
        namespace: "elsewhere",
        pod: `other-${index}-${p}`,
        network: "k8s-pod-network",
        containerID: `other-${index}-${p}`,
      },
    ]),
  );
  return { cidr: `${ipOf(base)}/26`, affinity: node, allocations };
}

function regions(blocks: readonly IpamBlock[]): Map<string, string[]> {
  const byRegion = new Map<string, string[]>();
  for (const block of blocks) {
    const region = regionCidrOf(block.cidr) ?? "";
    byRegion.set(region, [...(byRegion.get(region) ?? []), block.cidr]);
  }
  return byRegion;
}

export async function fillEtcd(
  etcd: Etcd,
  nodes: number,
  claims: readonly FloatingIpClaim[],
): Promise<void> {
  const ops: KvOp[] = [];
  const flush = async (force = false) => {
    while (ops.length >= MAX_TXN_OPS || (force && ops.length > 0)) {
      await etcd.store.kv.txn([], ops.splice(0, MAX_TXN_OPS));
    }
  };
  const blocks = Array.from({ length: nodes }, (_, index) => otherBlock(index));
  for (const [index, block] of blocks.entries()) {
    ops.push(
      {
        put: keys.node(block.affinity),
        value: JSON.stringify({ name: block.affinity, addresses: [ipOf((192 << 24) + index)] }),
      },
      { put: keys.block(block.cidr), value: JSON.stringify(block) },
      {
        put: keys.affinity(block.affinity, block.cidr),
        value: JSON.stringify({ cidr: block.cidr, node: block.affinity }),
      },
    );
    await flush();
    progress(`[fill etcd] node ${index + 1}/${nodes}`);
  }
  for (const [cidr, listed] of regions(blocks)) {
    ops.push({ put: keys.region(cidr), value: JSON.stringify({ cidr, blocks: listed.sort() }) });
  }
  for (const claim of claims) {
    ops.push({ put: keys.claim(claim.ip), value: JSON.stringify(claim) });
    await flush();
  }
  await flush(true);
  progress(`[fill etcd] ${nodes} nodes, ${claims.length} claims`, true);
}

/** POSTs in parallel, 32 at a time. */
async function createAll(
  kube: KubeApiserver,
  what: string,
  path: string,
  objects: readonly unknown[],
): Promise<void> {
  for (let start = 0; start < objects.length; start += 32) {
    await Promise.all(
      objects.slice(start, start + 32).map((object) => kube.admin.json("POST", path, object)),
    );
    progress(`[fill kubernetes] ${what} ${Math.min(start + 32, objects.length)}/${objects.length}`);
  }
  progress(`[fill kubernetes] ${objects.length} ${what}`, true);
}

export async function fillKube(
  kube: KubeApiserver,
  nodes: number,
  claims: readonly FloatingIpClaim[],
): Promise<void> {
  const blocks = Array.from({ length: nodes }, (_, index) => otherBlock(index));
  await createAll(
    kube,
    "Nodes",
    "/api/v1/nodes",
    blocks.map((block) => ({ metadata: { name: block.affinity } })),
  );
  await createAll(
    kube,
    "IPAMBlocks",
    `${BUOY}/ipamblocks`,
    blocks.map((b) => blockToObject(b)),
  );
  await createAll(kube, "BlockAffinities", `${BUOY}/blockaffinities`, blocks.map(affinityObject));
  await createAll(
    kube,
    "IPAMRegions",
    `${BUOY}/ipamregions`,
    [...regions(blocks)].map(([cidr, listed]) => regionToObject({ cidr, blocks: listed.sort() })),
  );
  await createAll(
    kube,
    "FloatingIPClaims",
    `${BUOY}/floatingipclaims`,
    claims.map((claim) => claimToObject(claim, undefined)),
  );
}

/** Requests a datastore served and bytes it sent, as its /metrics count them. */
export interface ServedCounters {
  requests: number;
  bytes: number;
}

function sumOf(text: string, metric: string, filter: (labels: string) => boolean = () => true) {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(metric)) continue;
    const match = /^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
    if (match?.[1] === metric && filter(match[2] ?? "")) sum += Number(match[3]);
  }
  return sum;
}

/** kube-apiserver: resource requests (`apiserver_request_total`) and response bytes (`apiserver_response_sizes_sum`). */
export async function kubeCounters(kube: KubeApiserver): Promise<ServedCounters> {
  const { text } = await kube.admin.request("GET", "/metrics");
  const resource = (labels: string) => labels.includes('resource="');
  return {
    requests: sumOf(text, "apiserver_request_total", resource),
    bytes: sumOf(text, "apiserver_response_sizes_sum", resource),
  };
}

/** etcd: unary RPCs handled (`grpc_server_handled_total`) and bytes sent to clients. */
export async function etcdCounters(etcd: Etcd): Promise<ServedCounters> {
  const text = await (await fetch(`${etcd.endpoint}/metrics`)).text();
  return {
    requests: sumOf(text, "grpc_server_handled_total", (labels) =>
      labels.includes('grpc_type="unary"'),
    ),
    bytes: sumOf(text, "etcd_network_client_grpc_sent_bytes_total"),
  };
}
