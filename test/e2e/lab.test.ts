// The lab, end to end, as root: namespaces, etcd, agents, pods made by the
// real CNI plugin, probes answered by the responder in the pod. Runs inside
// the throwaway namespace of scripts/netns-run.sh (npm run test:e2e); the lab
// nests its own namespaces, all named blab<run><letter>-*.
//
// Cross-node cells (pods on another node, the external client with more than
// one node) need the agent's routing (--routing, BGPPeer). The lab finds them
// in the build's --help; these tests never skip on that: a build without them,
// or with a flag renamed, fails here.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { probeMatrix } from "../../src/lab/lab-demo.js";
import { labDown } from "../../src/lab/lab-down.js";
import { labUp } from "../../src/lab/lab-up.js";
import type { Lab } from "../../src/lab/lab.js";
import { readLabStatus } from "../../src/lab/lab-status.js";
import { findLabProblems } from "../../src/lab/render-lab-status.js";
import { listNetns } from "../../src/lab/lab-shell.js";
import { LAB_STATE_ROOT } from "../../src/lab/lab-state.js";

const ROOT = new URL("../..", import.meta.url).pathname;
const FLOATING = "203.0.113.10";

/** blab + the run's random part: every lab prefix of this run starts with it. */
function runBase(): string {
  const run = process.env.BUOY_RUN_PREFIX;
  if (!run) {
    throw new Error(
      "BUOY_RUN_PREFIX is not set: run through scripts/netns-run.sh (npm run test:e2e)",
    );
  }
  return `blab${run
    .replace(/^blab-/, "")
    .replace(/[^a-z0-9]/g, "")
    .slice(0, 7)}`;
}
const base = runBase();
const made = new Set<string>();
const prefix = (letter: string) => {
  made.add(base + letter);
  return base + letter;
};

afterAll(async () => {
  for (const leftover of made) await labDown(leftover).catch(() => {});
});

/** Processes carrying the lab's marker, by reading /proc: what `down` must leave none of. */
function markedProcesses(labPrefix: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const environ = readFileSync(`/proc/${entry}/environ`, "latin1").split("\0");
      const stat = readFileSync(`/proc/${entry}/stat`, "latin1");
      const zombie = stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
      if (!zombie && environ.includes(`BUOY_LAB=${labPrefix}`)) pids.push(Number(entry));
    } catch {
      // gone meanwhile, or not readable
    }
  }
  return pids;
}

async function expectGone(labPrefix: string): Promise<void> {
  expect((await listNetns()).filter((netns) => netns.startsWith(`${labPrefix}-`))).toEqual([]);
  expect(existsSync(join(LAB_STATE_ROOT, labPrefix))).toBe(false);
  expect(markedProcesses(labPrefix)).toEqual([]);
}

/** `node dist/buoy ARGV` as a user runs it: exit code and output. */
function runBuoy(argv: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, "dist/buoy"), ...argv], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe("a 2-node lab in direct mode", () => {
  let lab: Lab;
  const steps: string[] = [];

  beforeAll(async () => {
    lab = await labUp({
      prefix: prefix("a"),
      nodes: 2,
      routing: "direct",
      onStep: (step) => steps.push(step.what),
    });
  });

  afterAll(async () => {
    await lab?.down();
  });

  it("labUp() finds the agent's routing and BGPPeer in the build under test", () => {
    expect(lab.state.features).toEqual({ agentRouting: true, bgpPeers: true });
  });

  it("labUp() reports each step and leaves etcd and every agent ready", async () => {
    expect(steps.some((step) => step.startsWith("etcd in"))).toBe(true);
    expect(steps.some((step) => step.startsWith("agents on node-1, node-2"))).toBe(true);
    expect(lab.state.phase).toBe("up");
    expect(await lab.httpOk(lab.netns("fab"), `${lab.topology.etcd.endpoint}/health`)).toBe(true);
    const nodes = JSON.parse(await lab.buoy(["get", "nodes", "-o", "json"])) as {
      items: { metadata: { name: string } }[];
    };
    expect(nodes.items.map((item) => item.metadata.name)).toEqual(["node-1", "node-2"]);
  });

  it("addPod() runs the seed conflist like a runtime: addresses from the pod pool, the floating IP claimed and programmed", async () => {
    const web = await lab.addPod(1, "web", { floatingIps: [FLOATING] });
    await lab.addPod(1, "client");
    expect(web.ips).toHaveLength(1);
    expect(web.ips[0]).toMatch(/^10\.244\./);
    expect(web.netns).toBe(`${lab.prefix}-1-web`);
    const status = await eventually(
      async () =>
        JSON.parse(await lab.buoy(["get", "floatingips", FLOATING, "-o", "json"])) as {
          spec: { pod: string; node: string };
          status: { programmed: boolean };
        },
      (fip) => fip.status.programmed,
    );
    expect(status).toMatchObject({
      spec: { pod: "web", node: "node-1" },
      status: { programmed: true },
    });
  });

  it("every protocol reaches the floating IP from the same node's pod, the pod itself and the node", async () => {
    const web = lab.pod("web");
    const client = lab.pod("client");
    const matrix = await probeMatrix(lab, FLOATING, "web", [
      { title: "pod on node-1", netns: client.netns },
      { title: "web itself", netns: web.netns },
      { title: "node-1", netns: lab.node(1).netns },
    ]);
    for (const row of matrix.rows) {
      const [fromClient, fromItself, fromNode] = row.cells;
      expect(fromClient, `${row.protocol} from the pod on node-1`).toMatchObject({
        ok: true,
        answeredBy: "web",
        seenSource: client.ips[0],
      });
      // A pod reaching its own floating IP sees the floating IP as the sender.
      expect(fromItself, `${row.protocol} from web itself`).toMatchObject({
        ok: true,
        answeredBy: "web",
        seenSource: FLOATING,
      });
      expect(fromNode, `${row.protocol} from node-1`).toMatchObject({
        ok: true,
        answeredBy: "web",
      });
    }
  });

  it("a second pod asking for the held floating IP is refused naming the holder, and leaves no namespace", async () => {
    await expect(lab.addPod(1, "thief", { floatingIps: [FLOATING] })).rejects.toThrow(/web/);
    expect(await listNetns()).not.toContain(`${lab.prefix}-1-thief`);
    expect(lab.pods.map((pod) => pod.name)).toEqual(["web", "client"]);
  });

  it("buoy lab pod add|delete and probe work from the command line, with clear refusals, and status shows the routes", async () => {
    const cli = (...argv: string[]) => runBuoy(["lab", ...argv, "--prefix", lab.prefix]);
    const second = "203.0.113.11";

    const added = await cli("pod", "add", "2", "cli-web", "--floating-ip", second);
    expect(added.stderr).toBe("");
    expect(added.code).toBe(0);
    expect(added.stdout).toContain(
      `pod default/cli-web added on node-2 (network namespace ${lab.prefix}-2-cli-web)`,
    );
    expect(added.stdout).toMatch(/^ {2}addresses: +10\.244\.\d+\.\d+$/m);
    expect(added.stdout).toMatch(new RegExp(`^  floating IPs: ${second}$`, "m"));

    const refusals = [
      {
        argv: ["pod", "add", "node-1", "cli-thief", "--floating-ip", FLOATING],
        error: `floating IP ${FLOATING} is already held by pod default/web`,
      },
      {
        argv: ["pod", "add", "1", "cli-web"],
        error: `lab ${lab.prefix} has a pod cli-web already`,
      },
      { argv: ["pod", "add", "3", "cli-x"], error: `lab ${lab.prefix} has no node node-3` },
      { argv: ["pod", "delete", "cli-nobody"], error: `lab ${lab.prefix} has no pod cli-nobody` },
    ];
    for (const { argv, error } of refusals) {
      const refused = await cli(...argv);
      expect(refused.code, argv.join(" ")).toBe(1);
      expect(refused.stderr, argv.join(" ")).toContain(error);
    }
    const unknownLab = await runBuoy(["lab", "pod", "add", "1", "x", "--prefix", `${base}z`]);
    expect(unknownLab.code).toBe(1);
    expect(unknownLab.stderr).toContain(`no lab ${base}z on this machine`);
    expect(await listNetns()).not.toContain(`${lab.prefix}-1-cli-thief`);

    // From the same node: answered with or without the agent's routing.
    const probe = await cli("probe", "node-2", second, "--protocol", "udp");
    expect(probe.code, probe.stderr).toBe(0);
    expect(probe.stdout).toContain(`udp from node-2 to ${second}: cli-web answered`);
    expect(probe.stdout).toMatch(/^ {2}reply source: +203\.0\.113\.11$/m);
    expect(probe.stdout).toMatch(/^ {2}source cli-web saw: +192\.168\.200\.12$/m);

    // Each floating IP routed by the other node to its holder, in one table.
    const rows = [
      /^203\.0\.113\.10 +default\/web +node-1 +\S+ +yes +direct +node-2: node-1$/m,
      /^203\.0\.113\.11 +default\/cli-web +node-2 +\S+ +yes +direct +node-1: node-2$/m,
    ];
    const status = await eventually(
      () => cli("status"),
      (result) => rows.every((row) => row.test(result.stdout)),
    );
    for (const row of rows) expect(status.stdout).toMatch(row);
    expect(status.code, status.stderr).toBe(0);

    const deleted = await cli("pod", "delete", "cli-web");
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(deleted.stdout).toBe("pod default/cli-web deleted from node-2\n");
    expect(await listNetns()).not.toContain(`${lab.prefix}-2-cli-web`);
    expect(await lab.buoy(["get", "floatingips"])).not.toContain(second);
    await lab.reloadState();
    expect(lab.pods.map((pod) => pod.name)).toEqual(["web", "client"]);
  });

  it("deletePod() releases the pod's claim and removes its namespace", async () => {
    await lab.deletePod("client");
    expect(await listNetns()).not.toContain(`${lab.prefix}-1-client`);
    expect(await lab.buoy(["get", "endpoints"])).not.toContain("client");
  });

  it("a 100 Hz ping from the node to the floating IP loses nothing", async () => {
    const report = await lab.ping("node-1", FLOATING, { durationMs: 1000 });
    expect(report.sent).toBeGreaterThanOrEqual(95);
    expect(report.lost).toBe(0);
    expect(report.longestGapMs).toBeLessThan(100);
  });

  it("with the agent's routing, the external client and a pod on node-2 reach it too", async () => {
    const client = await lab.addPod(2, "client-2");
    const matrix = await probeMatrix(lab, FLOATING, "web", [
      { title: "external client", netns: lab.netns("ext") },
      { title: "pod on node-2", netns: client.netns },
    ]);
    for (const row of matrix.rows) {
      const [fromOutside, fromOtherNode] = row.cells;
      expect(fromOutside, `${row.protocol} from outside`).toMatchObject({
        ok: true,
        seenSource: lab.topology.external.ipv4,
      });
      expect(fromOtherNode, `${row.protocol} from node-2`).toMatchObject({
        ok: true,
        seenSource: client.ips[0],
      });
    }
  });

  it("down() leaves no namespace, process or file of the lab", async () => {
    await lab.down();
    await expectGone(lab.prefix);
  });
});

describe("a 2-node lab in BGP mode", () => {
  let lab: Lab;

  beforeAll(async () => {
    lab = await labUp({ prefix: prefix("f"), nodes: 2, routing: "bgp" });
    await Promise.all([
      lab.addPod(1, "web", { floatingIps: [FLOATING] }),
      lab.addPod(2, "client-2"),
      lab.addPod(2, "standby"),
    ]);
  });

  afterAll(async () => {
    await lab?.down();
    if (lab) await expectGone(lab.prefix);
  });

  it("every BGP session is Established and the status names no problem", async () => {
    const status = await readLabStatus(lab);
    expect(findLabProblems(status)).toEqual([]);
    // What an operator on node-1 sees: `buoy node status` against its agent and BIRD.
    const node = await lab.exec("node-1", [
      process.execPath,
      join(ROOT, "dist/buoy"),
      "node",
      "status",
      "--bird-socket",
      join(lab.stateDir, "node-1", "bird.ctl"),
    ]);
    expect(node.stdout).toMatch(/^buoy agent at http:\/\/127\.0\.0\.1:9096: ready \(version /);
    expect(node.stdout).toMatch(/floating IPs: 1 programmed \(IPv4 1\), 0 refused/);
    expect(node.stdout).toMatch(/BIRD at .*bird\.ctl: \d+ BGP session\(s\)/);
    expect(node.stdout).not.toMatch(/FENCED|not answering|not ready/);
    // And the archive support asks for, from the same node.
    const archive = join(lab.stateDir, "diagnose.tar.gz");
    const diagnose = await lab.exec("node-1", [
      process.execPath,
      join(ROOT, "dist/buoy"),
      "--etcd-endpoints",
      lab.topology.etcd.endpoint,
      "diagnose",
      "--node",
      "node-1",
      "--cni-conf",
      join(lab.stateDir, "node-1.conflist"),
      "--bird-socket",
      join(lab.stateDir, "node-1", "bird.ctl"),
      "-o",
      archive,
    ]);
    expect(diagnose.stdout).toMatch(/^wrote .*diagnose\.tar\.gz/);
    const read = (file: string) =>
      spawnSync("tar", ["-xzOf", archive, "--wildcards", `*/${file}`], { encoding: "utf8" }).stdout;
    expect(read("nft-ip-buoy.txt")).toContain(`${FLOATING} : ${lab.pod("web").ips[0]}`);
    expect(read("routes-ipv4.txt")).toContain(FLOATING);
    expect(read("bird-protocols.txt")).toContain("Established");
    expect(read("node-status.txt")).toContain("ready");
    expect(read("metrics.txt")).toContain("buoy_floating_ip_bindings");
    const records = JSON.parse(read("datastore.json")) as { claims: { ip: string }[] };
    expect(records.claims.map((claim) => claim.ip)).toEqual([FLOATING]);
    expect(read("cni/node-1.conflist")).toContain('"floating_ips"');
    expect(read("cni-log/*.log")).toContain('"msg"');
    expect(status.router.bgp).toHaveLength(2);
    const fip = await eventually(
      async () => (await readLabStatus(lab)).floatingIps,
      (fips) => typeof fips !== "string" && fips[0]?.routerRoutesTo?.[0] === "node-1",
    );
    expect(fip).toEqual([
      {
        ip: FLOATING,
        pod: "default/web",
        node: "node-1",
        internalIP: lab.pod("web").ips[0],
        programmed: true,
        announced: "bgp",
        routerRoutesTo: ["node-1"],
      },
    ]);
  });

  it("every protocol reaches the floating IP from outside and from a pod on the other node", async () => {
    const matrix = await probeMatrix(lab, FLOATING, "web", [
      { title: "external client", netns: lab.netns("ext") },
      { title: "pod on node-2", netns: lab.pod("client-2").netns },
    ]);
    for (const row of matrix.rows) {
      const [fromOutside, fromOtherNode] = row.cells;
      expect(fromOutside, `${row.protocol} from outside`).toMatchObject({
        ok: true,
        answeredBy: "web",
        seenSource: lab.topology.external.ipv4,
      });
      expect(fromOtherNode, `${row.protocol} from node-2`).toMatchObject({
        ok: true,
        answeredBy: "web",
        seenSource: lab.pod("client-2").ips[0],
      });
    }
  });

  it("a live move to a pod on node-2 interrupts a 100 Hz ping from outside briefly", async () => {
    const ping = lab.ping("ext", FLOATING, { durationMs: 5000 });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await lab.buoy(["floatingip", "move", FLOATING, "--to", "default/standby"]);
    const answer = await eventually(
      () => lab.probe("ext", FLOATING, "tcp", { timeoutMs: 300 }),
      (result) => result.answeredBy === "standby",
    );
    expect(answer).toMatchObject({ ok: true, answeredBy: "standby" });
    const report = await ping;
    expect(report.received).toBeGreaterThan(report.sent * 0.6);
    expect(report.longestGapMs).toBeLessThan(2000);
  });
});

describe("labs side by side", () => {
  it("two labs with different prefixes run in parallel, each with its own etcd and floating IP", async () => {
    const labs = await Promise.all([
      labUp({ prefix: prefix("b"), nodes: 1, routing: "direct" }),
      labUp({ prefix: prefix("c"), nodes: 1, routing: "direct" }),
    ]);
    try {
      // The same floating IP in each: separate datastores, separate networks.
      await Promise.all(labs.map((lab) => lab.addPod(1, "web", { floatingIps: [FLOATING] })));
      for (const lab of labs) {
        const answer = await eventually(
          () => lab.probe("ext", FLOATING, "tcp", { timeoutMs: 500 }),
          (result) => result.ok,
        );
        expect(answer).toMatchObject({
          ok: true,
          answeredBy: "web",
          seenSource: lab.topology.external.ipv4,
        });
        const nodeNamespaces = (await listNetns()).filter((netns) =>
          netns.startsWith(`${lab.prefix}-`),
        );
        expect(nodeNamespaces.sort()).toEqual(
          [
            `${lab.prefix}-1-web`,
            `${lab.prefix}-ext`,
            `${lab.prefix}-fab`,
            `${lab.prefix}-n1`,
          ].sort(),
        );
      }
    } finally {
      await Promise.all(labs.map((lab) => lab.down()));
    }
    for (const lab of labs) await expectGone(lab.prefix);
  });
});

describe("buoy lab down after a crash", () => {
  it("removes what an up killed half-way left behind", async () => {
    const crashed = prefix("d");
    const child = spawn(
      process.execPath,
      [join(ROOT, "dist/buoy"), "lab", "up", "--prefix", crashed, "--routing", "direct"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    // Killed once etcd runs: its namespaces and processes exist, the agents may not yet.
    await eventually(
      async () => output,
      (text) => text.includes("etcd in"),
      20_000,
    );
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
    expect((await listNetns()).some((netns) => netns.startsWith(`${crashed}-`))).toBe(true);
    expect(markedProcesses(crashed).length).toBeGreaterThan(0);

    const report = await labDown(crashed);
    expect(report.namespaces.length).toBeGreaterThan(0);
    await expectGone(crashed);
  });

  it("an interrupted up (SIGINT) removes what it built and exits non-zero", async () => {
    const interrupted = prefix("e");
    const child = spawn(
      process.execPath,
      [join(ROOT, "dist/buoy"), "lab", "up", "--prefix", interrupted, "--routing", "direct"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    await eventually(
      async () => output,
      (text) => text.includes("fabric bridge"),
      20_000,
    );
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    child.kill("SIGINT");
    expect(await exited).not.toBe(0);
    expect(output).toContain("interrupted");
    await expectGone(interrupted);
  });
});
