// What the three parts of bench:dataplane (and bench:scale's agent half,
// agent-scale.ts) share: the knobs (environment),
// this run's prefix and everything it creates (namespaces, processes, links,
// etcd) so that cleanup() removes it all, the synthetic bindings, buoy's
// table, and starting and stopping processes by PID.
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { NatBinding } from "../src/dataplane/nat-plan.js";
import { LinuxNft } from "../src/dataplane/shell/nft.js";
import { formatAddress, parseAddress } from "../src/net/address.js";
import { ROOT, deleteNetns, runPrefix, sh, type Etcd } from "../test/support/harness.js";

export const APPLY_SIZES = [1000, 10_000, 100_000];
export const APPLY_REPS = Number(process.env.BENCH_APPLY_REPS ?? 3);
export const CHANGE_AT = 10_000;
export const CHANGE_REPS = Number(process.env.BENCH_CHANGE_REPS ?? 10);
export const RATE_SIZES = [10, 10_000];
export const RATE_REPS = Number(process.env.BENCH_RATE_REPS ?? 5);
export const RATE_SECONDS = Number(process.env.BENCH_RATE_SECONDS ?? 1.5);
/**
 * Packets per rate run at most: every one leaves an unreplied conntrack entry
 * (30 s timeout), and nf_conntrack_max (262144 here) cannot be raised from
 * inside a namespace; a full table would drop packets for reasons of its own.
 */
export const RATE_MAX_PACKETS = 200_000;
export const AGENT_BINDINGS = Number(process.env.BENCH_AGENT_BINDINGS ?? 10_000);
export const AGENT_RESYNC_S = 5;
/** The agent to run: this tree's build, or another build to compare (BENCH_AGENT_BUOY). */
export const AGENT_EXECUTABLE = process.env.BENCH_AGENT_BUOY ?? join(ROOT, "dist/buoy");
/** How long to wait for the agent's first full sync before reporting that it did not finish. */
export const AGENT_SYNC_TIMEOUT_S = Number(process.env.BENCH_AGENT_TIMEOUT_S ?? 45);
export const NODE_NAME = "bench-node";
export const UDP_PORT = 7000;
export const PYTHON = "/usr/bin/python3";
export const TRAFFIC = join(ROOT, "bench/dataplane-traffic.py");
/** The node's and the client's ends of the client link; spoofed sources count up from the client's. */
export const CLIENT_LINK = {
  node: "192.0.2.1/24",
  client: "192.0.2.2/24",
  firstSource: "192.0.2.2",
};
export const SOURCE_ADDRESSES = 200;

export const BUOY = "buoy (nft maps)";
export const CALICO = "calico (iptables-nft)";
export const DNAT_ONLY = "iptables dnat-only";
export const NO_NAT = "no NAT (to pod IP)";

export const prefix = runPrefix();
export const nft = new LinuxNft();
/** What this run has created and not yet removed: cleanup() removes what is left. */
export const live = {
  netns: new Set<string>(),
  processes: new Set<ChildProcess>(),
  links: new Set<string>(),
  etcd: undefined as Etcd | undefined,
};

/** An interface name in the node namespace with the run's prefix (at most 15 characters). */
export function ifname(tag: string): string {
  const name = `${prefix}-${tag}`;
  return name.length <= 15 ? name : `${prefix.slice(0, 14 - tag.length)}-${tag}`;
}

// ---- bindings ----------------------------------------------------------------

const v4 = (text: string): bigint => parseAddress(text)!.value;
const format = (value: bigint): string => formatAddress({ family: 4, value });
const inPrefix = (value: bigint, base: bigint, length: number): boolean =>
  value >> BigInt(32 - length) === base >> BigInt(32 - length);

/**
 * Distinct floating IPs, made as far as asked for (the sequence is fixed, so
 * binding i is the same whatever size a run reaches): even positions count up
 * from 10.96.0.0 (inside 10.96.0.0/15), odd ones are scattered over
 * 10.0.0.0/8 by a fixed xorshift, outside 10.96.0.0/15 and the pod
 * addresses' 10.244.0.0/14.
 */
const floating = {
  out: [] as string[],
  seen: new Set<bigint>(),
  sequential: v4("10.96.0.0"),
  state: 0x9e3779b9,
};

function floatingAt(i: number): string {
  const [scattered, floatingRange, podRange] = [v4("10.0.0.0"), v4("10.96.0.0"), v4("10.244.0.0")];
  const next = (): number => {
    floating.state ^= floating.state << 13;
    floating.state ^= floating.state >>> 17;
    floating.state ^= floating.state << 5;
    return floating.state >>> 0;
  };
  const { out, seen } = floating;
  while (out.length <= i) {
    let value: bigint;
    if (out.length % 2 === 0) {
      value = floating.sequential++;
    } else {
      do {
        value = scattered + BigInt(next() & 0xffffff);
      } while (
        seen.has(value) ||
        inPrefix(value, floatingRange, 15) ||
        inPrefix(value, podRange, 14)
      );
    }
    seen.add(value);
    out.push(format(value));
  }
  return out[i]!;
}

const POD_BASE = v4("10.244.0.2");

/** Binding i: floating IP i to pod 10.244.0.2 + i (past 10.244.255.255 into 10.245/16 beyond 65534). */
export function bindingAt(i: number, hostIfname = "bench0"): NatBinding {
  return { family: 4, floating: floatingAt(i), pod: format(POD_BASE + BigInt(i)), hostIfname };
}

export function bindingsOf(count: number, hostIfname?: string): NatBinding[] {
  return Array.from({ length: count }, (_, i) => bindingAt(i, hostIfname));
}

/** A small deterministic PRNG (mulberry32) for picking which binding changes. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One change: a random binding removed, a new one (the next unused index) added. */
export function changer(seed: number, firstNew: number) {
  const pick = random(seed);
  let next = firstNew;
  return (state: NatBinding[]): { added: NatBinding; removed: NatBinding } => {
    const k = Math.floor(pick() * state.length);
    const removed = state[k]!;
    const added = bindingAt(next++);
    state[k] = added;
    return { added, removed };
  };
}

// ---- buoy's table ---------------------------------------------------------------

export function dropBuoyTables(): void {
  for (const family of ["ip", "ip6"]) sh(["nft", "delete", "table", family, "buoy"]);
}

/** iptables-nft's nat table: deleted whole, so no empty base chain stays hooked. */
export function dropNatTable(): void {
  sh(["nft", "delete", "table", "ip", "nat"]);
}

const bindingKey = (b: Pick<NatBinding, "floating" | "pod">): string => `${b.floating}>${b.pod}`;

export async function checkBuoy(expected: readonly NatBinding[], what: string): Promise<void> {
  const table = await nft.readTable(4);
  if (!table) throw new Error(`${what}: buoy's table is missing`);
  const want = new Set(expected.map(bindingKey));
  const have = new Set(table.bindings.map(bindingKey));
  const missing = [...want].filter((key) => !have.has(key));
  if (!table.intact || table.bindings.length !== want.size || missing.length > 0) {
    throw new Error(
      `${what}: buoy's table ${table.intact ? "" : "(not intact) "}holds ${table.bindings.length} bindings, expected ${want.size}` +
        (missing.length > 0 ? `; missing ${missing.slice(0, 3).join(", ")}` : ""),
    );
  }
}

export async function timed(fn: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

/** Spawns a process, remembers it until it exits, and collects its stdout. */
export function startProcess(argv: string[], env?: NodeJS.ProcessEnv) {
  const [file, ...args] = argv as [string, ...string[]];
  const child = spawn(file, args, {
    stdio: ["ignore", "pipe", "pipe"],
    ...(env ? { env } : {}),
  });
  live.processes.add(child);
  const output = { stdout: "", stderr: "" };
  child.stdout?.on("data", (chunk: Buffer) => (output.stdout += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output.stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => {
      live.processes.delete(child);
      resolve(code);
    }),
  );
  return { child, output, exited };
}

/** Stops a process this run started, by its PID: `signal`, then SIGKILL after `graceMs`. */
export async function stopProcess(
  proc: { child: ChildProcess; exited: Promise<number | null> },
  signal: NodeJS.Signals,
  graceMs = 5000,
): Promise<void> {
  const pid = proc.child.pid;
  const running = () => proc.child.exitCode === null && proc.child.signalCode === null;
  const kill = (sig: NodeJS.Signals) => {
    try {
      if (running()) process.kill(pid!, sig);
    } catch {
      // Exited in between.
    }
  };
  if (pid === undefined || !running()) return;
  kill(signal);
  const timer = setTimeout(() => kill("SIGKILL"), graceMs);
  await proc.exited;
  clearTimeout(timer);
}

export async function cleanup(): Promise<void> {
  for (const proc of [...live.processes]) {
    try {
      if (proc.pid !== undefined && proc.exitCode === null) process.kill(proc.pid, "SIGKILL");
    } catch {
      // Exited in between.
    }
  }
  for (const name of [...live.netns]) {
    deleteNetns(name);
    live.netns.delete(name);
  }
  for (const link of live.links) sh(["ip", "link", "del", link]);
  dropBuoyTables();
  dropNatTable();
  if (live.etcd) await live.etcd.stop();
}
