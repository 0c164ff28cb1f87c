// Fencing (issue 13 item 6, ADR 0009) on a 2-node BGP lab with real BIRD and
// etcd: node-1 holds a floating IP; its agent is cut off from etcd (an nft
// drop in node-1's namespace, so requests hang as in a partition) and the IP
// is moved to a pod on node-2. A poller asks the router's BIRD every ~20 ms
// which next hops it has for the IP: node-1's route must go before the status
// TTL, node-2's come after it, and no sample may show both. Then node-1's
// agent is SIGKILLed: its BIRD watchdog withdraws the IP at once.
import { statSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CommandError, runCommand } from "../../src/exec/command.js";
import { labDown } from "../../src/lab/lab-down.js";
import { labUp } from "../../src/lab/lab-up.js";
import type { Lab } from "../../src/lab/lab.js";
import { join } from "node:path";

const FIP = "203.0.113.40";
const TTL_SECONDS = 4;
const NODE1 = "192.168.200.11";
const NODE2 = "192.168.200.12";

function runBase(): string {
  const run = process.env.BUOY_RUN_PREFIX;
  if (!run) throw new Error("BUOY_RUN_PREFIX is not set: run through npm run test:e2e");
  return `bf${run.replace(/[^a-z0-9]/g, "").slice(-6)}`;
}

interface Sample {
  at: number;
  hops: string[];
}

/** The next hops of every route the router's BIRD holds for the IP (best and alternatives). */
async function routerHops(lab: Lab): Promise<string[]> {
  const socket = join(lab.stateDir, "tor", "bird.ctl");
  let stdout: string;
  try {
    ({ stdout } = await runCommand(
      ["birdc", "-s", socket, "show", "route", "for", `${FIP}/32`, "all"],
      { timeoutMs: 2000 },
    ));
  } catch (error) {
    // birdc exits 1 when BIRD has no route for it.
    if (error instanceof CommandError && error.stdout.includes("Network not found")) return [];
    throw error;
  }
  const hops = new Set<string>();
  for (const match of stdout.matchAll(/BGP\.next_hop: (\S+)/g)) hops.add(match[1] as string);
  return [...hops].sort();
}

/** Polls until `stop()`; resolves to every sample taken. */
function poll(lab: Lab) {
  const samples: Sample[] = [];
  let running = true;
  const done = (async () => {
    while (running) {
      const hops = await routerHops(lab).catch(() => ["error"]);
      samples.push({ at: Date.now(), hops });
      await new Promise((resolve) => setTimeout(resolve, 15));
    }
    return samples;
  })();
  return {
    samples,
    stop: () => ((running = false), done),
  };
}

async function until(read: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await read())) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("fencing, BGP lab", () => {
  let lab: Lab;
  const prefix = runBase();

  beforeAll(async () => {
    lab = await labUp({
      prefix,
      routing: "bgp",
      ipv6: false,
      claimGcGraceSeconds: 30,
      statusTtlSeconds: TTL_SECONDS,
    });
    await lab.addPod(1, "web", { floatingIps: [FIP] });
    await lab.addPod(2, "heir");
    await until(async () => (await routerHops(lab)).join() === NODE1, 20_000);
  }, 120_000);

  afterAll(async () => {
    await labDown(prefix).catch(() => {});
  });

  it("an agent cut off from etcd withdraws its floating IP before the TTL; the new node announces after it, never both", async () => {
    const poller = poll(lab);
    await new Promise((resolve) => setTimeout(resolve, 300));
    // Cut first, so node-1 never hears of the move: only its fence withdraws.
    await lab.exec("node-1", [
      "nft",
      "add table inet buoyfencetest; " +
        "add chain inet buoyfencetest out { type filter hook output priority 0; }; " +
        `add rule inet buoyfencetest out ip daddr 192.168.200.1 tcp dport 2379 drop`,
    ]);
    const cutAt = Date.now();
    await lab.buoy(["floatingip", "move", FIP, "--to", "default/heir"]);
    await until(async () => (await routerHops(lab)).includes(NODE2), 20_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const samples = await poller.stop();
    await lab.exec("node-1", ["nft", "delete table inet buoyfencetest"]);

    const both = samples.filter((s) => s.hops.includes(NODE1) && s.hops.includes(NODE2));
    const lastNode1 = samples.filter((s) => s.hops.includes(NODE1)).at(-1);
    const firstNode2 = samples.find((s) => s.hops.includes(NODE2));
    const gaps = samples.slice(1).map((s, i) => s.at - (samples[i] as Sample).at);
    const report = {
      samples: samples.length,
      maxSampleGapMs: Math.max(...gaps),
      node1GoneAfterCutMs: lastNode1 ? lastNode1.at - cutAt : undefined,
      node2FirstAfterCutMs: firstNode2 ? firstNode2.at - cutAt : undefined,
      errors: samples.filter((s) => s.hops.includes("error")).length,
    };
    console.log(`fencing (datastore cut): ${JSON.stringify(report)}`);
    expect(both).toEqual([]);
    expect(report.errors).toBe(0);
    expect(lastNode1).toBeDefined();
    expect(firstNode2).toBeDefined();
    // Withdrawn before the TTL (fence-after is half of it), announced after.
    expect(report.node1GoneAfterCutMs).toBeLessThan(TTL_SECONDS * 1000);
    expect(report.node2FirstAfterCutMs).toBeGreaterThan(report.node1GoneAfterCutMs as number);

    // Back in contact, node-1 unfences: moved back, it announces again.
    await lab.buoy(["floatingip", "move", FIP, "--to", "default/web"]);
    await until(async () => (await routerHops(lab)).join() === NODE1, 20_000);
  }, 60_000);
  // Last: it kills node-1's agent.
  it("SIGKILL of the agent: the watchdog withdraws its floating IP at once; the new node announces after the TTL, never both", async () => {
    await until(async () => (await routerHops(lab)).join() === NODE1, 20_000);
    // Only root may connect, and so keep BIRD's announcements up.
    const watchdogSocket = statSync(join(lab.stateDir, "node-1", "buoy-agent.sock"));
    expect(watchdogSocket.mode & 0o777).toBe(0o600);
    const poller = poll(lab);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const agent = lab.findProcess("agent-node-1");
    expect(agent).toBeDefined();
    process.kill((agent as { pid: number }).pid, "SIGKILL");
    const killedAt = Date.now();
    await lab.buoy(["floatingip", "move", FIP, "--to", "default/heir"]);
    await until(async () => (await routerHops(lab)).includes(NODE2), 20_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const samples = await poller.stop();

    const both = samples.filter((s) => s.hops.includes(NODE1) && s.hops.includes(NODE2));
    const lastNode1 = samples.filter((s) => s.hops.includes(NODE1)).at(-1);
    const firstNode2 = samples.find((s) => s.hops.includes(NODE2));
    const report = {
      samples: samples.length,
      node1GoneAfterKillMs: lastNode1 ? lastNode1.at - killedAt : undefined,
      node2FirstAfterKillMs: firstNode2 ? firstNode2.at - killedAt : undefined,
      errors: samples.filter((s) => s.hops.includes("error")).length,
    };
    console.log(`fencing (agent SIGKILL): ${JSON.stringify(report)}`);
    expect(both).toEqual([]);
    expect(report.errors).toBe(0);
    expect(report.node1GoneAfterKillMs).toBeLessThan(1000);
    expect(report.node2FirstAfterKillMs).toBeGreaterThan(report.node1GoneAfterKillMs as number);
  }, 60_000);
});
