// What the agent benchmarks share (bench:dataplane's agent part in
// dataplane-agent.ts, bench:scale's agent half in agent-scale.ts): endpoints
// and claims for the node written to etcd, `node dist/buoy agent` started in
// the node namespace until it listens, its /metrics, and what /proc says of
// it (memory, CPU, the processes it is waiting for).
import { readdirSync, readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { progress } from "./report.js";
import type { KvOp } from "../src/datastore/kv.js";
import type { FloatingIpClaim, WorkloadEndpoint } from "../src/model/records.js";
import { keys } from "../src/etcd/store.js";
import { createPool, must, sh, sleep, startEtcd, type Etcd } from "../test/support/harness.js";
import {
  AGENT_EXECUTABLE,
  NODE_NAME,
  bindingAt,
  ifname,
  live,
  startProcess,
  stopProcess,
} from "./dataplane-run.js";

export function procStatus(pid: number): { rss: number; hwm: number } {
  const text = readFileSync(`/proc/${pid}/status`, "utf8");
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text)?.[1]);
  return { rss: field("VmRSS"), hwm: field("VmHWM") };
}

/** CPU seconds (user + system) of a process itself, and of its children it has reaped. */
export function procCpu(pid: number): { self: number; children: number } {
  const fields = statFields(pid);
  const ticks = 100; // USER_HZ
  return {
    self: (fields[11]! + fields[12]!) / ticks,
    // Reaped children (nft, ip, conntrack runs), and the resident monitors
    // (nft monitor, ip monitor), which are never reaped while it runs.
    children: (fields[13]! + fields[14]! + residentTicks(pid)) / ticks,
  };
}

/** Fields after the command's closing parenthesis: utime, stime, cutime, cstime are the 12th to 15th. */
function statFields(pid: number): number[] {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat
    .slice(stat.lastIndexOf(")") + 2)
    .split(" ")
    .map(Number);
}

/** utime + stime of the agent's running `... monitor ...` children. */
function residentTicks(pid: number): number {
  let ticks = 0;
  for (const child of childPids(pid)) {
    try {
      if (!readFileSync(`/proc/${child}/cmdline`, "utf8").split("\0").includes("monitor")) continue;
      const fields = statFields(Number(child));
      ticks += fields[11]! + fields[12]!;
    } catch {
      // Exited in between.
    }
  }
  return ticks;
}

function childPids(pid: number): string[] {
  const pids: string[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const children = readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").trim();
      if (children) pids.push(...children.split(" "));
    }
  } catch {
    // The agent exited in between.
  }
  return pids;
}

/** The agent's own CPU seconds, the way dataplane-agent has always reported it. */
export function cpuSeconds(pid: number): number {
  return procCpu(pid).self;
}

export function metricValue(text: string, name: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

/** The command lines of a process's children (every thread's), e.g. what the agent is waiting for. */
export function childCommands(pid: number): string[] {
  const commands: string[] = [];
  for (const child of childPids(pid)) {
    try {
      const command = readFileSync(`/proc/${child}/cmdline`, "utf8").split("\0").join(" ");
      if (command.trim()) commands.push(command.trim()); // empty: exited, not yet reaped
    } catch {
      // Exited in between.
    }
  }
  return commands;
}

/** Samples childCommands three times, 200 ms apart: what a stuck agent is running. */
export async function sampleChildren(pid: number): Promise<string[]> {
  const seen: string[] = [];
  for (let sample = 0; sample < 3; sample++) {
    seen.push(...childCommands(pid));
    await sleep(200);
  }
  return seen;
}

/**
 * Starts this run's etcd (live.etcd) with the disabled floating pool
 * 10.0.0.0/8, and makes the veth (ends `tag` and `tag`p) every endpoint
 * names as its interface. Resolves to the veth's node end.
 */
export async function prepareAgentRun(tag: string): Promise<string> {
  progress("[agent] starting etcd...", true);
  live.etcd = await startEtcd();
  await createPool(live.etcd.store, "bench-floating", { cidr: "10.0.0.0/8", disabled: true });
  const hostIf = ifname(tag);
  must(["ip", "link", "add", hostIf, "type", "veth", "peer", "name", ifname(`${tag}p`)]);
  live.links.add(hostIf);
  must(["ip", "link", "set", hostIf, "up"]);
  must(["ip", "link", "set", ifname(`${tag}p`), "up"]);
  return hostIf;
}

export function removeLink(hostIf: string): void {
  sh(["ip", "link", "del", hostIf]);
  live.links.delete(hostIf);
}

/** The endpoint and the claim of binding i on NODE_NAME, as etcd puts. */
export function endpointOps(i: number, hostIf: string, createdAt: string): KvOp[] {
  const binding = bindingAt(i, hostIf);
  const containerID = `bench-${i}`;
  const endpoint: WorkloadEndpoint = {
    node: NODE_NAME,
    namespace: "bench",
    pod: `pod-${i}`,
    containerID,
    endpoint: "eth0",
    interfaceName: hostIf,
    mac: "ee:ee:ee:ee:ee:ee",
    ipNetworks: [`${binding.pod}/32`],
    ipNATs: [{ internalIP: binding.pod, externalIP: binding.floating }],
    network: "k8s-pod-network",
    createdAt,
  };
  const claim: FloatingIpClaim = {
    ip: binding.floating,
    namespace: "bench",
    pod: `pod-${i}`,
    containerID,
    node: NODE_NAME,
    internalIP: binding.pod,
    createdAt,
  };
  return [
    { put: keys.endpoint(NODE_NAME, containerID, "eth0"), value: JSON.stringify(endpoint) },
    { put: keys.claim(binding.floating), value: JSON.stringify(claim) },
  ];
}

/** The deletes of binding i's endpoint and claim. */
export function endpointDeleteOps(i: number): KvOp[] {
  return [
    { delete: keys.endpoint(NODE_NAME, `bench-${i}`, "eth0") },
    { delete: keys.claim(bindingAt(i).floating) },
  ];
}

/**
 * Writes bindings [first, last) (endpoint + claim each) in transactions of 64
 * + 64: etcd's default --max-txn-ops is 128. Resolves to the milliseconds taken.
 */
export async function writeBindings(
  store: Etcd["store"],
  first: number,
  last: number,
  hostIf: string,
  createdAt: string,
): Promise<number> {
  const started = performance.now();
  for (let from = first; from < last; from += 64) {
    const to = Math.min(from + 64, last);
    const ops = Array.from({ length: to - from }, (_, k) =>
      endpointOps(from + k, hostIf, createdAt),
    ).flat();
    if (!(await store.kv.txn([], ops))) throw new Error("etcd refused a batch");
    progress(`[agent] wrote ${to - first}/${last - first} endpoints + claims`, to === last);
  }
  return performance.now() - started;
}

export interface AgentEvent {
  event?: string;
  address?: string;
  error?: string;
  [field: string]: unknown;
}

/** A running agent: its PID, its /metrics, its JSON log lines so far. */
export interface RunningAgent {
  pid: number;
  /** performance.now() at spawn. */
  spawnedAt: number;
  /** performance.now() when its log said it listens (its resync timer starts then). */
  listeningAt: number;
  metrics(): Promise<string>;
  events(): AgentEvent[];
  /** Its standard output so far (JSON lines). */
  log(): string;
  exited(): boolean;
  stop(): Promise<void>;
}

/**
 * Spawns `node dist/buoy agent` for `node` (floating IPs on, /metrics on a
 * free port, ETCD_ENDPOINTS of this run's etcd) and waits until it listens.
 */
export async function startAgent(node: string, resyncSeconds: number): Promise<RunningAgent> {
  const spawnedAt = performance.now();
  const agent = startProcess(
    [
      "node",
      AGENT_EXECUTABLE,
      "agent",
      "--node",
      node,
      "--floating-ips",
      "on",
      "--listen",
      "127.0.0.1:0",
      "--resync",
      String(resyncSeconds),
      // BENCH_AGENT_LOG_LEVEL=debug: an agent.reconciled line per reconcile, with its phases.
      ...(process.env.BENCH_AGENT_LOG_LEVEL
        ? ["--log-level", process.env.BENCH_AGENT_LOG_LEVEL]
        : []),
    ],
    { ...process.env, ETCD_ENDPOINTS: live.etcd!.endpoint },
  );
  const events = (): AgentEvent[] =>
    agent.output.stdout
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .flatMap((line) => {
        try {
          return [JSON.parse(line) as AgentEvent];
        } catch {
          return []; // a line still being written
        }
      });
  const stop = () => stopProcess(agent, "SIGTERM", 10_000);
  try {
    let address = "";
    for (let i = 0; ; i++) {
      address = events().find((e) => e.event === "agent.listening")?.address ?? "";
      if (address) break;
      if (i > 1500 || agent.child.exitCode !== null) {
        throw new Error(`agent did not start: ${agent.output.stderr}${agent.output.stdout}`);
      }
      await sleep(10);
    }
    return {
      pid: agent.child.pid!,
      spawnedAt,
      listeningAt: performance.now(),
      metrics: async () => (await fetch(`http://${address}/metrics`)).text(),
      events,
      log: () => agent.output.stdout,
      exited: () => agent.child.exitCode !== null || agent.child.signalCode !== null,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
