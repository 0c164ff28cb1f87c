// Cluster-wide reachability on a 2-node dual-stack lab, in both routing
// modes: the connectivity matrix to a floating IP, pod to pod across nodes,
// natOutgoing, who announces, moves across nodes under a 100 Hz ping, a
// floating IP taken over by a pod on another node, the claim collector after
// a node dies, and two nodes racing for one floating IP.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { labDown } from "../../src/lab/lab-down.js";
import { labUp } from "../../src/lab/lab-up.js";
import type { Lab, LabRouting } from "../../src/lab/lab.js";
import type { ProbeProtocol } from "../../src/lab/probe-result.js";

const V4 = "203.0.113.20";
const V6 = "2001:db8:f100::20";
const PROTOCOLS: ProbeProtocol[] = ["icmp", "tcp", "udp", "raw253"];

function runBase(): string {
  const run = process.env.BUOY_RUN_PREFIX;
  if (!run) throw new Error("BUOY_RUN_PREFIX is not set: run through npm run test:e2e");
  return `bx${run.replace(/[^a-z0-9]/g, "").slice(-6)}`;
}

async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean, ms = 15_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const modes: LabRouting[] = ["direct", "bgp"];

describe.each(modes)("routing %s, dual stack", (routing) => {
  let lab: Lab;
  const prefix = `${runBase()}${routing[0]}`;

  beforeAll(async () => {
    lab = await labUp({ prefix, routing, ipv6: true, claimGcGraceSeconds: 3, statusTtlSeconds: 3 });
    await lab.addPod(1, "web", { floatingIps: [V4, V6] });
    await lab.addPod(1, "near");
    await lab.addPod(2, "far");
    await lab.serve("ext", "ext", "ext");
    // Programmed and, in BGP mode, learned by the router.
    for (const ip of [V4, V6]) {
      const first = await eventually(
        () => lab.probe("ext", ip, "icmp", { timeoutMs: 500 }),
        (result) => result.ok,
      );
      expect(first.ok, `${ip} from the external client: ${first.error}`).toBe(true);
    }
  }, 120_000);

  afterAll(async () => {
    await labDown(prefix).catch(() => {});
  });

  const ownAddress = (pod: string, family: 4 | 6) =>
    lab.pod(pod).ips.find((ip) => ip.includes(":") === (family === 6));

  for (const family of [4, 6] as const) {
    const floating = family === 4 ? V4 : V6;
    it(`IPv${family}: every protocol reaches ${floating} from outside, another node, this node, the pod itself and the node`, async () => {
      const sources: [string, string | undefined][] = [
        ["ext", family === 4 ? lab.topology.external.ipv4 : lab.topology.external.ipv6],
        ["far", ownAddress("far", family)],
        ["near", ownAddress("near", family)],
        ["web", floating],
        ["node-1", undefined],
      ];
      const failures: string[] = [];
      for (const [from, seen] of sources) {
        for (const protocol of PROTOCOLS) {
          const result = await lab.probe(from, floating, protocol);
          const cell = `${protocol} from ${from}`;
          if (!result.ok) failures.push(`${cell}: ${result.error}`);
          else if (result.answeredBy !== "web")
            failures.push(`${cell}: answered by ${result.answeredBy}`);
          else if (result.replyFrom !== floating)
            failures.push(`${cell}: reply from ${result.replyFrom}`);
          // The pod sees the real source: never masqueraded on the way in.
          else if (seen !== undefined && result.seenSource !== seen)
            failures.push(`${cell}: pod saw ${result.seenSource}, expected ${seen}`);
        }
      }
      expect(failures).toEqual([]);
    });

    it(`IPv${family}: pods reach each other across nodes with their own addresses`, async () => {
      for (const protocol of ["icmp", "tcp", "udp"] as const) {
        for (const [from, to] of [
          ["far", "near"],
          ["near", "far"],
        ] as const) {
          const target = ownAddress(to, family)!;
          const result = await lab.probe(from, target, protocol);
          expect(result.ok, `${protocol} ${from} -> ${to} (${target}): ${result.error}`).toBe(true);
          expect(result.answeredBy).toBe(to);
          expect(result.seenSource).toBe(ownAddress(from, family));
        }
      }
    });
  }

  it("natOutgoing masquerades a pod's traffic leaving every pool; off, the pod's own address arrives", async () => {
    const masqueraded = await lab.probe("far", lab.topology.external.ipv4, "tcp");
    expect(masqueraded.ok, masqueraded.error).toBe(true);
    expect(masqueraded.seenSource).toBe(lab.node(2).ipv4);
    // The v6 pod pool has natOutgoing off: the pod's own address, routed back.
    const own6 = await lab.probe("far", lab.topology.external.ipv6, "tcp");
    expect(own6.ok, own6.error).toBe(true);
    expect(own6.seenSource).toBe(ownAddress("far", 6));

    const pool = lab.topology.pools.find((candidate) => candidate.cidr === "10.244.0.0/16")!;
    const manifest = (natOutgoing: boolean) =>
      JSON.stringify({
        apiVersion: "buoy.dev/v1",
        kind: "IPPool",
        metadata: { name: pool.name },
        spec: { cidr: pool.cidr, blockSize: pool.blockSize, natOutgoing },
      });
    await lab.buoy(["apply", "-f", "-"], manifest(false));
    try {
      const own = await eventually(
        () => lab.probe("far", lab.topology.external.ipv4, "tcp"),
        (result) => result.seenSource === ownAddress("far", 4),
      );
      expect(own.seenSource).toBe(ownAddress("far", 4));
    } finally {
      await lab.buoy(["apply", "-f", "-"], manifest(true));
    }
  });

  it("a pod opted in to egress reaches outside and another node's pod from its floating IP, natOutgoing notwithstanding", async () => {
    const floating = { 4: "203.0.113.21", 6: "2001:db8:f100::21" } as const;
    await lab.addPod(1, "egress", { floatingIps: [floating[4], floating[6]], egress: true });
    try {
      for (const family of [4, 6] as const) {
        const targets = [
          { to: family === 4 ? lab.topology.external.ipv4 : lab.topology.external.ipv6 },
          { to: ownAddress("far", family) as string },
        ];
        for (const { to } of targets) {
          for (const protocol of PROTOCOLS) {
            const result = await eventually(
              () => lab.probe("egress", to, protocol, { timeoutMs: 1000 }),
              (probe) => probe.seenSource === floating[family],
            );
            expect(result.ok, `${protocol} to ${to}: ${result.error}`).toBe(true);
            expect(result.seenSource, `${protocol} to ${to}`).toBe(floating[family]);
          }
        }
      }
      // Not opted in: the pod next to it still leaves as before (masqueraded to outside).
      const near = await lab.probe("near", lab.topology.external.ipv4, "tcp");
      expect(near.seenSource).toBe(lab.node(1).ipv4);
    } finally {
      await lab.deletePod("egress");
    }
  });

  it("only the hosting node routes the floating IP: one route, via node-1", async () => {
    const { stdout } = await lab.exec("ext", ["ip", "-j", "route", "show", `${V4}/32`]);
    const routes = JSON.parse(stdout) as { gateway?: string; nexthops?: unknown[] }[];
    if (routing === "bgp") {
      expect(routes).toHaveLength(1);
      expect(routes[0]?.gateway).toBe(lab.node(1).ipv4);
      expect(routes[0]?.nexthops).toBeUndefined();
    } else {
      // The router sends the pools to any node (ECMP); node-2 forwards to node-1.
      const viaNode2 = await lab.exec("node-2", ["ip", "-j", "route", "show", `${V4}/32`]);
      const node2Routes = JSON.parse(viaNode2.stdout) as { gateway?: string }[];
      expect(node2Routes.map((route) => route.gateway)).toEqual([lab.node(1).ipv4]);
    }
    const onNode2 = await lab.exec("node-2", ["nft", "list", "map", "ip", "buoy", "fip_dnat"]);
    expect(onNode2.stdout).not.toContain(V4);
  });

  it("a move to a pod on node-2 under a 100 Hz ping: traffic resumes at the new pod", async () => {
    const pinging = lab.ping("ext", V4, { durationMs: 3000, intervalMs: 10 });
    await new Promise((resolve) => setTimeout(resolve, 800));
    await lab.buoy(["floatingip", "move", V4, "--to", "default/far"]);
    const report = await pinging;
    console.log(
      `${routing}: move interrupted the ping for ${report.longestGapMs} ms, ${report.lost} lost`,
    );
    expect(report.received).toBeGreaterThan(0);
    expect(report.longestGapMs).toBeLessThan(5000);
    const after = await lab.probe("ext", V4, "tcp");
    expect(after.ok, after.error).toBe(true);
    expect(after.answeredBy).toBe("far");
    await lab.buoy(["floatingip", "move", V4, "--to", "default/web"]);
    const back = await eventually(
      () => lab.probe("ext", V4, "tcp", { timeoutMs: 500 }),
      (result) => result.answeredBy === "web",
    );
    expect(back.answeredBy).toBe("web");
  });

  it("a pod deleted on node-1 frees its floating IP for a new pod on node-2, with no cleanup", async () => {
    const ip = "203.0.113.21";
    await lab.addPod(1, "old", { floatingIps: [ip] });
    await eventually(
      () => lab.probe("ext", ip, "tcp", { timeoutMs: 500 }),
      (result) => result.answeredBy === "old",
    );
    await lab.deletePod("old");
    await lab.addPod(2, "new", { floatingIps: [ip] });
    const answer = await eventually(
      () => lab.probe("ext", ip, "tcp", { timeoutMs: 500 }),
      (result) => result.answeredBy === "new",
    );
    expect(answer.answeredBy).toBe("new");
    await lab.deletePod("new");
  });

  it("two pods on different nodes asking for one floating IP at once: one wins, the other is refused naming it", async () => {
    const ip = "203.0.113.22";
    const outcomes = await Promise.allSettled([
      lab.addPod(1, "race1", { floatingIps: [ip] }),
      lab.addPod(2, "race2", { floatingIps: [ip] }),
    ]);
    const won = outcomes.filter((outcome) => outcome.status === "fulfilled");
    const lost = outcomes.filter((outcome) => outcome.status === "rejected");
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    const winner = (won[0] as PromiseFulfilledResult<{ name: string }>).value.name;
    expect(String((lost[0] as PromiseRejectedResult).reason)).toContain(
      `floating IP ${ip} is already held by pod default/${winner}`,
    );
    const answer = await eventually(
      () => lab.probe("ext", ip, "tcp", { timeoutMs: 500 }),
      (result) => result.answeredBy === winner,
    );
    expect(answer.answeredBy).toBe(winner);
    await lab.deletePod(winner);
  });

  // Last: it kills node-1's agent (and BIRD).
  it("node-1's agent and BIRD killed and its pod's endpoint removed: the collector frees the claim and node-2 takes the IP", async () => {
    const ip = "203.0.113.23";
    const doomed = await lab.addPod(1, "doomed", { floatingIps: [ip] });
    await eventually(
      () => lab.probe("ext", ip, "tcp", { timeoutMs: 500 }),
      (result) => result.answeredBy === "doomed",
    );
    for (const name of ["agent-node-1", "bird-node-1"]) {
      const started = lab.findProcess(name);
      if (started) process.kill(started.pid, "SIGKILL");
    }
    // The endpoint goes without a DEL (the node is gone).
    const key = `/buoy/v1/workloadendpoints/node-1/${doomed.containerID}/eth0`;
    await lab.exec("fab", ["etcdctl", "--endpoints", lab.topology.etcd.endpoint, "del", key]);
    const claims = await eventually(
      () => lab.buoy(["get", "floatingips", "-o", "json"]),
      (text) => !text.includes(ip),
      20_000,
    );
    expect(claims).not.toContain(ip);
    await lab.addPod(2, "heir", { floatingIps: [ip] });
    // BGP: node-1's BIRD is gone, so the router learns the IP from node-2
    // alone. Direct: the router's static ECMP route still sends some flows
    // to node-1, whose kernel keeps its dead agent's binding (an upstream
    // must drop a dead node itself), so ask from node-2's side.
    const from = routing === "bgp" ? "ext" : "far";
    const answer = await eventually(
      () => lab.probe(from, ip, "tcp", { timeoutMs: 500 }),
      (result) => result.answeredBy === "heir",
      20_000,
    );
    expect(answer.answeredBy).toBe("heir");
  });
});
