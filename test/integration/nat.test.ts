// Floating-IP NAT on the real kernel: two pods made by the real CNI plugin
// (pod A holds 10.96.0.1, 10.96.0.2 and fd00:96::1), a client routed to the
// node, buoy's nftables tables planned from etcd's records and applied with
// the real nft. Every IP protocol reaches pod A through its floating IPs, from
// the client (source preserved), from pod A itself (hairpin), from pod B and
// from the node; element changes take effect at once; the table reads back
// exactly as applied.
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { planNat, type NatBinding, type NatPlan } from "../../src/dataplane/nat-plan.js";
import { renderNftElementChanges, renderNftTable } from "../../src/dataplane/nft-script.js";
import { LinuxNft } from "../../src/dataplane/shell/nft.js";
import { BUOY_ROUTE_PROTOCOL } from "../../src/dataplane/node-routes.js";
import type { Family } from "../../src/net/address.js";
import {
  ROOT,
  addClientNetns,
  addNetns,
  createPool,
  deleteNetns,
  eventually,
  must,
  runPlugin,
  runPrefix,
  sh,
  startEtcd,
  startIn,
  type Etcd,
} from "../support/harness.js";

const prefix = runPrefix();
const NODE = "node-1";
const PYTHON = "/usr/bin/python3";
// The lab's probe: a responder in each pod, one-shot senders (JSON answers).
const TRAFFIC = join(ROOT, "src/lab/lab-probe.py");
const CLIENT = { ns: `${prefix}-client`, ip: { 4: "192.168.124.2", 6: "fd00:124::2" } };
const NODE_IP = { 4: "192.168.124.1", 6: "fd00:124::1" };
const FLOATING = { 4: "10.96.0.1", 6: "fd00:96::1" } as const;
const FAMILIES: Family[] = [4, 6];

const nft = new LinuxNft();
const made: string[] = [];
const stoppers: (() => void)[] = [];
let etcd: Etcd;
let plan: NatPlan;

interface Pod {
  ns: string;
  containerID: string;
  ip: Record<Family, string>;
}
let podA: Pod;
let podB: Pod;
let podC: Pod;

beforeAll(async () => {
  etcd = await startEtcd();
  await createPool(etcd.store, "pods", { cidr: "10.244.0.0/16" });
  await createPool(etcd.store, "pods6", { cidr: "fd00:244::/64" });
  await createPool(etcd.store, "floating", { cidr: "10.96.0.0/24", disabled: true });
  await createPool(etcd.store, "floating6", { cidr: "fd00:96::/120", disabled: true });
  made.push(CLIENT.ns);
  addClientNetns(CLIENT.ns, {
    nodeIfname: "fipclient0",
    node: [`${NODE_IP[4]}/24`, `${NODE_IP[6]}/64`],
    client: [`${CLIENT.ip[4]}/24`, `${CLIENT.ip[6]}/64`],
  });
  podA = await addPod("a", '["10.96.0.1","10.96.0.2","fd00:96::1"]');
  podB = await addPod("b");
  // Opted in to egress: its own connections leave from 10.96.0.3 and fd00:96::3.
  podC = await addPod("c", '["10.96.0.3","fd00:96::3"]', { "buoy.dev/floating-ip-egress": "true" });
  await Promise.all([podA, podB, podC].map((pod) => startResponder(pod.ns)));

  const endpoints = (await etcd.store.listEndpoints(NODE)).map((entry) => entry.value);
  const claims = (await etcd.store.listClaims()).map((entry) => entry.value);
  plan = planNat(endpoints, NODE, claims, await etcd.store.listPools());
  for (const family of FAMILIES) await nft.apply(renderNftTable(plan, family));
  for (const binding of plan.bindings) addRoute(binding);
});

afterAll(async () => {
  for (const stop of stoppers) stop();
  for (const family of ["ip", "ip6"]) sh(["nft", "delete", "table", family, "buoy"]);
  for (const ns of made) deleteNetns(ns);
  await etcd?.stop();
});

async function addPod(
  name: string,
  floatingIPs?: string,
  annotations: Record<string, string> = {},
): Promise<Pod> {
  const ns = `${prefix}-${name}`;
  made.push(ns);
  const path = addNetns(ns);
  const containerID = `ctr-${name}-${Math.random().toString(16).slice(2, 10)}`;
  const added = await runPlugin({
    command: "ADD",
    conf: {
      cniVersion: "1.0.0",
      name: "k8s-pod-network",
      type: "calico",
      datastore_type: "etcdv3",
      etcd_endpoints: etcd.endpoint,
      nodename: NODE,
      log_file_path: `/tmp/${prefix}-cni.log`,
      ipam: { type: "calico-ipam", assign_ipv4: "true", assign_ipv6: "true" },
      feature_control: { floating_ips: true },
      capabilities: { "io.kubernetes.cri.pod-annotations": true },
      ...(floatingIPs === undefined
        ? {}
        : {
            runtimeConfig: {
              "io.kubernetes.cri.pod-annotations": {
                "cni.projectcalico.org/floatingIPs": floatingIPs,
                ...annotations,
              },
            },
          }),
    },
    containerID,
    netns: path,
    pod: { namespace: "shop", name },
  });
  if (added.exitCode !== 0) throw new Error(`ADD ${name} failed: ${added.raw} ${added.stderr}`);
  const ips = (added.output.ips as { address: string }[]).map((ip) => ip.address.split("/")[0]!);
  const ip4 = ips.find((ip) => !ip.includes(":"));
  const ip6 = ips.find((ip) => ip.includes(":"));
  if (!ip4 || !ip6) throw new Error(`pod ${name} is not dual-stack: ${ips.join(", ")}`);
  return { ns, containerID, ip: { 4: ip4, 6: ip6 } };
}

/** Starts the probe's responder in a namespace; resolves to its stopper. */
async function startResponder(ns: string): Promise<() => void> {
  const ready = `/tmp/${ns}-responder-ready`;
  rmSync(ready, { force: true });
  const responder = startIn(ns, [PYTHON, TRAFFIC, "serve", ns, ready, seenLog()]);
  stoppers.push(() => responder.stop());
  if (!(await eventually(() => existsSync(ready)))) throw new Error(`no responder in ${ns}`);
  return () => responder.stop();
}

function addRoute(binding: NatBinding): void {
  const length = binding.family === 4 ? 32 : 128;
  const route = [`${binding.floating}/${length}`, "dev", binding.hostIfname];
  must(["ip", "route", "replace", ...route, "proto", String(BUOY_ROUTE_PROTOCOL)]);
}

/** Runs a command in a namespace, or in the node's (this one) when `ns` is undefined. */
function inNs(ns: string | undefined, argv: string[]): string[] {
  return ns === undefined ? argv : ["ip", "netns", "exec", ns, ...argv];
}

interface Answer {
  ok: boolean;
  /** Where the answer came from, as the sender saw it. */
  source: string;
  /** Where the request came from, as the pod saw it. */
  peer: string;
  /** Where the request was addressed, as the pod saw it. */
  local: string;
  output: string;
}

function send(from: string | undefined, mode: string, dest: string): Answer {
  const result = sh(inNs(from, [PYTHON, TRAFFIC, "send", mode, dest, "2", seenLog()]));
  let parsed: { ok?: boolean; replyFrom?: string; answer?: { peer?: string; local?: string } };
  try {
    parsed = JSON.parse(result.stdout.trim().split("\n").at(-1) ?? "{}");
  } catch {
    parsed = {};
  }
  return {
    ok: result.status === 0 && parsed.ok === true,
    source: parsed.replyFrom ?? "",
    peer: parsed.answer?.peer ?? "",
    local: parsed.answer?.local ?? "",
    output: result.stdout + result.stderr,
  };
}

/** Where the responders note ICMP echo requests (the probe's shared log). */
function seenLog(): string {
  return `/tmp/${prefix}-probe-seen.log`;
}

/** One echo request; the output names the address the reply came from. */
function echo(from: string | undefined, dest: string, deadlineSeconds = 3): string {
  const result = sh(inNs(from, ["ping", "-n", "-c", "1", "-w", String(deadlineSeconds), dest]));
  return result.status === 0 ? result.stdout : `no reply: ${result.stdout}${result.stderr}`;
}

function withoutInterface(bindings: readonly NatBinding[], family: Family) {
  return bindings
    .filter((binding) => binding.family === family)
    .map(({ family, floating, pod, egress }) => ({
      family,
      floating,
      pod,
      ...(egress ? { egress } : {}),
    }));
}

describe("the plan from etcd", () => {
  it("planNat() binds pod A's three floating IPs and pod C's two, C's for egress, and refuses nothing", () => {
    const hostIfname = plan.bindings[0]?.hostIfname ?? "";
    const cIfname = plan.bindings.find((b) => b.pod === podC.ip[4])?.hostIfname ?? "";
    expect(hostIfname).toMatch(/^cali[0-9a-f]{11}$/);
    expect(plan).toEqual({
      bindings: [
        { family: 4, floating: "10.96.0.1", pod: podA.ip[4], hostIfname },
        { family: 4, floating: "10.96.0.2", pod: podA.ip[4], hostIfname },
        { family: 4, floating: "10.96.0.3", pod: podC.ip[4], hostIfname: cIfname, egress: true },
        { family: 6, floating: "fd00:96::1", pod: podA.ip[6], hostIfname },
        { family: 6, floating: "fd00:96::3", pod: podC.ip[6], hostIfname: cIfname, egress: true },
      ],
      refused: [],
    });
  });
});

for (const family of FAMILIES) {
  const egress = family === 4 ? "10.96.0.3" : "fd00:96::3";
  describe(`IPv${family}: egress from the floating IP (opt-in)`, () => {
    // A responder in the client only while these run: its raw sockets would
    // take the answers meant for the client's own probes below.
    let stopClient: () => void = () => {};
    beforeAll(async () => {
      stopClient = await startResponder(CLIENT.ns);
    });
    afterAll(() => {
      stopClient();
      // Raw protocols have no ports: pod A's outbound entries (pod A -> client)
      // would take the answers of the client's probes to pod A's floating IP.
      must(["conntrack", "-F"]);
    });
    for (const mode of ["icmp", "tcp", "udp", "raw253", "raw47"]) {
      it(`${mode} from pod C reaches the client from ${egress}; pod A, not opted in, from its own address`, () => {
        const fromC = send(podC.ns, mode, CLIENT.ip[family]);
        expect(fromC.ok, fromC.output).toBe(true);
        expect(fromC.peer, fromC.output).toBe(egress);
        expect(fromC.source, fromC.output).toBe(CLIENT.ip[family]);
        const fromA = send(podA.ns, mode, CLIENT.ip[family]);
        expect(fromA.ok, fromA.output).toBe(true);
        expect(fromA.peer, fromA.output).toBe(podA.ip[family]);
      });
    }
    it("pod C still reaches its own floating IP by hairpin, and pod B reaches C's", () => {
      const own = send(podC.ns, "tcp", egress);
      expect(own.ok, own.output).toBe(true);
      expect(own.peer).toBe(egress);
      const other = send(podB.ns, "tcp", egress);
      expect(other.ok, other.output).toBe(true);
      expect(other.peer).toBe(podB.ip[family]);
      expect(other.local).toBe(podC.ip[family]);
    });
  });
}

for (const family of FAMILIES) {
  const fip = FLOATING[family];
  describe(`IPv${family}: from the client to ${fip}`, () => {
    it("ICMP echo is answered from the floating IP", () => {
      expect(echo(CLIENT.ns, fip)).toContain(`bytes from ${fip}: icmp_seq=1`);
    });
    for (const mode of ["tcp", "udp", "raw253", "raw47"]) {
      it(`${mode} reaches pod A with the client's own source address and is answered from the floating IP`, () => {
        const answer = send(CLIENT.ns, mode, fip);
        expect(answer.ok, answer.output).toBe(true);
        expect(answer.source, answer.output).toBe(fip);
        expect(answer.peer, answer.output).toBe(CLIENT.ip[family]);
        if (mode !== "udp") expect(answer.local, answer.output).toBe(podA.ip[family]);
      });
    }
  });

  describe(`IPv${family}: hairpin and local traffic to ${fip}`, () => {
    const own = family === 4 ? ["10.96.0.1", "10.96.0.2"] : [fip];
    for (const floating of own) {
      it(`pod A reaches its own ${floating} by ICMP and TCP, source-translated to it`, () => {
        expect(echo(podA.ns, floating)).toContain(`bytes from ${floating}: icmp_seq=1`);
        const answer = send(podA.ns, "tcp", floating);
        expect(answer.ok, answer.output).toBe(true);
        expect(answer.source).toBe(floating);
        expect(answer.peer).toBe(floating);
        expect(answer.local).toBe(podA.ip[family]);
      });
    }
    it("pod B reaches it by ICMP and TCP with its own address", () => {
      expect(echo(podB.ns, fip)).toContain(`bytes from ${fip}: icmp_seq=1`);
      const answer = send(podB.ns, "tcp", fip);
      expect(answer.ok, answer.output).toBe(true);
      expect(answer.source).toBe(fip);
      expect(answer.peer).toBe(podB.ip[family]);
    });
    it("the node itself reaches it by ICMP, TCP and UDP", () => {
      expect(echo(undefined, fip)).toContain(`bytes from ${fip}: icmp_seq=1`);
      for (const mode of ["tcp", "udp"]) {
        const answer = send(undefined, mode, fip);
        expect(answer.ok, answer.output).toBe(true);
        expect(answer.source).toBe(fip);
        expect(answer.peer).toBe(NODE_IP[family]);
      }
    });
  });

  describe(`IPv${family}: element changes and reading the table back`, () => {
    const binding = () => plan.bindings.find((b) => b.floating === fip) as NatBinding;

    it("readTable() returns exactly the applied bindings, also after applying twice", async () => {
      const want = {
        bindings: withoutInterface(plan.bindings, family),
        intact: true,
        natOutgoing: { sources: [], pools: [] },
      };
      expect(await nft.readTable(family)).toEqual(want);
      await nft.apply(renderNftTable(plan, family));
      await nft.apply(renderNftElementChanges(family, [binding()], []));
      expect(await nft.readTable(family)).toEqual(want);
    });

    it("removing the binding stops traffic to the floating IP; adding it back restores it", async () => {
      await nft.apply(renderNftElementChanges(family, [], [binding()]));
      // What the agent does after withdrawing: forget the translated connections.
      sh(["conntrack", "-D", "-f", family === 4 ? "ipv4" : "ipv6", "-d", fip]);
      expect((await nft.readTable(family))?.bindings.map((b) => b.floating)).not.toContain(fip);
      expect(echo(CLIENT.ns, fip, 1)).toMatch(/^no reply/);
      expect(send(CLIENT.ns, "tcp", fip).ok).toBe(false);
      expect(send(CLIENT.ns, "raw253", fip).ok).toBe(false);

      await nft.apply(renderNftElementChanges(family, [binding()], []));
      expect(echo(CLIENT.ns, fip)).toContain(`bytes from ${fip}: icmp_seq=1`);
      const answer = send(CLIENT.ns, "tcp", fip);
      expect(answer.ok, answer.output).toBe(true);
      expect(answer.peer).toBe(CLIENT.ip[family]);
      expect(await nft.readTable(family)).toEqual({
        bindings: withoutInterface(plan.bindings, family),
        intact: true,
        natOutgoing: { sources: [], pools: [] },
      });
    });

    it("readTable() is undefined where buoy has no table", async () => {
      const bare = new LinuxNft(["ip", "netns", "exec", CLIENT.ns, "nft"]);
      expect(await bare.readTable(family)).toBeUndefined();
    });
  });
}
