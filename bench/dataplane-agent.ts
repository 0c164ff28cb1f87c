// Part 3 of bench:dataplane, the agent: AGENT_BINDINGS endpoints and claims
// in etcd, `node dist/buoy agent` in the node namespace until /metrics and
// the kernel show them all, its memory and CPU, a no-op reconcile and one
// live change; the same agent with no bindings as the reference.
// agentTable() prints both.
import { performance } from "node:perf_hooks";
import { formatTable, note, progress } from "./report.js";
import { runCommand } from "../src/exec/command.js";
import { sleep } from "../test/support/harness.js";
import {
  cpuSeconds,
  endpointOps,
  metricValue,
  prepareAgentRun,
  procStatus,
  removeLink,
  sampleChildren,
  startAgent,
  writeBindings,
} from "./agent-process.js";
import {
  AGENT_BINDINGS,
  AGENT_RESYNC_S,
  AGENT_SYNC_TIMEOUT_S,
  NODE_NAME,
  dropBuoyTables,
  dropNatTable,
  live,
  nft,
} from "./dataplane-run.js";

export interface AgentResult {
  node: string;
  /** Bindings the agent should program. */
  bindings: number;
  /** Whether /metrics showed them all within AGENT_SYNC_TIMEOUT_S. */
  firstSyncDone: boolean;
  /** Spawn until /metrics showed them all, or until the wait was given up. */
  msWaited: number;
  /** Spawn until the kernel held a floating-IP route per binding (polled every 250 ms), and RSS then. */
  msToKernelProgrammed?: number;
  vmRssKiBAtKernelProgrammed?: number;
  firstReconcileSeconds?: number;
  noopReconcileSeconds?: number;
  /** From the etcd write of one more binding until /metrics counts it. */
  msChangeToProgrammed?: number;
  /** buoy_floating_ip_bindings{family="ipv4"} at the end; undefined when never set. */
  programmed?: number;
  reconciles: { ok: number; error: number };
  /** At the first sync, or when the wait was given up. */
  vmRssKiB: number;
  cpuSeconds: number;
  vmRssKiBAfterNoopReconcile?: number;
  vmHwmKiB: number;
  /** What the agent was running when the wait was given up (its child processes). */
  childrenAtTimeout?: string[];
  kernel: { nftBindings: number; routes: number };
  agentErrors: { count: number; last?: string };
}

/**
 * Runs the agent for `node` until it has programmed `expected` bindings and made
 * one more (no-op) reconcile; then, with `addOne`, writes one more binding to
 * etcd and times until the agent has programmed it.
 */
async function runAgent(
  node: string,
  expected: number,
  addOne?: () => Promise<void>,
): Promise<AgentResult> {
  const agent = await startAgent(node, AGENT_RESYNC_S);
  const { pid, events, metrics } = agent;
  const started = agent.spawnedAt;
  try {
    const gauge = `buoy_floating_ip_bindings{family="ipv4"}`;
    const count = (text: string) => metricValue(text, "buoy_reconcile_duration_seconds_count") ?? 0;
    const sum = (text: string) => metricValue(text, "buoy_reconcile_duration_seconds_sum") ?? NaN;
    let text = "";
    let firstSyncDone = false;
    // The kernel side too (its floating-IP routes are written last), polled less often.
    let kernelProgrammed: { ms: number; rss: number } | undefined;
    let routesCheckedAt = 0;
    for (;;) {
      text = await metrics();
      if (expected > 0 && !kernelProgrammed && performance.now() - routesCheckedAt > 250) {
        routesCheckedAt = performance.now();
        const listing = await runCommand(["ip", "-4", "route", "show", "proto", "202"]);
        if (listing.stdout.split("\n").filter(Boolean).length >= expected) {
          kernelProgrammed = { ms: performance.now() - started, rss: procStatus(pid).rss };
        }
      }
      if (metricValue(text, gauge) === expected) {
        firstSyncDone = true;
        break;
      }
      if (performance.now() - started > AGENT_SYNC_TIMEOUT_S * 1000) break;
      progress(
        `[agent] ${node}: waiting for ${expected} bindings (${((performance.now() - started) / 1000).toFixed(0)} s)`,
      );
      await sleep(50);
    }
    const msWaited = performance.now() - started;
    const cpu = cpuSeconds(pid);
    const atSync = procStatus(pid);
    const firstSum = sum(text);
    const firstCount = count(text);
    let childrenAtTimeout: string[] | undefined;
    let noopReconcileSeconds: number | undefined;
    let afterNoop: { rss: number; hwm: number } | undefined;
    let msChangeToProgrammed: number | undefined;
    if (!firstSyncDone) {
      childrenAtTimeout = await sampleChildren(pid);
    } else {
      // One more reconcile (the resync timer) with nothing to change.
      const deadline = performance.now() + AGENT_RESYNC_S * 1000 * 3 + 60_000;
      while (performance.now() < deadline) {
        text = await metrics();
        if (count(text) > firstCount) {
          noopReconcileSeconds = sum(text) - firstSum;
          afterNoop = procStatus(pid);
          break;
        }
        await sleep(50);
      }
      // A live change right after a reconcile finished: one endpoint + claim more.
      if (addOne) {
        await addOne();
        const written = performance.now();
        while (performance.now() - written < 60_000) {
          text = await metrics();
          if (metricValue(text, gauge) === expected + 1) {
            msChangeToProgrammed = performance.now() - written;
            break;
          }
          await sleep(20);
        }
      }
    }
    const errors = events().filter((e) => e.event === "agent.error");
    const programmed = metricValue(text, gauge);
    const table = await nft.readTable(4);
    const { stdout: routeListing } = await runCommand([
      "ip",
      "-json",
      "-4",
      "route",
      "show",
      "proto",
      "202",
    ]);
    const routes = JSON.parse(routeListing || "[]") as unknown[];
    const last = errors.at(-1)?.error;
    return {
      node,
      bindings: expected,
      firstSyncDone,
      msWaited,
      ...(kernelProgrammed
        ? {
            msToKernelProgrammed: kernelProgrammed.ms,
            vmRssKiBAtKernelProgrammed: kernelProgrammed.rss,
          }
        : {}),
      ...(firstSyncDone && firstCount === 1 ? { firstReconcileSeconds: firstSum } : {}),
      ...(noopReconcileSeconds !== undefined ? { noopReconcileSeconds } : {}),
      ...(msChangeToProgrammed !== undefined ? { msChangeToProgrammed } : {}),
      ...(programmed !== undefined ? { programmed } : {}),
      reconciles: {
        ok: metricValue(text, `buoy_reconciles_total{result="ok"}`) ?? 0,
        error: metricValue(text, `buoy_reconciles_total{result="error"}`) ?? 0,
      },
      vmRssKiB: atSync.rss,
      cpuSeconds: cpu,
      ...(afterNoop ? { vmRssKiBAfterNoopReconcile: afterNoop.rss } : {}),
      vmHwmKiB: procStatus(pid).hwm,
      ...(childrenAtTimeout ? { childrenAtTimeout } : {}),
      kernel: { nftBindings: table?.bindings.length ?? 0, routes: routes.length },
      agentErrors: { count: errors.length, ...(last !== undefined ? { last } : {}) },
    };
  } finally {
    await agent.stop();
  }
}

export async function measureAgent(): Promise<{
  empty: AgentResult;
  full: AgentResult;
  writeMs: number;
}> {
  dropBuoyTables();
  dropNatTable();
  const hostIf = await prepareAgentRun("ag");
  const store = live.etcd!.store;

  const createdAt = new Date().toISOString();
  const writeMs = await writeBindings(store, 0, AGENT_BINDINGS, hostIf, createdAt);
  progress(`[agent] wrote ${AGENT_BINDINGS} endpoints + claims in ${writeMs.toFixed(0)} ms`, true);

  progress("[agent] agent with no bindings...", true);
  const empty = await runAgent("bench-empty", 0);
  dropBuoyTables();
  progress(`[agent] agent with ${AGENT_BINDINGS} bindings...`, true);
  const full = await runAgent(NODE_NAME, AGENT_BINDINGS, async () => {
    if (!(await store.kv.txn([], endpointOps(AGENT_BINDINGS, hostIf, createdAt)))) {
      throw new Error("etcd refused the live change");
    }
  });
  const programmed = AGENT_BINDINGS + (full.msChangeToProgrammed !== undefined ? 1 : 0);
  if (
    full.firstSyncDone &&
    (full.kernel.nftBindings !== programmed || full.kernel.routes !== programmed)
  ) {
    throw new Error(`the agent left ${JSON.stringify(full.kernel)} in the kernel`);
  }
  if (!full.firstSyncDone) {
    note(
      `[agent] the agent had not programmed ${AGENT_BINDINGS} bindings after ${AGENT_SYNC_TIMEOUT_S} s ` +
        `(reconciles ok ${full.reconciles.ok}, failed ${full.reconciles.error}; last error: ${full.agentErrors.last ?? "none"}; ` +
        `running: ${full.childrenAtTimeout?.slice(0, 3).join(" | ") || "nothing"})`,
    );
  }
  dropBuoyTables();
  removeLink(hostIf);
  progress("[agent] done", true);
  return { empty, full, writeMs };
}

export function agentTable(agent: { empty: AgentResult; full: AgentResult }): string {
  const mib = (kib: number | undefined) => (kib === undefined ? "-" : (kib / 1024).toFixed(1));
  const ms = (seconds: number | undefined) =>
    seconds === undefined || Number.isNaN(seconds) ? "-" : (seconds * 1000).toFixed(0);
  const row = (what: string, f: (r: AgentResult) => string) => [
    what,
    f(agent.empty),
    f(agent.full),
  ];
  return formatTable(
    [
      `agent (node ${process.env.BENCH_AGENT_BUOY ?? "dist/buoy"})`,
      `${agent.empty.bindings} bindings`,
      `${agent.full.bindings} bindings`,
    ],
    [
      row("spawn to all bindings in /metrics, ms", (r) =>
        r.firstSyncDone ? r.msWaited.toFixed(0) : `not after ${(r.msWaited / 1000).toFixed(0)} s`,
      ),
      row("spawn to all routes in the kernel, ms", (r) =>
        r.msToKernelProgrammed === undefined ? "-" : r.msToKernelProgrammed.toFixed(0),
      ),
      row("VmRSS then, MiB", (r) => mib(r.vmRssKiBAtKernelProgrammed)),
      row("first reconcile (histogram), ms", (r) => ms(r.firstReconcileSeconds)),
      row("no-op reconcile (resync), ms", (r) => ms(r.noopReconcileSeconds)),
      row("one binding added: etcd write to /metrics, ms", (r) =>
        r.msChangeToProgrammed === undefined ? "-" : r.msChangeToProgrammed.toFixed(0),
      ),
      row("reconciles ok / failed", (r) => `${r.reconciles.ok} / ${r.reconciles.error}`),
      row("bindings in /metrics, nft map, routes", (r) =>
        [r.programmed ?? "-", r.kernel.nftBindings, r.kernel.routes].join(" / "),
      ),
      row("CPU until /metrics (or gave up), s", (r) => r.cpuSeconds.toFixed(2)),
      row("VmRSS at /metrics (or gave up), MiB", (r) => mib(r.vmRssKiB)),
      row("VmRSS after no-op reconcile, MiB", (r) => mib(r.vmRssKiBAfterNoopReconcile)),
      row("VmHWM (peak RSS), MiB", (r) => mib(r.vmHwmKiB)),
    ],
    1,
  );
}
