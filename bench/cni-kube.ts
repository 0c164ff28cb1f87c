// The CNI plugin on the Kubernetes datastore against the etcd one:
// `npm run bench:cni-kube` (under bun, inside the node namespace that
// scripts/netns-run.sh creates; needs the kube-apiserver that
// scripts/kube/build.sh builds).
//
// Four configurations, each 3 warm-up ADD/DEL pairs, then 50 ADDs, then 50
// DELs, sequential, timing every exec of dist/cni/calico (the main plugin
// alone, no chained portmap) from spawn to exit:
//   - etcd, and kubernetes (a real kube-apiserver v1.20.2), with no other
//     floating IP held in the cluster;
//   - both again in a full cluster (bench/cluster-fill.ts): NODES other
//     nodes with their Node objects, blocks of 20 pods, affinities and
//     regions, and CLAIMS floating IPs held by pods on them. Issue 14: an
//     ADD or DEL must cost the same in both.
// Besides the wall time, the datastore's own counters (/metrics) give the
// requests it served and the bytes it sent per ADD and per DEL.
// `npm run bench:scale` runs it at 5,000 nodes and 20,000 claims.
// Each pod asks for one floating IP. The etcd configuration with no claims is
// the baseline. After the DELs nothing of the pods may be left (allocations,
// their claims, interfaces). Prints a table and writes .bench/<BENCH_NAME>.json
// (cni-kube).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import {
  PODS_POOL,
  etcdCounters,
  fillEtcd,
  fillKube,
  kubeCounters,
  type ServedCounters,
} from "./cluster-fill.js";
import type { FloatingIpClaim } from "../src/model/records.js";
import {
  checkServed,
  formatTable,
  machineInfo,
  privatePlugin,
  note,
  progress,
  stats,
  type Stats,
} from "./report.js";
import {
  CNI_DIR,
  ROOT,
  addNetns,
  createPool,
  deleteNetns,
  hostInterfaces,
  runPlugin,
  runPrefix,
  startEtcd,
  type Etcd,
  type PluginCall,
} from "../test/support/harness.js";
import { startKubeApiserver, type KubeApiserver } from "../test/support/kube.js";
import {
  applyManifests,
  installCniFromConfigMap,
  waitForBuoyCrds,
  createKubePools,
} from "../test/support/buoy-install.js";

const PODS = Number(process.env.BENCH_PODS ?? 50);
const WARMUP = 3;
const CLAIMS = Number(process.env.BENCH_CLAIMS ?? 2000);
const NODES = Number(process.env.BENCH_NODES ?? 500);
const NAME = process.env.BENCH_NAME ?? "cni-kube";
const NODE = "bench-node";
const NAMESPACE = "bench";
const BUOY = "/apis/buoy.dev/v1";

const prefix = runPrefix();
const tmp = mkdtempSync(join(tmpdir(), `${prefix}-bench-kube-`));
let etcd: Etcd | undefined;
let kube: KubeApiserver | undefined;
let server: ChildProcess | undefined;
const live = new Set<string>();

interface Config {
  label: string;
  datastore: "etcd" | "kubernetes";
  full: boolean;
  /** Through `buoy serve` (the conflist's agent_socket, ADR 0013). */
  served?: boolean;
}

interface Series {
  config: string;
  op: "ADD" | "DEL";
  samples: number[];
  stats: Stats;
  /** What the datastore served per operation, by its /metrics. */
  served: ServedCounters;
}

/** The floating IP pod `index` of a configuration asks for; held ones are 10.96.16.0 on. */
function podFloatingIp(config: number, index: number): string {
  const n = config * 256 + index;
  return `10.96.${Math.floor(n / 256)}.${n % 256}`;
}

function heldFloatingIp(index: number): string {
  const n = 16 * 256 + index;
  return `10.96.${Math.floor(n / 256)}.${n % 256}`;
}

function heldClaim(index: number): FloatingIpClaim {
  return {
    ip: heldFloatingIp(index),
    namespace: "elsewhere",
    pod: `held-${index}`,
    containerID: `held-${index}`,
    node: `other-${index % Math.max(NODES, 1)}`,
    internalIP: `10.245.${Math.floor(index / 256)}.${index % 256}`,
    createdAt: new Date().toISOString(),
  };
}

/** The datastore's served requests and bytes so far. */
function counters(config: Config): Promise<ServedCounters> {
  return config.datastore === "etcd" ? etcdCounters(etcd!) : kubeCounters(kube!);
}

function perOp(before: ServedCounters, after: ServedCounters, ops: number): ServedCounters {
  return {
    requests: (after.requests - before.requests) / ops,
    bytes: (after.bytes - before.bytes) / ops,
  };
}

async function timed(call: PluginCall): Promise<number> {
  const start = performance.now();
  const outcome = await runPlugin(call);
  const ms = performance.now() - start;
  if (outcome.exitCode !== 0) {
    throw new Error(
      `${call.command} of ${call.pod?.name} failed: ${outcome.raw.trim()} ${outcome.stderr.trim()}`,
    );
  }
  return ms;
}

async function runConfig(
  config: Config,
  configIndex: number,
  pluginConf: (pod: string, floatingIp: string) => Record<string, unknown>,
  binary: string,
): Promise<{ add: number[]; del: number[]; addServed: ServedCounters; delServed: ServedCounters }> {
  const pods = Array.from({ length: WARMUP + PODS }, (_, index) => ({
    name: `c${configIndex}-${index}`,
    containerID: `bench-${configIndex}-${index}`,
    floatingIp: podFloatingIp(configIndex, index),
    netns: "",
  }));
  for (const pod of pods) {
    if (config.datastore === "kubernetes") {
      await kube!.admin.json("POST", `/api/v1/namespaces/${NAMESPACE}/pods`, {
        metadata: {
          name: pod.name,
          annotations: { "cni.projectcalico.org/floatingIPs": `["${pod.floatingIp}"]` },
        },
        spec: { nodeName: NODE, containers: [{ name: "c", image: "busybox" }] },
      });
    }
  }
  const call = (pod: (typeof pods)[number], command: "ADD" | "DEL"): PluginCall => ({
    command,
    conf: pluginConf(pod.name, pod.floatingIp),
    containerID: pod.containerID,
    netns: pod.netns,
    ifname: "eth0",
    pod: { namespace: NAMESPACE, name: pod.name },
    binary,
  });
  const netns = (pod: (typeof pods)[number]) => {
    pod.netns = addNetns(`${prefix}-k${configIndex}-${pods.indexOf(pod)}`);
    live.add(`${prefix}-k${configIndex}-${pods.indexOf(pod)}`);
  };
  for (const pod of pods.slice(0, WARMUP)) {
    netns(pod);
    await timed(call(pod, "ADD"));
    await timed(call(pod, "DEL"));
  }
  const measured = pods.slice(WARMUP);
  for (const pod of measured) netns(pod);
  const add: number[] = [];
  const beforeAdd = await counters(config);
  for (const pod of measured) {
    add.push(await timed(call(pod, "ADD")));
    progress(`[${config.label}] ADD ${add.length}/${PODS}`, add.length === PODS);
  }
  const afterAdd = await counters(config);
  const del: number[] = [];
  for (const pod of measured) {
    del.push(await timed(call(pod, "DEL")));
    progress(`[${config.label}] DEL ${del.length}/${PODS}`, del.length === PODS);
  }
  const afterDel = await counters(config);
  await checkClean(config, configIndex);
  for (const name of [...live]) {
    deleteNetns(name);
    live.delete(name);
  }
  return {
    add,
    del,
    addServed: perOp(beforeAdd, afterAdd, PODS),
    delServed: perOp(afterAdd, afterDel, PODS),
  };
}

/** Throws when this configuration's pods left an interface, an address or a claim behind. */
async function checkClean(config: Config, configIndex: number): Promise<void> {
  const ours = (pod: string | undefined) => pod?.startsWith(`c${configIndex}-`) === true;
  const problems: string[] = [];
  const left = hostInterfaces("cali");
  if (left.length > 0) problems.push(`interfaces left: ${left.join(", ")}`);
  let claims: { pod?: string; ip: string }[];
  let allocations: { pod?: string }[];
  if (config.datastore === "etcd") {
    claims = (await etcd!.store.listClaims()).map(({ value }) => value);
    allocations = (await etcd!.store.listBlocks()).flatMap(({ value }) =>
      Object.values(value.allocations),
    );
  } else {
    type List<T> = { items: { spec: T }[] };
    claims = (
      await kube!.admin.json<List<{ pod?: string; ip: string }>>("GET", `${BUOY}/floatingipclaims`)
    ).items.map(({ spec }) => spec);
    allocations = (
      await kube!.admin.json<List<{ allocations?: Record<string, { pod?: string }> }>>(
        "GET",
        `${BUOY}/ipamblocks`,
      )
    ).items.flatMap(({ spec }) => Object.values(spec.allocations ?? {}));
  }
  const leftClaims = claims.filter((claim) => ours(claim.pod));
  if (leftClaims.length > 0)
    problems.push(`claims left: ${leftClaims.map((c) => c.ip).join(", ")}`);
  const leftAddresses = allocations.filter((owner) => ours(owner.pod));
  if (leftAddresses.length > 0) problems.push(`${leftAddresses.length} addresses left`);
  if (problems.length > 0) throw new Error(`${config.label}: ${problems.join("; ")}`);
}

async function main(): Promise<void> {
  const cniDir = join(tmp, "cni");
  mkdirSync(cniDir);
  const calico = privatePlugin(join(CNI_DIR, "calico"), cniDir);
  note(
    `bench:${NAME}  prefix ${prefix}, ${PODS} pods per configuration, full: ${NODES} nodes, ${CLAIMS} held claims`,
  );
  note("starting etcd and kube-apiserver...");
  etcd = await startEtcd();
  await createPool(etcd.store, "pods", { cidr: PODS_POOL });
  await createPool(etcd.store, "floating", { cidr: "10.96.0.0/16", disabled: true });
  kube = await startKubeApiserver();
  applyManifests(kube, ["crds.yaml", "rbac.yaml", "calico-config.yaml"]);
  await waitForBuoyCrds(kube);
  const conflistPath = await installCniFromConfigMap(kube, tmp, NODE, calico);
  const kubePlugin = (
    JSON.parse(readFileSync(conflistPath, "utf8")) as { plugins: Record<string, unknown>[] }
  ).plugins[0]!;
  await createKubePools(kube, {
    pods: { cidr: PODS_POOL },
    floating: { cidr: "10.96.0.0/16", disabled: true },
  });
  await kube.admin.json("POST", "/api/v1/nodes", { metadata: { name: NODE } });
  await kube.admin.json("POST", "/api/v1/namespaces", { metadata: { name: NAMESPACE } });

  const common = {
    cniVersion: "1.0.0",
    name: "k8s-pod-network",
    log_file_path: join(tmp, "cni.log"),
  };
  const confs = {
    etcd: (_pod: string, floatingIp: string) => ({
      ...common,
      type: "calico",
      datastore_type: "etcdv3",
      etcd_endpoints: etcd!.endpoint,
      nodename: NODE,
      mtu: 1500,
      ipam: { type: "calico-ipam" },
      feature_control: { floating_ips: true },
      runtimeConfig: {
        "io.kubernetes.cri.pod-annotations": {
          "cni.projectcalico.org/floatingIPs": `["${floatingIp}"]`,
        },
      },
    }),
    // The plugin reads the annotation from the pod itself.
    kubernetes: () => ({ ...kubePlugin, ...common }),
  };
  const socket = join(tmp, "server", "cni.sock");
  server = await startServer(calico, socket);
  const cniLog = common.log_file_path;
  const full = `${NODES} nodes, ${CLAIMS} claims`;
  const configs: Config[] = [
    { label: "etcd", datastore: "etcd", full: false },
    { label: "kubernetes", datastore: "kubernetes", full: false },
    { label: "etcd, served", datastore: "etcd", full: false, served: true },
    { label: "kubernetes, served", datastore: "kubernetes", full: false, served: true },
    { label: `etcd, ${full}`, datastore: "etcd", full: true },
    { label: `kubernetes, ${full}`, datastore: "kubernetes", full: true },
  ];
  const held = Array.from({ length: CLAIMS }, (_, index) => heldClaim(index));
  const series: Series[] = [];
  for (const [index, config] of configs.entries()) {
    if (config.full && config.datastore === "etcd") await fillEtcd(etcd, NODES, held);
    if (config.full && config.datastore === "kubernetes") await fillKube(kube, NODES, held);
    const conf = confs[config.datastore];
    const run = await runConfig(
      config,
      index,
      (pod, ip) => ({ ...conf(pod, ip), ...(config.served ? { agent_socket: socket } : {}) }),
      calico,
    );
    if (config.served) checkServed(cniLog, String(index), 2 * PODS);
    for (const [op, samples, served] of [
      ["ADD", run.add, run.addServed],
      ["DEL", run.del, run.delServed],
    ] as const) {
      series.push({ config: config.label, op, samples, stats: stats(samples), served });
    }
  }

  const baseline = (op: "ADD" | "DEL") =>
    series.find((s) => s.config === "etcd" && s.op === op)!.stats.p50;
  // The same datastore's empty configuration: what "full / empty" compares with.
  const empty = (s: Series) =>
    series.find((e) => e.config === s.config.split(",")[0] && e.op === s.op)!;
  const rows = series.map((s) => [
    s.config,
    s.op,
    String(s.stats.n),
    s.stats.p50.toFixed(2),
    s.stats.p95.toFixed(2),
    s.stats.mean.toFixed(2),
    s.stats.max.toFixed(2),
    `${(s.stats.p50 / baseline(s.op)).toFixed(2)}x`,
    `${(s.stats.p50 / empty(s).stats.p50).toFixed(2)}x`,
    s.served.requests.toFixed(1),
    Math.round(s.served.bytes).toString(),
    `${(s.served.bytes / Math.max(empty(s).served.bytes, 1)).toFixed(2)}x`,
  ]);
  console.log("");
  console.log(
    formatTable(
      [
        "config",
        "op",
        "n",
        "p50 ms",
        "p95 ms",
        "mean ms",
        "max ms",
        "vs etcd p50",
        "vs empty p50",
        "requests/op",
        "bytes/op",
        "bytes vs empty",
      ],
      rows,
      2,
    ),
  );
  const round = (x: number) => Math.round(x * 1000) / 1000;
  const report = {
    benchmark: NAME,
    timestamp: new Date().toISOString(),
    prefix,
    method: {
      pods: PODS,
      warmupPairs: WARMUP,
      heldClaims: CLAIMS,
      otherNodes: NODES,
      served:
        "per operation, from the datastore's /metrics: kube-apiserver apiserver_request_total and apiserver_response_sizes_sum over resource requests; etcd grpc_server_handled_total (unary) and etcd_network_client_grpc_sent_bytes_total",
      timing: "wall time of each exec of the main plugin, spawn to exit, sequential",
      floatingIps: "each pod asks for one floating IP from the disabled pool 10.96.0.0/16",
      kubernetes:
        "kube-apiserver v1.20.2 (scripts/kube/build.sh) with its own etcd, service-account token of the plugin",
    },
    machine: machineInfo({ etcd: ["etcd", "--version"] }),
    results: series.map((s) => ({
      config: s.config,
      op: s.op,
      stats: Object.fromEntries(Object.entries(s.stats).map(([k, v]) => [k, round(v)])),
      vsEtcdP50: round(s.stats.p50 / baseline(s.op)),
      vsEmptyP50: round(s.stats.p50 / empty(s).stats.p50),
      servedPerOp: { requests: round(s.served.requests), bytes: Math.round(s.served.bytes) },
      samplesMs: s.samples.map(round),
    })),
  };
  const outDir = join(ROOT, ".bench");
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, `${NAME}.json`), JSON.stringify(report, null, 2) + "\n");
  note(`wrote ${join(outDir, `${NAME}.json`)}`);
}

/** `buoy serve` on `socket`, once it listens. */
async function startServer(binary: string, socket: string): Promise<ChildProcess> {
  const child = spawn(binary, ["serve", "--socket", socket], { stdio: ["ignore", "pipe", "pipe"] });
  let said = "";
  child.stderr!.on("data", (chunk: Buffer) => (said += chunk.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes('"state":"listening"')) resolve();
    });
    child.once("exit", () => reject(new Error(`buoy serve exited: ${said}`)));
  });
  return child;
}

try {
  await main();
} catch (error) {
  note(`bench:${NAME} failed: ${(error as Error).message}`);
  process.exitCode = 1;
} finally {
  for (const name of live) deleteNetns(name);
  server?.kill("SIGTERM");
  await kube?.stop();
  await etcd?.stop();
  rmSync(tmp, { recursive: true, force: true });
}
