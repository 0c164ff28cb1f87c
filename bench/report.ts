// What the benchmarks share: progress lines on stderr, percentile stats, the
// machine a run was measured on, the text tables every benchmark prints, and
// a private link to the built plugin.
import { spawnSync } from "node:child_process";
import { copyFileSync, linkSync, readFileSync } from "node:fs";
import { cpus, platform, release, totalmem, type as osType } from "node:os";
import { join } from "node:path";

export interface Stats {
  n: number;
  p50: number;
  p95: number;
  mean: number;
  min: number;
  max: number;
}

/** A status line: rewritten in place on a terminal, else printed at milestones only. */
export function progress(text: string, milestone = false): void {
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${text}${milestone ? "\n" : ""}`);
  else if (milestone) process.stderr.write(`${text}\n`);
}

export function note(text: string): void {
  if (process.stderr.isTTY) process.stderr.write("\r\x1b[K");
  process.stderr.write(`${text}\n`);
}

export function stats(samples: readonly number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  const quantile = (q: number): number => {
    // Linear interpolation between closest ranks (numpy's default).
    const position = (sorted.length - 1) * q;
    const low = Math.floor(position);
    const high = Math.ceil(position);
    const a = sorted[low] as number;
    const b = sorted[high] as number;
    return a + (b - a) * (position - low);
  };
  return {
    n: sorted.length,
    p50: quantile(0.5),
    p95: quantile(0.95),
    mean: sorted.reduce((sum, x) => sum + x, 0) / sorted.length,
    min: sorted[0] as number,
    max: sorted[sorted.length - 1] as number,
  };
}

/** The first line a tool prints for its version, or undefined. */
export function toolVersion(argv: string[]): string | undefined {
  const [file, ...args] = argv as [string, ...string[]];
  const result = spawnSync(file, args, { encoding: "utf8" });
  if (result.status !== 0) return undefined;
  return `${result.stdout}${result.stderr}`.split("\n")[0]?.trim();
}

/** OS, kernel, CPUs, memory, runtimes, and the versions of `tools` (name -> argv). */
export function machineInfo(tools: Record<string, string[]> = {}): Record<string, unknown> {
  let distro: string | undefined;
  try {
    distro = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFileSync("/etc/os-release", "utf8"))?.[1];
  } catch {
    distro = undefined;
  }
  const cpuList = cpus();
  return {
    os: { type: osType(), platform: platform(), distro },
    kernel: release(),
    cpus: { count: cpuList.length, model: cpuList[0]?.model },
    memoryBytes: totalmem(),
    node: toolVersion(["node", "--version"]),
    bun: process.versions.bun,
    bunNodeCompat: process.versions.node,
    ...Object.fromEntries(Object.entries(tools).map(([name, argv]) => [name, toolVersion(argv)])),
  };
}

/** A text table: the first `leftColumns` columns left-aligned, the rest right-aligned. */
export function formatTable(header: string[], rows: string[][], leftColumns: number): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i < leftColumns ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

/**
 * A private link to the built plugin in `dir` (a copy where linking fails):
 * a concurrent `npm run build`, which deletes dist/, must not pull it away
 * mid-run. Resolves to its path.
 */
export function privatePlugin(built: string, dir: string): string {
  const path = join(dir, "calico");
  try {
    linkSync(built, path);
  } catch {
    copyFileSync(built, path);
  }
  return path;
}

/**
 * Throws unless every line of the CNI log naming a container `bench-<key>-…`
 * says `via: agent`, and there are at least `expected` of them: a silent
 * fallback would time the executable instead of the resident server.
 */
export function checkServed(cniLog: string, key: string, expected = 1): void {
  const lines = readFileSync(cniLog, "utf8")
    .split("\n")
    .filter((line) => line.includes(`"bench-${key}-`));
  const served = lines.filter((line) => line.includes('"via":"agent"')).length;
  if (served < lines.length) {
    throw new Error(`${key}: ${lines.length - served} of ${lines.length} calls not served`);
  }
  if (lines.length < expected) {
    throw new Error(`${key}: only ${lines.length} calls logged, expected ${expected}`);
  }
}
