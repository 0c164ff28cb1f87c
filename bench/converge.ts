// How fast a floating IP converges, measured on `buoy lab` (real kernel,
// etcd, agents, BIRD, the real CNI plugin):
//   - interruption of a fast ping from the external client across cross-node
//     moves (`buoy floatingip move`), p50/p95/max, per routing mode;
//   - the same ping's longest gap over the same window with no move: the
//     floor (what the probe itself and the machine's scheduling cost);
//   - from the start of a pod's CNI ADD to the first answered ping from the
//     external client.
// Prints a table and writes .bench/converge.json. Run: npm run bench:converge
// (MOVES=n, INTERVAL_MS=n to change the defaults).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { labUp } from "../src/lab/lab-up.js";
import type { Lab, LabRouting } from "../src/lab/lab.js";
import { formatTable, machineInfo, note, progress, stats, type Stats } from "./report.js";

const ROOT = new URL("..", import.meta.url).pathname;
const MOVES = Number(process.env.MOVES ?? 20);
const INTERVAL_MS = Number(process.env.INTERVAL_MS ?? 5);
/** The ping runs this long around each move; the move happens a third of the way in. */
const WINDOW_MS = 2000;
const FLOATING = "203.0.113.77";
const ADD_FLOATING = "203.0.113.78";

interface ModeResult {
  routing: LabRouting;
  interruptionMs: Stats;
  lostPerMove: Stats;
  floorGapMs: Stats;
  addToFirstAnswerMs: Stats;
  samples: { interruptionMs: number[]; floorGapMs: number[]; addToFirstAnswerMs: number[] };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function measureMode(routing: LabRouting, runPrefix: string): Promise<ModeResult> {
  progress(`${routing}: building a 2-node lab`, true);
  const lab = await labUp({ prefix: `${runPrefix}${routing === "bgp" ? "b" : "d"}`, routing });
  try {
    await lab.addPod(1, "a", { floatingIps: [FLOATING] });
    await lab.addPod(2, "b");
    await waitForAnswer(lab, FLOATING);

    const floorGapMs: number[] = [];
    const interruptionMs: number[] = [];
    const lost: number[] = [];
    for (let move = 0; move < MOVES; move++) {
      progress(`${routing}: move ${move + 1}/${MOVES}`);
      const floor = await lab.ping("ext", FLOATING, {
        durationMs: WINDOW_MS,
        intervalMs: INTERVAL_MS,
      });
      floorGapMs.push(floor.longestGapMs);
      const to = move % 2 === 0 ? "b" : "a";
      const pinging = lab.ping("ext", FLOATING, { durationMs: WINDOW_MS, intervalMs: INTERVAL_MS });
      await sleep(WINDOW_MS / 3);
      await lab.buoy(["floatingip", "move", FLOATING, "--to", `default/${to}`]);
      const report = await pinging;
      if (report.received === 0)
        throw new Error(`${routing}: no answer at all around move ${move + 1}`);
      interruptionMs.push(report.longestGapMs);
      lost.push(report.lost);
    }

    const addToFirstAnswerMs: number[] = [];
    for (let i = 0; i < 5; i++) {
      progress(`${routing}: ADD to first answer ${i + 1}/5`);
      addToFirstAnswerMs.push(await addToFirstAnswer(lab, `c${i}`, 1 + (i % 2)));
    }
    progress(`${routing}: done`, true);
    return {
      routing,
      interruptionMs: stats(interruptionMs),
      lostPerMove: stats(lost),
      floorGapMs: stats(floorGapMs),
      addToFirstAnswerMs: stats(addToFirstAnswerMs),
      samples: { interruptionMs, floorGapMs, addToFirstAnswerMs },
    };
  } finally {
    await lab.down();
  }
}

async function waitForAnswer(lab: Lab, ip: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if ((await lab.probe("ext", ip, "icmp", { timeoutMs: 500 })).ok) return;
  }
  throw new Error(`${ip} never answered the external client`);
}

/**
 * Pings the floating IP from the external client in a tight loop of one-shot
 * pings with timestamps (`ping -D`), started before the ADD (in BGP mode the
 * router has no route until the IP is announced, and ping gives up at once
 * then); the first reply's timestamp minus the ADD's start is the time to
 * first answer. The pod is deleted afterwards.
 */
async function addToFirstAnswer(lab: Lab, pod: string, node: number): Promise<number> {
  const loop =
    `end=$((SECONDS + 10)); until ping -D -n -c 1 -W 0.05 ${ADD_FLOATING} 2>/dev/null | grep time=; do ` +
    `[ $SECONDS -ge $end ] && exit 1; sleep ${INTERVAL_MS / 1000}; done`;
  const pinging = lab.exec("ext", ["bash", "-c", loop], { timeoutMs: 15_000 }).then(
    (output) => output.stdout,
    (error: { stdout?: string }) => error.stdout ?? "",
  );
  await sleep(200);
  const started = Date.now();
  await lab.addPod(node, pod, { floatingIps: [ADD_FLOATING], responder: false });
  const output = await pinging;
  await lab.deletePod(pod);
  const stamp = /^\[(\d+\.\d+)\].*time=/m.exec(output)?.[1];
  if (!stamp) throw new Error(`no answer from ${ADD_FLOATING} within 10 s of the ADD:\n${output}`);
  // Let the old binding be withdrawn everywhere before the next ADD.
  await sleep(500);
  return Number(stamp) * 1000 - started;
}

const runPrefix = `bcv${Math.random().toString(16).slice(2, 6)}`;
const results: ModeResult[] = [];
for (const routing of ["direct", "bgp"] as const)
  results.push(await measureMode(routing, runPrefix));

const fmt = (value: number) => value.toFixed(0);
const rows: string[][] = [];
for (const result of results) {
  for (const [label, s] of [
    [`${result.routing}: interruption per move`, result.interruptionMs],
    [`${result.routing}: floor (no move, same window)`, result.floorGapMs],
    [`${result.routing}: lost pings per move`, result.lostPerMove],
    [`${result.routing}: ADD to first answer`, result.addToFirstAnswerMs],
  ] as const) {
    rows.push([label, fmt(s.p50), fmt(s.p95), fmt(s.max)]);
  }
}
note(
  `cross-node moves: ${MOVES} per mode, ping every ${INTERVAL_MS} ms from the external client\n` +
    formatTable(["", "p50 ms", "p95 ms", "max ms"], rows, 1),
);
const outDir = join(ROOT, ".bench");
mkdirSync(outDir, { recursive: true });
writeFileSync(
  join(outDir, "converge.json"),
  JSON.stringify(
    {
      benchmark: "converge",
      when: new Date().toISOString(),
      machine: machineInfo({ bird: ["bird", "--version"], etcd: ["etcd", "--version"] }),
      moves: MOVES,
      intervalMs: INTERVAL_MS,
      results,
    },
    null,
    2,
  ) + "\n",
);
note(`wrote ${join(outDir, "converge.json")}`);
