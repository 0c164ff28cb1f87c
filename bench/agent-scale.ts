// The agent half of `npm run bench:scale` (issue 14 item 4); alone:
// `npm run bench:scale-agent`. Runs under bun inside the node namespace that
// scripts/netns-run.sh creates (BUOY_RUN_PREFIX set).
//
// One etcd (test/support/harness.ts startEtcd), one veth in the node
// namespace that every endpoint names as its interface. For each size in
// BENCH_AGENT_SIZES, smallest first, etcd is filled up to that many endpoints
// + claims for the node (bench/agent-process.ts writeBindings: binding i is
// floating IP i -> pod 10.244.0.2 + i, dataplane-run.ts bindingAt), buoy's
// table and routes are removed, and a fresh `node dist/buoy agent --node
// bench-node --floating-ips on --resync BENCH_AGENT_RESYNC_S` starts:
//
// - cold start: spawn until the kernel holds every binding, and until
//   /metrics (buoy_floating_ip_bindings{family="ipv4"}) counts them. The
//   kernel is checked cheaply every 50 ms: `ip route get fibmatch` of three
//   of the floating IPs (the first, the middle, the last); once all three are
//   there, `ip -4 route show proto 202` is counted (routes are written after
//   the nft map), recounted until it is complete, and then the fip_dnat
//   map's elements once (`nft list map`: ~0.5 s at 100k). The time is that of
//   the route count that was complete.
// - no-op resync: with nothing changed, over the next resync timer tick
//   (the timer starts when the agent logs agent.listening), the agent's CPU
//   seconds from /proc/PID/stat, utime + stime plus cutime + cstime (the nft,
//   ip and conntrack processes it ran and reaped), from 200 ms before the
//   tick until /metrics counts the reconcile; its wall time from
//   buoy_reconcile_duration_seconds (the sum's increase).
// - change to kernel: BENCH_AGENT_CHANGES single changes, alternately one
//   endpoint + claim added (the next unused binding) in one etcd transaction
//   and the one just added deleted, each timed from just before the
//   transaction is sent until the kernel has it: both its fip_dnat element
//   and its route, as the kernel's own notices (`nft -j monitor`, `ip -o
//   monitor route`, bench/kernel-probe.ts) tell them, the later of the two
//   (the agent writes them in parallel; the series starts once both monitors
//   have printed a canary of the probe's own); then `ip -4 route get fibmatch`
//   confirms the route once. Polling instead (a spawn every few ms) loaded
//   the cores the agent runs on, and `nft get element` loads the whole map
//   (~0.5 s at 100k); the map's count is checked once after the series.
//   Between changes the agent is let settle (no reconcile for
//   200 ms), and a change is not started within a guard time of a resync
//   tick; one that still overlapped a tick is counted. Per change also: the
//   reconciles /metrics counted by the time the kernel had it and once the
//   agent settled, their histogram seconds, and the agent's CPU (itself +
//   reaped children) from the write until settled: where a change's time goes.
// - memory: VmRSS once cold start has settled, VmHWM (peak) at the end.
//
// A wait that passes BENCH_AGENT_TIMEOUT_S (20) per 10k bindings (at least
// once) is reported with what the agent was doing (its child processes, its
// last log lines, its counters), and the run goes on with the next size.
// Prints one table (sizes as columns; the largest over the smallest for
// change to kernel p50) and issue 14's goals (met / not met, not asserted),
// writes .bench/scale-agent.json.
//
// Knobs: BENCH_AGENT_SIZES (1000,10000,100000), BENCH_AGENT_CHANGES (20),
// BENCH_AGENT_TIMEOUT_S (20, per 10k bindings), BENCH_AGENT_RESYNC_S (30),
// BENCH_AGENT_BUOY (another build's dist/buoy),
// BENCH_AGENT_LOG_LEVEL (debug: the agent's log per size in .bench/scale-agent-SIZE.log).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { machineInfo, note, progress, stats } from "./report.js";
import {
  TIMEOUT_S_PER_10K,
  goalTable,
  goals,
  table,
  timeoutMs,
  type ChangeSample,
  type SizeResult,
  type Stuck,
} from "./agent-scale-report.js";
import { runCommand } from "../src/exec/command.js";
import { KernelProbe } from "./kernel-probe.js";
import { ROOT, sh, sleep } from "../test/support/harness.js";
import {
  endpointDeleteOps,
  endpointOps,
  metricValue,
  prepareAgentRun,
  procCpu,
  procStatus,
  sampleChildren,
  startAgent,
  writeBindings,
  type RunningAgent,
} from "./agent-process.js";
import {
  AGENT_EXECUTABLE,
  NODE_NAME,
  bindingAt,
  cleanup,
  dropBuoyTables,
  live,
  prefix,
} from "./dataplane-run.js";

const SIZES = (process.env.BENCH_AGENT_SIZES ?? "1000,10000,100000")
  .split(",")
  .map(Number)
  .sort((a, b) => a - b);
const CHANGES = Number(process.env.BENCH_AGENT_CHANGES ?? 20);
const RESYNC_S = Number(process.env.BENCH_AGENT_RESYNC_S ?? 30);
const ROUTE_PROTOCOL = "202";
const GAUGE = `buoy_floating_ip_bindings{family="ipv4"}`;

// ---- the kernel, cheaply --------------------------------------------------------

/** Whether the node namespace routes `ip` by buoy's own /32 (one FIB lookup, no dump). */
async function hasRoute(ip: string): Promise<boolean> {
  try {
    const { stdout } = await runCommand(["ip", "-4", "route", "get", "fibmatch", ip]);
    return stdout.startsWith(`${ip} `) && stdout.includes(`proto ${ROUTE_PROTOCOL}`);
  } catch {
    return false; // "Network is unreachable": no route at all
  }
}

async function countRoutes(): Promise<number> {
  const { stdout } = await runCommand(["ip", "-4", "route", "show", "proto", ROUTE_PROTOCOL]);
  return stdout.split("\n").filter(Boolean).length;
}

async function countNftElements(): Promise<number> {
  try {
    const { stdout } = await runCommand(["nft", "list", "map", "ip", "buoy", "fip_dnat"]);
    return stdout.match(/\d+\.\d+\.\d+\.\d+ : \d/g)?.length ?? 0;
  } catch {
    return 0; // no table yet
  }
}

function flushBuoyState(): void {
  dropBuoyTables();
  sh(["ip", "-4", "route", "flush", "proto", ROUTE_PROTOCOL]);
}

// ---- the agent's counters ---------------------------------------------------------

interface Counters {
  gauge?: number;
  count: number;
  sum: number;
  ok: number;
  error: number;
}

async function counters(agent: RunningAgent): Promise<Counters> {
  const text = await agent.metrics();
  const gauge = metricValue(text, GAUGE);
  return {
    ...(gauge !== undefined ? { gauge } : {}),
    count: metricValue(text, "buoy_reconcile_duration_seconds_count") ?? 0,
    sum: metricValue(text, "buoy_reconcile_duration_seconds_sum") ?? 0,
    ok: metricValue(text, `buoy_reconciles_total{result="ok"}`) ?? 0,
    error: metricValue(text, `buoy_reconciles_total{result="error"}`) ?? 0,
  };
}

/** Waits until no reconcile has finished for `quietMs` (or `limitMs` passed). */
async function settle(agent: RunningAgent, quietMs: number, limitMs: number): Promise<Counters> {
  const deadline = performance.now() + limitMs;
  let last = await counters(agent);
  let since = performance.now();
  while (performance.now() < deadline) {
    await sleep(50);
    const now = await counters(agent);
    if (now.count !== last.count) {
      last = now;
      since = performance.now();
    } else if (performance.now() - since >= quietMs) {
      return now;
    }
  }
  return last;
}

/** The resync timer's ticks: every RESYNC_S from when the agent said it listens. */
function nextTick(agent: RunningAgent, after: number): number {
  const period = RESYNC_S * 1000;
  return agent.listeningAt + Math.ceil((after - agent.listeningAt) / period + 1e-9) * period;
}

async function stuckReport(agent: RunningAgent, step: string, since: number): Promise<Stuck> {
  const running = await sampleChildren(agent.pid);
  const c = agent.exited() ? undefined : await counters(agent).catch(() => undefined);
  const events = agent.events();
  const line = (e: object) => JSON.stringify(e).slice(0, 300);
  return {
    step,
    afterS: (performance.now() - since) / 1000,
    ...(c?.gauge !== undefined ? { inMetrics: c.gauge } : {}),
    routes: await countRoutes(),
    nftElements: await countNftElements(),
    reconciles: { ok: c?.ok ?? 0, error: c?.error ?? 0 },
    running: [...new Set(running)].map((command) => command.slice(0, 200)),
    lastErrors: events
      .filter((e) => e.event === "agent.error")
      .slice(-3)
      .map(line),
    lastEvents: events.slice(-3).map(line),
  };
}

// ---- the steps --------------------------------------------------------------------

async function coldStart(
  agent: RunningAgent,
  size: number,
): Promise<{ msToKernel?: number; msToMetrics?: number }> {
  const samples = [...new Set([0, Math.floor(size / 2), size - 1])].map(
    (i) => bindingAt(i).floating,
  );
  const deadline = agent.spawnedAt + timeoutMs(size);
  let msToKernel: number | undefined;
  let msToMetrics: number | undefined;
  let samplesThere = false;
  while (performance.now() < deadline && (msToKernel === undefined || msToMetrics === undefined)) {
    const polled = performance.now();
    if (msToMetrics === undefined && (await counters(agent)).gauge === size) {
      msToMetrics = polled - agent.spawnedAt;
    }
    if (msToKernel === undefined) {
      samplesThere ||= (await Promise.all(samples.map(hasRoute))).every(Boolean);
      if (samplesThere) {
        const counted = performance.now();
        if ((await countRoutes()) >= size) {
          const elements = await countNftElements();
          if (elements >= size) msToKernel = counted - agent.spawnedAt;
          else note(`[agent] ${size}: all routes there but ${elements} map elements`);
        }
      }
    }
    progress(
      `[agent] ${size}: cold start, ${((performance.now() - agent.spawnedAt) / 1000).toFixed(1)} s` +
        `${msToKernel !== undefined ? ", kernel done" : ""}${msToMetrics !== undefined ? ", /metrics done" : ""}`,
    );
    await sleep(50);
  }
  return {
    ...(msToKernel !== undefined ? { msToKernel } : {}),
    ...(msToMetrics !== undefined ? { msToMetrics } : {}),
  };
}

async function noopResync(agent: RunningAgent, size: number): Promise<SizeResult["noopResync"]> {
  const tick = nextTick(agent, performance.now() + 500);
  progress(
    `[agent] ${size}: no-op resync in ${((tick - performance.now()) / 1000).toFixed(1)} s`,
    true,
  );
  await sleep(tick - 200 - performance.now());
  const before = await counters(agent);
  const cpuBefore = procCpu(agent.pid);
  const deadline = tick + timeoutMs(size);
  while (performance.now() < deadline) {
    await sleep(20);
    const after = await counters(agent);
    if (after.count > before.count) {
      const cpuAfter = procCpu(agent.pid);
      const self = cpuAfter.self - cpuBefore.self;
      const children = cpuAfter.children - cpuBefore.children;
      if (after.gauge !== before.gauge)
        note(`[agent] ${size}: bindings changed over the no-op resync`);
      return {
        cpuSeconds: self + children,
        agentCpuSeconds: self,
        childCpuSeconds: children,
        wallSeconds: after.sum - before.sum,
        reconciles: after.count - before.count,
        failed: after.error - before.error,
      };
    }
  }
  return undefined;
}

async function changes(
  agent: RunningAgent,
  size: number,
  hostIf: string,
  createdAt: string,
): Promise<{ result: SizeResult["change"]; added: number[] }> {
  const store = live.etcd!.store;
  const samples: ChangeSample[] = [];
  const added: number[] = []; // still in etcd
  let next = size;
  const probe = new KernelProbe();
  probe.start(ROUTE_PROTOCOL);
  try {
    // Until both monitors print: a change before that is never heard (kernel-probe.ts).
    const readyMs = await probe.ready(timeoutMs(size));
    progress(`[agent] ${size}: kernel probe listening after ${readyMs.toFixed(0)} ms`, true);
    return await changeSeries();
  } finally {
    probe.stop();
  }

  async function changeSeries(): Promise<{ result: SizeResult["change"]; added: number[] }> {
    for (let k = 0; k < CHANGES; k++) {
      const op = k % 2 === 0 || added.length === 0 ? "add" : "delete";
      // Not within a guard time of the resync timer: its verify reconcile would be in the figure.
      const guard = Math.max(1000, 3 * Math.max(0, ...samples.map((s) => s.ms)));
      const tick = nextTick(agent, performance.now());
      if (tick - performance.now() < guard) {
        await sleep(tick - performance.now() + 50);
        await settle(agent, 200, timeoutMs(size));
      }
      const index = op === "add" ? next++ : added.pop()!;
      const ip = bindingAt(index).floating;
      const ops = op === "add" ? endpointOps(index, hostIf, createdAt) : endpointDeleteOps(index);
      const want = op === "add";
      const before = await counters(agent);
      const cpuBefore = procCpu(agent.pid);
      probe.clear();
      const written = performance.now();
      if (!(await store.kv.txn([], ops))) throw new Error(`etcd refused change ${k}`);
      const done = await probe.both(ip, want, written + timeoutMs(size));
      if (done !== undefined && (await hasRoute(ip)) !== want) {
        throw new Error(`change ${k}: the kernel told of ${ip}'s route, but it is not as told`);
      }
      if (op === "add") added.push(index);
      if (done === undefined) {
        note(
          `[agent] ${size}: change ${k + 1} (${op} ${ip}) not in the kernel after ${timeoutMs(size) / 1000} s`,
        );
        return { result: summary(samples), added };
      }
      const atKernel = await counters(agent);
      const settled = await settle(agent, 200, timeoutMs(size));
      const cpuAfter = procCpu(agent.pid);
      samples.push({
        op,
        ms: done - written,
        overlappedResync: nextTick(agent, written) <= done,
        reconcilesToKernel: atKernel.count - before.count,
        reconciles: settled.count - before.count,
        reconcileSeconds: settled.sum - before.sum,
        cpu: {
          self: cpuAfter.self - cpuBefore.self,
          children: cpuAfter.children - cpuBefore.children,
        },
      });
      progress(
        `[agent] ${size}: change ${k + 1}/${CHANGES} (${op}) ${(done - written).toFixed(1)} ms`,
        k + 1 === CHANGES,
      );
    }
    return { result: summary(samples), added };
  }
}

function summary(samples: ChangeSample[]) {
  if (samples.length === 0) return undefined;
  const of = (op: "add" | "delete") => samples.filter((s) => s.op === op).map((s) => s.ms);
  return {
    samplesMs: samples,
    all: stats(samples.map((s) => s.ms)),
    ...(of("add").length > 0 ? { add: stats(of("add")) } : {}),
    ...(of("delete").length > 0 ? { delete: stats(of("delete")) } : {}),
    overlappedResync: samples.filter((s) => s.overlappedResync).length,
    reconcilesToKernelP50: stats(samples.map((s) => s.reconcilesToKernel)).p50,
    reconcilesP50: stats(samples.map((s) => s.reconciles)).p50,
    reconcileSecondsP50: stats(samples.map((s) => s.reconcileSeconds)).p50,
    cpuP50: {
      self: stats(samples.map((s) => s.cpu.self)).p50,
      children: stats(samples.map((s) => s.cpu.children)).p50,
    },
  };
}

async function measureSize(
  size: number,
  written: number,
  hostIf: string,
  createdAt: string,
): Promise<SizeResult> {
  const store = live.etcd!.store;
  progress(`[agent] ${size}: writing endpoints + claims ${written}..${size}`, true);
  const etcdWriteMs = await writeBindings(store, written, size, hostIf, createdAt);
  flushBuoyState();
  progress(`[agent] ${size}: starting the agent`, true);
  const agent = await startAgent(NODE_NAME, RESYNC_S);
  const result: SizeResult = {
    size,
    etcdWriteMs,
    coldStart: {},
    reconciles: { ok: 0, error: 0 },
    agentErrors: { count: 0 },
  };
  let added: number[] = [];
  try {
    result.coldStart = await coldStart(agent, size);
    const { msToKernel, msToMetrics } = result.coldStart;
    if (msToKernel === undefined || msToMetrics === undefined) {
      result.stuck = await stuckReport(agent, "cold start", agent.spawnedAt);
    } else {
      progress(
        `[agent] ${size}: cold start ${(msToKernel / 1000).toFixed(2)} s to the kernel, ${(msToMetrics / 1000).toFixed(2)} s to /metrics`,
        true,
      );
      await settle(agent, 1000, timeoutMs(size));
      result.vmRssKiBAfterColdStart = procStatus(agent.pid).rss;
      // The first tick after the kernel monitor started reads everything
      // back (its baseline); the next is what every later tick costs.
      const first = await noopResync(agent, size);
      if (first) result.firstResync = first;
      const noop = first && (await noopResync(agent, size));
      if (noop) result.noopResync = noop;
      else result.stuck = await stuckReport(agent, "no-op resync", performance.now());
      if (noop) {
        await settle(agent, 200, timeoutMs(size));
        const series = await changes(agent, size, hostIf, createdAt);
        added = series.added;
        if (series.result) result.change = series.result;
        if ((series.result?.all.n ?? 0) < CHANGES) {
          result.stuck = await stuckReport(agent, "change to kernel", performance.now());
        } else {
          const expected = size + added.length;
          result.kernelAtEnd = {
            routes: await countRoutes(),
            nftElements: await countNftElements(),
            expected,
          };
        }
      }
    }
    result.vmHwmKiB = procStatus(agent.pid).hwm;
    const end = await counters(agent);
    result.reconciles = { ok: end.ok, error: end.error };
    const errors = agent.events().filter((e) => e.event === "agent.error");
    const last = errors.at(-1);
    result.agentErrors = {
      count: errors.length,
      ...(last ? { last: JSON.stringify(last).slice(0, 300) } : {}),
    };
  } finally {
    await agent.stop();
    if (process.env.BENCH_AGENT_LOG_LEVEL) {
      // Before the report (which makes .bench/ too): a fresh tree has none yet.
      mkdirSync(join(ROOT, ".bench"), { recursive: true });
      writeFileSync(join(ROOT, ".bench", `scale-agent-${size}.log`), agent.log());
    }
    // What the change series left in etcd goes: the next size starts from exactly its own.
    for (const index of added) await store.kv.txn([], endpointDeleteOps(index));
    flushBuoyState();
  }
  if (result.stuck) {
    note(
      `[agent] ${size}: stuck in ${result.stuck.step} after ${result.stuck.afterS.toFixed(0)} s: ` +
        `${result.stuck.inMetrics ?? "-"} in /metrics, ${result.stuck.routes} routes, ${result.stuck.nftElements} map elements; ` +
        `running: ${result.stuck.running.slice(0, 2).join(" | ") || "nothing"}; last: ${result.stuck.lastEvents.at(-1) ?? "-"}`,
    );
  }
  return result;
}

async function main(): Promise<void> {
  note(
    `bench:scale agent half  prefix ${prefix}; sizes ${SIZES.join("/")}, ${CHANGES} changes each, ` +
      `resync ${RESYNC_S} s, timeout ${TIMEOUT_S_PER_10K} s per 10k bindings`,
  );
  const started = performance.now();
  flushBuoyState();
  const hostIf = await prepareAgentRun("as");

  const createdAt = new Date().toISOString();
  const results: SizeResult[] = [];
  let written = 0;
  for (const size of SIZES) {
    results.push(await measureSize(size, written, hostIf, createdAt));
    written = size;
  }
  const totalSeconds = (performance.now() - started) / 1000;
  const goalList = goals(results);

  console.log("");
  console.log(table(results));
  console.log("");
  console.log(goalTable(goalList));
  for (const r of results.filter((r) => r.stuck)) {
    console.log(
      `${r.size}: gave up in ${r.stuck!.step} after ${r.stuck!.afterS.toFixed(0)} s; running then: ` +
        `${r.stuck!.running.slice(0, 2).join(" | ") || "nothing"}`,
    );
  }
  for (const r of results.filter((r) => r.agentErrors.count > 0)) {
    console.log(
      `${r.size}: the agent logged ${r.agentErrors.count} errors; last: ${r.agentErrors.last}`,
    );
  }
  console.log(`total ${totalSeconds.toFixed(0)} s`);

  const round = (x: number) => Math.round(x * 1000) / 1000;
  const report = {
    benchmark: "scale-agent",
    timestamp: new Date().toISOString(),
    prefix,
    totalSeconds: round(totalSeconds),
    method: {
      command: `node ${AGENT_EXECUTABLE} agent --node ${NODE_NAME} --floating-ips on --listen 127.0.0.1:0 --resync ${RESYNC_S}, ETCD_ENDPOINTS set, in the node namespace`,
      data: "one etcd; per size, smallest first, filled up to N workload endpoints + claims of the node (transactions of 64 + 64), all naming one veth; buoy's table and proto 202 routes removed before each agent starts",
      coldStart:
        'spawn until the kernel holds N bindings (every 50 ms: `ip route get fibmatch` of three floating IPs, then `ip -4 route show proto 202` counted until N, then the fip_dnat map\'s elements; the time of the complete route count) and until /metrics shows buoy_floating_ip_bindings{family="ipv4"} = N',
      noopResync:
        "over the second resync tick after cold start settled (no reconcile for 1 s; the first, also reported, reads the kernel back whole to set the kernel monitor's baseline): CPU from /proc/PID/stat utime+stime+cutime+cstime plus the utime+stime of the agent's resident nft/ip monitor children, 200 ms before the tick until /metrics counts the reconcile; wall from buoy_reconcile_duration_seconds_sum",
      change: `${CHANGES} changes, alternately one endpoint + claim added (one transaction) and the one just added deleted; from just before the transaction until the kernel's notices (nft -j monitor, ip -o monitor route) told of both its fip_dnat element and its route, added or deleted (the later of the two), then \`ip -4 route get fibmatch IP\` confirming the route; the agent settled (no reconcile for 200 ms) before each; none started within max(1 s, 3x the slowest so far) of a resync tick`,
      memory: "/proc/PID/status VmRSS after cold start settled, VmHWM at the end",
      timeout: `${TIMEOUT_S_PER_10K} s per 10k bindings (at least ${TIMEOUT_S_PER_10K} s) for each wait`,
    },
    machine: machineInfo({
      etcd: ["etcd", "--version"],
      nft: ["nft", "--version"],
      ip: ["ip", "-V"],
    }),
    commit: sh(["git", "-C", ROOT, "rev-parse", "HEAD"]).stdout.trim() || undefined,
    goals: goalList,
    results: results.map((r) => ({
      ...r,
      ...(r.change
        ? {
            change: {
              ...r.change,
              samplesMs: r.change.samplesMs.map((s) => ({ ...s, ms: round(s.ms) })),
            },
          }
        : {}),
    })),
  };
  const outDir = join(ROOT, ".bench");
  mkdirSync(outDir, { recursive: true });
  writeFileSync(
    join(outDir, "scale-agent.json"),
    JSON.stringify(
      report,
      (_, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? null : v),
      2,
    ) + "\n",
  );
  note(`wrote ${join(outDir, "scale-agent.json")}`);
}

try {
  await main();
} catch (error) {
  note(`bench:scale (agent) failed: ${(error as Error).stack ?? error}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
