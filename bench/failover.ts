// How long a FloatingIP is unanswered when its holder fails (issue 15), on
// `buoy lab` (real kernels, etcd, agents, BIRD, the CNI plugin, buoy
// controller on etcd), per routing mode. Two pods on two nodes are selected;
// a 200 Hz UDP probe from the external client follows the address, each
// answer naming the pod that sent it. Cases, RUNS times each:
//   - deleted: the holder's pod deleted (its record marked, then its DEL);
//   - not ready: the holder's Ready condition turned False;
//   - node lost: the holder's node's agent, BIRD and watchdog SIGKILLed and
//     its link downed (brought back between runs).
// Interruption is the probe's longest gap around the event; the baseline is
// the same probe over the same window with no event (the floor). Requests
// answered by two pods are counted (must be 0).
// Prints a table and writes .bench/failover.json. Run: npm run bench:failover
// (RUNS=n, INTERVAL_MS=n, MODES=bgp,direct, CASES=nodeLost,…, TTL=s to
// change the defaults).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { floatingIpManifest } from "../src/lab/lab-pod-record.js";
import { labUp } from "../src/lab/lab-up.js";
import type { Lab, LabRouting, UdpPingReport } from "../src/lab/lab.js";
import { formatTable, machineInfo, note, progress, stats, type Stats } from "./report.js";

const ROOT = new URL("..", import.meta.url).pathname;
const RUNS = Number(process.env.RUNS ?? 20);
const INTERVAL_MS = Number(process.env.INTERVAL_MS ?? 5);
const TTL_SECONDS = Number(process.env.TTL ?? 5);
const MODES = (process.env.MODES ?? "direct,bgp").split(",") as LabRouting[];
const ADDRESS = "203.0.113.40";
/** The probe starts this long before the event. */
const LEAD_MS = 1000;
const ALL_CASES = ["deleted", "notReady", "nodeLost"] as const;
type Case = (typeof ALL_CASES)[number];
const CASES: readonly Case[] = process.env.CASES
  ? process.env.CASES.split(",").map((name) => {
      if (!(ALL_CASES as readonly string[]).includes(name)) {
        throw new Error(`CASES: '${name}' is none of ${ALL_CASES.join(", ")}`);
      }
      return name as Case;
    })
  : ALL_CASES;

interface CaseResult {
  interruptionMs: Stats;
  /** Runs in which the other pod answered before the window ended. */
  tookOver: number;
  answeredByTwo: number;
  samples: number[];
}

interface ModeResult {
  routing: LabRouting;
  floorGapMs: Stats;
  cases: Partial<Record<Case, CaseResult>>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function answering(lab: Lab): Promise<string | undefined> {
  const result = await lab.probe("ext", ADDRESS, "udp", { timeoutMs: 300 });
  return result.ok ? result.answeredBy : undefined;
}

async function until(what: string, done: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function measureMode(routing: LabRouting, runPrefix: string): Promise<ModeResult> {
  progress(`${routing}: building a 2-node lab`, true);
  const lab = await labUp({
    prefix: `${runPrefix}${routing === "bgp" ? "b" : "d"}`,
    routing,
    statusTtlSeconds: TTL_SECONDS,
  });
  try {
    const labels = { app: "web" };
    await lab.addPod(1, "p1", { labels });
    await lab.addPod(2, "p2", { labels });
    await lab.buoy(["apply", "-f", "-"], floatingIpManifest("bench", ADDRESS, labels));
    await until("the FloatingIP answering", async () => (await answering(lab)) !== undefined);
    const window = (event: Case) => (event === "nodeLost" ? TTL_SECONDS * 1000 + 4000 : 3000);
    const probe = async (event: Case, act?: () => Promise<void>): Promise<UdpPingReport> => {
      const report = lab.udpPing("ext", ADDRESS, {
        durationMs: window(event),
        intervalMs: INTERVAL_MS,
      });
      await sleep(LEAD_MS);
      await act?.();
      return report;
    };
    const floor: number[] = [];
    const cases: Partial<Record<Case, CaseResult>> = {};
    for (const event of CASES) {
      const samples: number[] = [];
      let tookOver = 0;
      let answeredByTwo = 0;
      for (let run = 0; run < RUNS; run++) {
        progress(`${routing}: ${event} ${run + 1}/${RUNS}`);
        const holder = await answering(lab);
        if (!holder) throw new Error(`${routing}: no pod answers before ${event} run ${run + 1}`);
        const pod = lab.pod(holder);
        floor.push((await probe(event)).longestGapMs);
        const report = await probe(event, async () => {
          if (event === "deleted") await lab.deletePod(holder);
          else if (event === "notReady") await lab.setPodReady(holder, false);
          else await lab.loseNode(pod.node);
        });
        samples.push(report.longestGapMs);
        answeredByTwo += report.answeredByTwo;
        if (report.pods.at(-1) !== holder && report.pods.includes(holder)) tookOver += 1;
        // The failed holder back as the standby (sticky: the new one keeps it).
        if (event === "deleted") await lab.addPod(pod.node, holder, { labels });
        else if (event === "notReady") await lab.setPodReady(holder, true);
        else await lab.reviveNode(pod.node);
        await until(`the standby ${holder} Ready again`, async () => {
          const listed = await lab.buoy(["get", "floatingips", "-o", "json"]).catch(() => "");
          return listed.includes(`"floatingIP": "default/bench"`);
        });
        // The revived node's liveness key and Ready record land before the next run.
        await sleep(event === "nodeLost" ? 1500 : 300);
      }
      cases[event] = { interruptionMs: stats(samples), tookOver, answeredByTwo, samples };
    }
    progress(`${routing}: done`, true);
    return { routing, floorGapMs: stats(floor), cases };
  } finally {
    await lab.down();
  }
}

const runPrefix = `bfo${Math.random().toString(16).slice(2, 6)}`;
const results: ModeResult[] = [];
for (const routing of MODES) results.push(await measureMode(routing, runPrefix));

const fmt = (value: number) => value.toFixed(0);
const rows: string[][] = [];
for (const result of results) {
  rows.push([
    `${result.routing}: floor (no event)`,
    fmt(result.floorGapMs.p50),
    fmt(result.floorGapMs.p95),
    fmt(result.floorGapMs.max),
    "",
    "",
  ]);
  for (const event of CASES) {
    const measured = result.cases[event];
    if (!measured) continue;
    const { interruptionMs: s, tookOver, answeredByTwo } = measured;
    rows.push([
      `${result.routing}: ${event}`,
      fmt(s.p50),
      fmt(s.p95),
      fmt(s.max),
      `${tookOver}/${RUNS}`,
      String(answeredByTwo),
    ]);
  }
}
note(
  `FloatingIP failover: ${RUNS} runs per case, UDP probe every ${INTERVAL_MS} ms from the external client, status TTL ${TTL_SECONDS} s\n` +
    formatTable(["", "p50 ms", "p95 ms", "max ms", "took over", "two answered"], rows, 1),
);
const outDir = join(ROOT, ".bench");
mkdirSync(outDir, { recursive: true });
writeFileSync(
  join(outDir, "failover.json"),
  JSON.stringify(
    {
      benchmark: "failover",
      when: new Date().toISOString(),
      machine: machineInfo({ bird: ["bird", "--version"], etcd: ["etcd", "--version"] }),
      runs: RUNS,
      intervalMs: INTERVAL_MS,
      statusTtlSeconds: TTL_SECONDS,
      results,
    },
    null,
    2,
  ) + "\n",
);
note(`wrote ${join(outDir, "failover.json")}`);
