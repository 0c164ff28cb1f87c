// Two commits, one machine, one run: `npm run bench:against -- <commit> [cni]
// [dataplane]` checks <commit> out into a throwaway worktree (sharing this
// tree's node_modules), then runs each named benchmark there and here, one
// after the other, each through its own npm script (its own build and its own
// namespaces). It prints, for every row both reports share, the baseline's
// and this tree's median and their ratio, and writes .bench/against.json.
//
// Ratios are "this tree / baseline" for times and memory (below 1: faster or
// smaller) and "baseline / this tree" for rates (below 1: more per second), so
// that in every row a value above 1 means this tree is worse. One run of each
// side is noisy at single-digit milliseconds: read the ratios across rows.
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatTable, note } from "./report.js";

const ROOT = join(import.meta.dirname, "..");
const KNOWN = ["cni", "dataplane"] as const;
type Bench = (typeof KNOWN)[number];

/** One comparable number of a report: lower is better unless `higherIsBetter`. */
interface Row {
  key: string;
  value: number;
  unit: string;
  higherIsBetter?: boolean;
}

interface CniReport {
  results: { config: string; op: string; stats: { p50: number } }[];
}

interface AgentRun {
  bindings: number;
  msWaited: number;
  msChangeToProgrammed?: number;
  noopReconcileSeconds?: number;
  vmRssKiB: number;
}

interface DataplaneReport {
  results: {
    timings: { config: string; op: string; bindings: number; statsMs: { p50: number } }[];
    newConnectionRate: { config: string; bindings: number; arrivalsPerSecond: { p50: number } }[];
    /** The same agent for a node with no bindings and for one with them all. */
    agent?: Record<"empty" | "full", AgentRun>;
  };
}

function rowsOf(bench: Bench, report: unknown): Row[] {
  if (bench === "cni") {
    return (report as CniReport).results.map((r) => ({
      key: `${r.config} ${r.op} p50`,
      value: r.stats.p50,
      unit: "ms",
    }));
  }
  const { timings, newConnectionRate, agent } = (report as DataplaneReport).results;
  const agents = agent ? [agent.empty, agent.full] : [];
  return [
    ...timings.map((t) => ({
      key: `${t.config}: ${t.op} @${t.bindings} p50`,
      value: t.statsMs.p50,
      unit: "ms",
    })),
    ...newConnectionRate.map((r) => ({
      key: `${r.config}: new connections @${r.bindings} p50`,
      value: r.arrivalsPerSecond.p50,
      unit: "/s",
      higherIsBetter: true,
    })),
    ...agents.flatMap((a) => [
      { key: `agent @${a.bindings}: first sync`, value: a.msWaited, unit: "ms" },
      ...(a.msChangeToProgrammed === undefined
        ? []
        : [{ key: `agent @${a.bindings}: change`, value: a.msChangeToProgrammed, unit: "ms" }]),
      ...(a.noopReconcileSeconds === undefined
        ? []
        : [
            {
              key: `agent @${a.bindings}: no-op reconcile`,
              value: a.noopReconcileSeconds * 1000,
              unit: "ms",
            },
          ]),
      { key: `agent @${a.bindings}: RSS`, value: a.vmRssKiB / 1024, unit: "MiB" },
    ]),
  ];
}

function run(dir: string, argv: string[]): void {
  const result = spawnSync(argv[0]!, argv.slice(1), { cwd: dir, stdio: "inherit" });
  if (result.status !== 0) throw new Error(`${argv.join(" ")} in ${dir} exited ${result.status}`);
}

function git(...args: string[]): string {
  const result = spawnSync("git", args, { cwd: ROOT, encoding: "utf8" });
  if (result.status !== 0) throw new Error(`git ${args.join(" ")}: ${result.stderr.trim()}`);
  return result.stdout.trim();
}

function runBench(dir: string, bench: Bench): Row[] {
  run(dir, ["npm", "run", "-s", `bench:${bench}`]);
  return rowsOf(bench, JSON.parse(readFileSync(join(dir, ".bench", `${bench}.json`), "utf8")));
}

function fmt(value: number): string {
  return value >= 100 ? value.toFixed(0) : value.toFixed(value >= 10 ? 1 : 2);
}

async function main(): Promise<void> {
  const [commit, ...rest] = process.argv.slice(2);
  if (!commit || commit.startsWith("-")) {
    throw new Error(`usage: npm run bench:against -- <commit> [${KNOWN.join("] [")}]`);
  }
  const unknown = rest.filter((name) => !(KNOWN as readonly string[]).includes(name));
  if (unknown.length)
    throw new Error(`unknown benchmark ${unknown.join(", ")}: ${KNOWN.join(", ")}`);
  const benches = (rest.length ? rest : [...KNOWN]) as Bench[];
  const baseline = git("rev-parse", "--verify", `${commit}^{commit}`);
  const here = `${git("rev-parse", "HEAD")}${git("status", "--porcelain") ? " (with changes)" : ""}`;

  const dir = mkdtempSync(join(tmpdir(), "buoy-against-"));
  const tree = join(dir, "tree");
  const cleanup = () => {
    spawnSync("git", ["worktree", "remove", "--force", tree], { cwd: ROOT });
    rmSync(dir, { recursive: true, force: true });
  };
  process.once("SIGINT", () => {
    cleanup();
    process.exit(130);
  });
  try {
    note(`against: baseline ${baseline} in ${tree}`);
    git("worktree", "add", "--detach", tree, baseline);
    symlinkSync(join(ROOT, "node_modules"), join(tree, "node_modules"));
    const results = benches.map((bench) => {
      note(`against: ${bench} on the baseline`);
      const before = runBench(tree, bench);
      note(`against: ${bench} on this tree`);
      const after = runBench(ROOT, bench);
      const rows = after.flatMap((row) => {
        const old = before.find((candidate) => candidate.key === row.key);
        if (!old) return [];
        const ratio = row.higherIsBetter ? old.value / row.value : row.value / old.value;
        return [{ key: row.key, unit: row.unit, baseline: old.value, here: row.value, ratio }];
      });
      return { bench, rows };
    });
    for (const { bench, rows } of results) {
      console.log(
        `\nbench:${bench}, baseline ${baseline.slice(0, 12)} vs this tree ${here.slice(0, 12)}`,
      );
      console.log(
        formatTable(
          ["row", "unit", "baseline", "this tree", "worse by"],
          rows.map((r) => [r.key, r.unit, fmt(r.baseline), fmt(r.here), `${r.ratio.toFixed(2)}x`]),
          2,
        ),
      );
    }
    const outDir = join(ROOT, ".bench");
    if (!existsSync(outDir)) mkdirSync(outDir, { recursive: true });
    writeFileSync(
      join(outDir, "against.json"),
      JSON.stringify({ benchmark: "against", baseline, here, results }, null, 2) + "\n",
    );
    note(`wrote ${join(outDir, "against.json")}`);
  } finally {
    cleanup();
  }
}

try {
  await main();
} catch (error) {
  note(`bench:against failed: ${(error as Error).message}`);
  process.exitCode = 1;
}
