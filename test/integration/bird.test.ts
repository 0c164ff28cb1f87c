// BIRD 2 on the real kernel: two nodes of AS 64512 and a top-of-rack router
// of AS 65000 on one bridge (IPv4 and IPv6, no IGP), each a namespace running
// its own `bird -f` on a config rendered by dataplane/bird-config.ts and
// loaded through LinuxBird. Node A announces a block, a floating IP of each
// family; node B learns them over iBGP, the router over eBGP, both into their
// kernels; A's kernel never gets its own exports back. A withdrawal reaches
// the peers' kernels within seconds.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  renderBirdNodeConfig,
  renderBirdRouterConfig,
  type BirdNeighbor,
} from "../../src/dataplane/bird-config.js";
import { LinuxBird, type BgpSession } from "../../src/dataplane/shell/bird.js";
import { planRouting } from "../../src/dataplane/routing-plan.js";
import { addNetns, deleteNetns, must, runPrefix, sh, sleep } from "../support/harness.js";

const prefix = runPrefix();
const FABRIC = `${prefix}-bird-fab`;
const NODE_AS = 64512;
const ROUTER_AS = 65000;

interface Speaker {
  ns: string;
  /** Interface name of its port on the fabric bridge. */
  port: string;
  ip: { 4: string; 6: string };
  bird: LinuxBird;
  configPath: string;
  socketPath: string;
  process?: ChildProcess;
  log: string[];
}

const dir = mkdtempSync(join(tmpdir(), `${prefix}-bird-`));
function speaker(name: string, host: number): Speaker {
  const configPath = join(dir, `${name}.conf`);
  const socketPath = join(dir, `${name}.ctl`);
  return {
    ns: `${prefix}-bird-${name}`,
    port: `bird-${name}`,
    ip: { 4: `198.51.100.${host}`, 6: `fd00:bd::${host.toString(16)}` },
    bird: new LinuxBird(configPath, socketPath),
    configPath,
    socketPath,
    log: [],
  };
}
const A = speaker("a", 1);
const B = speaker("b", 2);
const R = speaker("r", 254);
const SPEAKERS = [A, B, R];

const A_EXPORTS = ["10.250.1.0/26", "203.0.113.7/32", "2001:db8:f::7/128"];
const B_EXPORTS = ["10.250.2.0/26"];

/** `who` as a neighbor, one per family: `node-a`, `node-a-v6`. */
function neighborsOf(who: Speaker, name: string, asNumber: number): BirdNeighbor[] {
  return [
    { name, address: who.ip[4], asNumber },
    { name: `${name}-v6`, address: who.ip[6], asNumber },
  ];
}

function nodeConfig(self: Speaker, other: Speaker, otherName: string, exports: string[]): string {
  return renderBirdNodeConfig({
    routerId: self.ip[4],
    asNumber: NODE_AS,
    neighbors: [...neighborsOf(other, otherName, NODE_AS), ...neighborsOf(R, "router", ROUTER_AS)],
    exports,
  });
}

const configA = nodeConfig(A, B, "node-b", A_EXPORTS);
const configB = nodeConfig(B, A, "node-a", B_EXPORTS);
const configR = renderBirdRouterConfig({
  routerId: R.ip[4],
  asNumber: ROUTER_AS,
  neighbors: [...neighborsOf(A, "node-a", NODE_AS), ...neighborsOf(B, "node-b", NODE_AS)],
});

const namespaces: string[] = [];

beforeAll(async () => {
  namespaces.push(FABRIC);
  addNetns(FABRIC);
  must(["ip", "-n", FABRIC, "link", "add", "br0", "type", "bridge"]);
  must(["ip", "-n", FABRIC, "link", "set", "br0", "up"]);
  for (const s of SPEAKERS) {
    namespaces.push(s.ns);
    addNetns(s.ns);
    const veth = ["link", "add", s.port, "type", "veth", "peer", "name", "eth0", "netns", s.ns];
    must(["ip", "-n", FABRIC, ...veth]);
    must(["ip", "-n", FABRIC, "link", "set", s.port, "master", "br0", "up"]);
    must(["ip", "-n", s.ns, "address", "add", `${s.ip[4]}/24`, "dev", "eth0"]);
    must(["ip", "-n", s.ns, "address", "add", `${s.ip[6]}/64`, "dev", "eth0", "nodad"]);
    must(["ip", "-n", s.ns, "link", "set", "eth0", "up"]);
  }
  // What an installer does: BIRD starts with a first config in place.
  for (const [s, config] of [
    [A, configA],
    [B, configB],
    [R, configR],
  ] as const) {
    writeFileSync(s.configPath, config);
    startBird(s);
  }
});

afterAll(async () => {
  await Promise.all(SPEAKERS.map(stopBird));
  for (const ns of namespaces) deleteNetns(ns);
  rmSync(dir, { recursive: true, force: true });
});

function startBird(s: Speaker): void {
  const argv = ["netns", "exec", s.ns, "bird", "-f", "-c", s.configPath, "-s", s.socketPath];
  const child = spawn("ip", argv, { stdio: ["ignore", "pipe", "pipe"] });
  child.stdout.on("data", (chunk: Buffer) => s.log.push(chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => s.log.push(chunk.toString()));
  s.process = child;
}

/** SIGTERM by PID (BIRD then removes its kernel routes), SIGKILL if it lingers. */
async function stopBird(s: Speaker): Promise<void> {
  const child = s.process;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
  await exited;
  clearTimeout(timer);
}

/** Polls until `check` holds; rejects after `timeoutMs`, a loose upper bound. */
async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const start = Date.now();
  for (;;) {
    if (await check()) return;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await sleep(50);
  }
}

interface KernelRoute {
  dst: string;
  gateway?: string;
  dev?: string;
}

/** Routes BIRD wrote to the kernel of `ns` (`proto bird`, 12), both families. */
function birdRoutes(ns: string): KernelRoute[] {
  return [4, 6].flatMap(
    (family) =>
      JSON.parse(
        must([
          "ip",
          "-n",
          ns,
          "-json",
          `-${family}`,
          "route",
          "show",
          "table",
          "all",
          "proto",
          "bird",
        ]) || "[]",
      ) as KernelRoute[],
  );
}

/** A's exports as another speaker's kernel should hold them: via A's address on the segment. */
function viaA(exports: readonly string[]): Pick<KernelRoute, "dst" | "gateway" | "dev">[] {
  return exports
    .map((prefix) => ({
      dst: prefix.replace(/\/(32|128)$/, ""),
      gateway: prefix.includes(":") ? A.ip[6] : A.ip[4],
      dev: "eth0",
    }))
    .sort(byDestination);
}

function byDestination(a: { dst: string }, b: { dst: string }): number {
  return a.dst < b.dst ? -1 : a.dst > b.dst ? 1 : 0;
}

function routesTo(ns: string, exports: readonly string[]) {
  const wanted = new Set(exports.map((prefix) => prefix.replace(/\/(32|128)$/, "")));
  return birdRoutes(ns)
    .filter((route) => wanted.has(route.dst))
    .map(({ dst, gateway, dev }) => ({ dst, gateway, dev }))
    .sort(byDestination);
}

function birdc(s: Speaker, ...command: string[]): string {
  return must(["birdc", "-s", s.socketPath, ...command]);
}

/** The BGP rows of `birdc show protocols`, with the time each entered its state. */
function bgpRows(s: Speaker): string[] {
  return birdc(s, "show", "protocols")
    .split("\n")
    .filter((line) => / BGP /.test(line));
}

/**
 * The same sessions, none restarted: equal rows except that BIRD prints a
 * session's Since time from a monotonic clock converted at display time, so
 * it may differ by a millisecond between two reads; a restart moves it by far
 * more (the test's steps take tens of milliseconds and more).
 */
function expectSameSessions(after: string[], before: string[]): void {
  const since = /(\d\d):(\d\d):(\d\d)\.(\d{3})/;
  const ms = (row: string) => {
    const [, h, m, sec, milli] = since.exec(row) ?? [];
    return ((Number(h) * 60 + Number(m)) * 60 + Number(sec)) * 1000 + Number(milli);
  };
  expect(after.map((row) => row.replace(since, "SINCE"))).toEqual(
    before.map((row) => row.replace(since, "SINCE")),
  );
  after.forEach((row, i) => expect(Math.abs(ms(row) - ms(before[i] ?? ""))).toBeLessThan(5));
}

const ESTABLISHED_WITHIN_MS = 15_000;
const WITHDRAWN_WITHIN_MS = 5_000;

async function allEstablished(s: Speaker): Promise<boolean> {
  const sessions = await s.bird.sessions().catch((): BgpSession[] => []);
  return sessions.length === 4 && sessions.every((session) => session.info === "Established");
}

describe("BIRD 2 with buoy's configs, two nodes and a router", () => {
  it("apply() without a running BIRD throws birdc's message and writes nothing", async () => {
    const lonely = new LinuxBird(join(dir, "lonely.conf"), join(dir, "lonely.ctl"));
    await expect(lonely.apply(configA)).rejects.toThrow(
      /Unable to connect to server control socket/,
    );
    expect(existsSync(join(dir, "lonely.conf"))).toBe(false);
  });

  it("sessions() reports every session Established, on the nodes and the router", async () => {
    for (const s of SPEAKERS) {
      await until(
        `${s.ns} sessions Established:\n${s.log.join("")}`,
        () => allEstablished(s),
        ESTABLISHED_WITHIN_MS,
      );
    }
    expect(await A.bird.sessions()).toEqual([
      { name: "peer_node_b", state: "up", info: "Established" },
      { name: "peer_node_b_v6", state: "up", info: "Established" },
      { name: "peer_router", state: "up", info: "Established" },
      { name: "peer_router_v6", state: "up", info: "Established" },
    ]);
    expect((await R.bird.sessions()).map((session) => session.name)).toEqual([
      "peer_node_a",
      "peer_node_a_v6",
      "peer_node_b",
      "peer_node_b_v6",
    ]);
  });

  it("apply() of the config BIRD already runs skips writing and birdc", async () => {
    await A.bird.apply(configA);
    const before = statSync(A.configPath).ino;
    await A.bird.apply(configA);
    expect(statSync(A.configPath).ino).toBe(before);
  });

  it("node B's kernel has A's exports via A's address, learned over iBGP", async () => {
    await until("B has A's routes", () => routesTo(B.ns, A_EXPORTS).length === 3, 5000);
    expect(routesTo(B.ns, A_EXPORTS)).toEqual(viaA(A_EXPORTS));
    // iBGP: no AS on the path; the route resolved directly on the segment.
    const learned = birdc(B, "show", "route", "203.0.113.7/32", "all");
    expect(learned).toContain(`via ${A.ip[4]} on eth0`);
    expect(learned).toContain("[peer_node_a ");
    expect(learned).toMatch(/BGP\.as_path: *\n/);
  });

  it("the router's kernel has A's exports via A's address, learned over eBGP", async () => {
    await until("R has A's routes", () => routesTo(R.ns, A_EXPORTS).length === 3, 5000);
    expect(routesTo(R.ns, A_EXPORTS)).toEqual(viaA(A_EXPORTS));
    const learned = birdc(R, "show", "route", "2001:db8:f::7/128", "all");
    expect(learned).toContain(`via ${A.ip[6]} on eth0`);
    expect(learned).toContain(`BGP.as_path: ${NODE_AS}\n`);
  });

  it("node A's kernel gets B's export from BIRD, and none of its own", async () => {
    await until("A has B's route", () => routesTo(A.ns, B_EXPORTS).length === 1, 5000);
    expect(routesTo(A.ns, B_EXPORTS)).toEqual([
      { dst: "10.250.2.0/26", gateway: B.ip[4], dev: "eth0" },
    ]);
    expect(routesTo(A.ns, A_EXPORTS)).toEqual([]);
    // The exports live in BIRD as blackholes only.
    const own = birdc(A, "show", "route", "protocol", "buoy_exports4");
    expect(own).toContain("203.0.113.7/32       blackhole");
    expect(sh(["ip", "-n", A.ns, "route", "show", "table", "all", "203.0.113.7"]).stdout).toBe("");
  });

  it("apply() of a config BIRD cannot parse throws birdc's message and changes nothing", async () => {
    const broken = configA + "protocol bgp {\n";
    const sessionsBefore = bgpRows(A);
    await expect(A.bird.apply(broken)).rejects.toThrow(/a\.conf\.\d+\.tmp:\d+:\d+ syntax error/);
    expect(readFileSync(A.configPath, "utf8")).toBe(configA);
    expectSameSessions(bgpRows(A), sessionsBefore);
  });

  it("a withdrawn export leaves B's and the router's kernels within seconds", async () => {
    const remaining = A_EXPORTS.filter((prefix) => prefix !== "203.0.113.7/32");
    const sessionsBefore = bgpRows(A);
    await A.bird.apply(nodeConfig(A, B, "node-b", remaining));
    const gone = (s: Speaker) => () => routesTo(s.ns, ["203.0.113.7/32"]).length === 0;
    await until("203.0.113.7 gone from B", gone(B), WITHDRAWN_WITHIN_MS);
    await until("203.0.113.7 gone from R", gone(R), WITHDRAWN_WITHIN_MS);
    expect(routesTo(B.ns, A_EXPORTS)).toEqual(viaA(remaining));
    expect(routesTo(R.ns, A_EXPORTS)).toEqual(viaA(remaining));
    // Changing the exports reconfigures the static protocol, and no session restarts.
    expectSameSessions(bgpRows(A), sessionsBefore);
  });

  it("a config planned from records that give one neighbor name twice, or an AS BIRD refuses, is one BIRD parses", () => {
    // Node "peer" at .3 and BGPPeer "198.51.100.3" are both neighbor
    // peer_198.51.100.3; BGPPeer "zero" has AS 0. Before issue 13 the
    // renderer threw on the first and BIRD refused the second.
    const plan = planRouting({
      node: "node-a",
      mode: "bgp",
      bindings: [],
      nodes: [
        { name: "node-a", addresses: [A.ip[4]] },
        { name: "peer", addresses: ["198.51.100.3"] },
      ],
      blocks: [],
      hosted: [],
      pools: [],
      peers: [
        { name: "198.51.100.3", peerIP: R.ip[4], asNumber: ROUTER_AS },
        { name: "zero", peerIP: "198.51.100.9", asNumber: 0 },
      ],
    });
    expect(plan.refused.map((refusal) => refusal.reason)).toEqual([
      "duplicate BGP neighbor name",
      "invalid AS number",
    ]);
    const path = join(dir, "planned.conf");
    writeFileSync(path, renderBirdNodeConfig(plan.bird as NonNullable<typeof plan.bird>));
    const parsed = sh(["bird", "-p", "-c", path]);
    expect(parsed.status, parsed.stderr + parsed.stdout).toBe(0);
  });

  it("a node gone silent (BIRD frozen, no goodbye) is dropped by BFD: its routes leave within seconds, not the 9 s hold time", async () => {
    await until(
      "BFD up with A on B and R",
      () =>
        [B, R].every((s) => /198\.51\.100\.1 +eth0 +Up/.test(birdc(s, "show", "bfd", "sessions"))),
      10_000,
    );
    const child = A.process;
    expect(child?.pid).toBeDefined();
    const began = Date.now();
    child?.kill("SIGSTOP");
    try {
      const gone = (s: Speaker) => () => routesTo(s.ns, ["10.250.1.0/26"]).length === 0;
      // Hold time 9 s; BFD 5 x 200 ms: well before the hold time (a loose bound).
      await until("A's block gone from B", gone(B), 4000);
      await until("A's block gone from R", gone(R), 4000);
      console.log(`BFD: a frozen node's routes left its peers after ${Date.now() - began} ms`);
      expect(birdc(R, "show", "protocols", "peer_node_a")).toContain("BFD session down");
    } finally {
      child?.kill("SIGCONT");
    }
    await until(
      "A back",
      () => routesTo(R.ns, ["10.250.1.0/26"]).length === 1,
      ESTABLISHED_WITHIN_MS,
    );
  });
});
