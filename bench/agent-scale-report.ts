// The agent half of bench:scale (bench/agent-scale.ts): what one size
// measured, the table of every size, and issue 14's goals judged met or not.
import { formatTable, type Stats } from "./report.js";

export const TIMEOUT_S_PER_10K = Number(process.env.BENCH_AGENT_TIMEOUT_S ?? 20);
/** How long one step may take at a size: TIMEOUT_S_PER_10K per 10k bindings, at least that. */
export const timeoutMs = (size: number) => TIMEOUT_S_PER_10K * Math.max(1, size / 10_000) * 1000;

export interface Stuck {
  step: string;
  afterS: number;
  inMetrics?: number;
  routes: number;
  nftElements: number;
  reconciles: { ok: number; error: number };
  running: string[];
  lastErrors: string[];
  lastEvents: string[];
}

export interface ChangeSample {
  op: "add" | "delete";
  ms: number;
  overlappedResync: boolean;
  /** Reconciles /metrics had counted when the kernel had the change, and once the agent settled. */
  reconcilesToKernel: number;
  reconciles: number;
  /** buoy_reconcile_duration_seconds_sum's increase until the agent settled. */
  reconcileSeconds: number;
  /** CPU seconds of the agent itself and of its reaped children from the write until it settled. */
  cpu: { self: number; children: number };
}

export interface SizeResult {
  size: number;
  etcdWriteMs: number;
  coldStart: { msToKernel?: number; msToMetrics?: number };
  vmRssKiBAfterColdStart?: number;
  /** The first tick after start: a read-back of everything (the kernel monitor's baseline). */
  firstResync?: SizeResult["noopResync"];
  noopResync?: {
    cpuSeconds: number;
    agentCpuSeconds: number;
    childCpuSeconds: number;
    wallSeconds: number;
    reconciles: number;
    /** Of those, failed (e.g. an etcd read that timed out): the figures are then a failure's. */
    failed: number;
  };
  change?: {
    samplesMs: ChangeSample[];
    all: Stats;
    add?: Stats;
    delete?: Stats;
    overlappedResync: number;
    /** Medians per change: reconciles until the kernel had it, until settled, their seconds. */
    reconcilesToKernelP50: number;
    reconcilesP50: number;
    reconcileSecondsP50: number;
    cpuP50: { self: number; children: number };
  };
  vmHwmKiB?: number;
  reconciles: { ok: number; error: number };
  /** The agent's agent.error log lines: how many, and the last (cut to 300 characters). */
  agentErrors: { count: number; last?: string };
  kernelAtEnd?: { routes: number; nftElements: number; expected: number };
  stuck?: Stuck;
}

const GOALS = {
  changeP50Ms: 25,
  changeP95Ms: 50,
  changeP50Ratio: 1.5,
  coldStartS: 10,
  noopCpuS: 1,
  hwmMiB10k: 150,
  hwmMiB100k: 400,
};

export function table(results: SizeResult[]): string {
  const mib = (kib: number | undefined) => (kib === undefined ? "-" : (kib / 1024).toFixed(0));
  const num = (x: number | undefined, digits: number) =>
    x === undefined ? "-" : x.toFixed(digits);
  const first = results[0];
  const last = results.at(-1);
  const ratio =
    first?.change && last?.change && results.length > 1
      ? `${(last.change.all.p50 / first.change.all.p50).toFixed(2)}x`
      : "-";
  const cold = (r: SizeResult, ms: number | undefined) =>
    ms !== undefined
      ? (ms / 1000).toFixed(2)
      : `not after ${(timeoutMs(r.size) / 1000).toFixed(0)}`;
  const row = (what: string, f: (r: SizeResult) => string, extra = "") => [
    what,
    ...results.map(f),
    ...(results.length > 1 ? [extra] : []),
  ];
  return formatTable(
    [
      `agent (${process.env.BENCH_AGENT_BUOY ?? "dist/buoy"})`,
      ...results.map((r) => `${r.size} bindings`),
      ...(results.length > 1 ? [`${last!.size}/${first!.size}`] : []),
    ],
    [
      row("etcd: endpoints + claims added for this size, s", (r) => num(r.etcdWriteMs / 1000, 1)),
      row("cold start: spawn to all in the kernel, s", (r) => cold(r, r.coldStart.msToKernel)),
      row("cold start: spawn to all in /metrics, s", (r) => cold(r, r.coldStart.msToMetrics)),
      row("change to kernel p50, ms", (r) => num(r.change?.all.p50, 1), ratio),
      row("change to kernel p95, ms", (r) => num(r.change?.all.p95, 1)),
      row("change to kernel max, ms", (r) => num(r.change?.all.max, 1)),
      row("  adds p50 / deletes p50, ms", (r) =>
        r.change ? `${num(r.change.add?.p50, 1)} / ${num(r.change.delete?.p50, 1)}` : "-",
      ),
      row("  changes measured (overlapping a resync)", (r) =>
        r.change ? `${r.change.all.n} (${r.change.overlappedResync})` : "0",
      ),
      row("  reconciles per change: to the kernel / in all", (r) =>
        r.change ? `${r.change.reconcilesToKernelP50} / ${r.change.reconcilesP50}` : "-",
      ),
      row("  reconcile time per change (histogram), ms", (r) =>
        num(r.change ? r.change.reconcileSecondsP50 * 1000 : undefined, 0),
      ),
      row("  CPU per change, agent + children, s", (r) =>
        r.change
          ? `${r.change.cpuP50.self.toFixed(2)} + ${r.change.cpuP50.children.toFixed(2)}`
          : "-",
      ),
      row("first resync (reads back): CPU, agent + children, s", (r) =>
        r.firstResync
          ? `${r.firstResync.cpuSeconds.toFixed(2)} (${r.firstResync.agentCpuSeconds.toFixed(2)} + ${r.firstResync.childCpuSeconds.toFixed(2)})`
          : "-",
      ),
      row("no-op resync: CPU, agent + children, s", (r) =>
        r.noopResync
          ? `${r.noopResync.cpuSeconds.toFixed(2)} (${r.noopResync.agentCpuSeconds.toFixed(2)} + ${r.noopResync.childCpuSeconds.toFixed(2)})`
          : "-",
      ),
      row("no-op resync: wall (histogram), s", (r) =>
        r.noopResync
          ? `${r.noopResync.wallSeconds.toFixed(2)}${r.noopResync.failed > 0 ? " (failed)" : ""}`
          : "-",
      ),
      row("VmRSS after cold start, MiB", (r) => mib(r.vmRssKiBAfterColdStart)),
      row("VmHWM (peak RSS) at the end, MiB", (r) => mib(r.vmHwmKiB)),
      row("reconciles ok / failed", (r) => `${r.reconciles.ok} / ${r.reconciles.error}`),
      row("kernel at the end: routes / map elements", (r) =>
        r.kernelAtEnd ? `${r.kernelAtEnd.routes} / ${r.kernelAtEnd.nftElements}` : "-",
      ),
    ],
    1,
  );
}

const msS = (ms: number | undefined) => (ms === undefined ? undefined : ms / 1000);

export interface Goal {
  goal: string;
  figures: string;
  met: boolean | undefined;
}

/** A figure of one size: measured, given up on (the agent did not get there), or size not run. */
type Figure = number | "gave up" | undefined;

/**
 * Issue 14's goals for the agent, judged on what this run measured: met,
 * not met (also when the agent did not get there in time), or undefined
 * when the size was not run.
 */
export function goals(results: SizeResult[]): Goal[] {
  const at = (size: number) => results.find((r) => r.size === size);
  const figure = (r: SizeResult | undefined, value: number | undefined): Figure =>
    r === undefined ? undefined : (value ?? "gave up");
  const show = (f: Figure, unit: string, digits: number) =>
    f === undefined ? "not run" : f === "gave up" ? f : `${f.toFixed(digits)} ${unit}`;
  const judge = (figures: Figure[], ok: (v: number) => boolean, unit: string, digits = 1) => ({
    figures: figures.map((f) => show(f, unit, digits)).join(" / "),
    met:
      figures.length === 0 || figures.includes(undefined)
        ? undefined
        : figures.every((f) => typeof f === "number" && ok(f)),
  });
  const p50 = (size: number) => figure(at(size), at(size)?.change?.all.p50);
  const [small, large] = [p50(1000), p50(100_000)];
  const ratio: Figure =
    small === undefined || large === undefined
      ? undefined
      : typeof small === "number" && typeof large === "number"
        ? large / small
        : "gave up";
  /** Peak RSS of a run given up on is a lower bound: it can fail the goal, not meet it. */
  const peak = (size: number, limit: number) => {
    const r = at(size);
    const mib = r?.vmHwmKiB === undefined ? undefined : r.vmHwmKiB / 1024;
    if (r?.stuck && mib !== undefined && mib < limit) {
      return { figures: `${mib.toFixed(0)} MiB (gave up)`, met: undefined };
    }
    return judge([figure(r, mib)], (v) => v < limit, "MiB", 0);
  };
  return [
    {
      goal: `change to kernel p50 < ${GOALS.changeP50Ms} ms at every size`,
      ...judge(
        results.map((r) => figure(r, r.change?.all.p50)),
        (v) => v < GOALS.changeP50Ms,
        "ms",
      ),
    },
    {
      goal: `change to kernel p95 < ${GOALS.changeP95Ms} ms at every size`,
      ...judge(
        results.map((r) => figure(r, r.change?.all.p95)),
        (v) => v < GOALS.changeP95Ms,
        "ms",
      ),
    },
    {
      goal: `change to kernel p50 100k / 1k <= ${GOALS.changeP50Ratio}`,
      ...judge([ratio], (v) => v <= GOALS.changeP50Ratio, "x", 2),
    },
    {
      goal: `cold start to all programmed at 100k < ${GOALS.coldStartS} s`,
      ...judge(
        [figure(at(100_000), msS(at(100_000)?.coldStart.msToKernel))],
        (v) => v < GOALS.coldStartS,
        "s",
        2,
      ),
    },
    {
      goal: `no-op resync at 100k < ${GOALS.noopCpuS} s of CPU`,
      ...judge(
        [figure(at(100_000), at(100_000)?.noopResync?.cpuSeconds)],
        (v) => v < GOALS.noopCpuS,
        "s",
        2,
      ),
    },
    { goal: `peak RSS < ${GOALS.hwmMiB10k} MiB at 10k`, ...peak(10_000, GOALS.hwmMiB10k) },
    { goal: `peak RSS < ${GOALS.hwmMiB100k} MiB at 100k`, ...peak(100_000, GOALS.hwmMiB100k) },
  ];
}

export function goalTable(list: Goal[]): string {
  return formatTable(
    ["goal (issue 14)", "measured", "verdict"],
    list.map((g) => [
      g.goal,
      g.figures,
      g.met === undefined ? "not measured" : g.met ? "met" : "NOT MET",
    ]),
    2,
  );
}
