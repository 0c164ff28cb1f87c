// The VXLAN overlay on the real kernel. LinuxTunnels passes the Tunnels
// conformance suite; then two nodes in different subnets, with only a router
// between them (no BGP, no shared L2 segment), are given what planRouting()
// plans in vxlan mode: node-1 (this namespace) through LinuxTunnels and
// LinuxRoutes, node-2 (its own namespace) through the same renderers' scripts.
// Pods on the two nodes reach each other in both families, and a floating IP
// hosted on node-2 is reached from a client the router sends to node-1:
// node-1 forwards it through the tunnel, the source address kept. A packet
// that fills the devices' MTU crosses without being fragmented.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LinuxTunnels } from "../../src/dataplane/shell/linux-vxlan.js";
import { LinuxRoutes } from "../../src/dataplane/shell/linux-routes.js";
import {
  planRouting,
  type RoutingInput,
  type RoutingPlan,
} from "../../src/dataplane/routing-plan.js";
import { renderRouteChanges } from "../../src/dataplane/node-routes.js";
import {
  NO_VXLAN,
  NO_VXLAN_KERNEL,
  VXLAN_DEVICE,
  renderVxlanChanges,
} from "../../src/dataplane/vxlan.js";
import type { IpPool, NodeRecord } from "../../src/model/records.js";
import { tunnelsConformance } from "../support/tunnels-conformance.js";
import {
  ROOT,
  addNetns,
  deleteNetns,
  eventually,
  must,
  runPrefix,
  sh,
  startIn,
} from "../support/harness.js";

const prefix = runPrefix();
const tag = prefix.replace(/[^a-z0-9]/g, "").slice(-6);
const NS = { router: `${prefix}-vxr`, node2: `${prefix}-vx2`, client: `${prefix}-vxc` };
const POD = { 1: `${prefix}-vxp1`, 2: `${prefix}-vxp2` } as const;
const made = [NS.router, NS.node2, NS.client, POD[1], POD[2]];
const UPLINK = `vx${tag}u`;
const SPARE = `vx${tag}s`;
const NODES: NodeRecord[] = [
  { name: "node-1", addresses: ["192.168.211.11", "fd00:211::11"] },
  { name: "node-2", addresses: ["192.168.212.12", "fd00:212::12"] },
];
const POD_IP = {
  1: { 4: "10.244.1.2", 6: "fd00:244::1:2" },
  2: { 4: "10.244.2.2", 6: "fd00:244::2:2" },
} as const;
const FLOATING = "203.0.113.20";
const CLIENT = "192.168.213.2";
const pool = (name: string, cidr: string): IpPool => ({
  name,
  cidr,
  blockSize: cidr.includes(":") ? 112 : 24,
  disabled: false,
  nodeSelector: "all()",
  natOutgoing: false,
  disableBGPExport: false,
});

const PYTHON = "/usr/bin/python3";
const PROBE = join(ROOT, "src/lab/lab-probe.py");

const tunnels = new LinuxTunnels();
const routes = new LinuxRoutes();

/** One side of a veth pair in each namespace (`undefined`: this one), addresses on both ends. */
function link(a: string | undefined, aName: string, b: string, bName: string): void {
  must([
    "ip",
    ...(a ? ["-n", a] : []),
    "link",
    "add",
    aName,
    "type",
    "veth",
    "peer",
    "name",
    bName,
    "netns",
    b,
  ]);
}

function inNs(ns: string | undefined, lines: string[]): void {
  must(["ip", ...(ns ? ["-n", ns] : []), "-batch", "-"], lines.join("\n") + "\n");
}

function ping(from: string, to: string, extra: string[] = [], seconds = 3): boolean {
  const family = to.includes(":") ? "-6" : "-4";
  return (
    sh([
      "ip",
      "netns",
      "exec",
      from,
      "ping",
      family,
      "-n",
      "-c",
      "1",
      "-w",
      String(seconds),
      ...extra,
      to,
    ]).status === 0
  );
}

describe("the VXLAN overlay on the kernel", () => {
  beforeAll(() => {
    // This namespace's own addresses for the conformance suite's devices.
    must(["ip", "link", "add", UPLINK, "type", "veth", "peer", "name", SPARE]);
    must(["sysctl", "-qw", `net.ipv6.conf.${UPLINK}.accept_dad=0`]);
    inNs(undefined, [
      `address add 192.168.211.11/24 dev ${UPLINK}`,
      `address add 192.168.211.111/24 dev ${UPLINK}`,
      `address add fd00:211::11/64 dev ${UPLINK} nodad`,
      `link set ${UPLINK} up`,
    ]);
  });

  afterAll(async () => {
    // The next suite in this namespace finds none of this one's routes or devices.
    await routes.apply([], await routes.read()).catch(() => []);
    await tunnels.apply(NO_VXLAN, await tunnels.read()).catch(() => []);
    sh(["ip", "link", "del", UPLINK]);
    sh(["ip", "link", "del", `vx${tag}p`]);
    for (const ns of made) deleteNetns(ns);
  });

  tunnelsConformance("LinuxTunnels (the kernel)", () => ({
    tunnels,
    local: { 4: "192.168.211.11", 6: "fd00:211::11" },
    otherLocal4: "192.168.211.111",
    remove: async (kind, family, address) => {
      const dev = VXLAN_DEVICE[family];
      if (kind === "neighbours") must(["ip", "neigh", "del", address, "dev", dev]);
      else {
        const held = (await tunnels.read()).forwarding.find((entry) => entry.address === address);
        must(["bridge", "fdb", "del", held?.mac ?? "", "dev", dev, "dst", address, "self"]);
      }
    },
  }));

  describe("two nodes in different subnets behind a router", () => {
    const plans: Partial<Record<1 | 2, RoutingPlan>> = {};

    beforeAll(async () => {
      for (const ns of made) addNetns(ns);
      const router = ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"];
      const noDad = ["net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"];
      must(["ip", "netns", "exec", NS.router, "sysctl", "-qw", ...router, ...noDad]);
      must(["ip", "netns", "exec", NS.node2, "sysctl", "-qw", ...router, ...noDad]);
      for (const ns of [NS.client, POD[1], POD[2]])
        must(["ip", "netns", "exec", ns, "sysctl", "-qw", ...noDad]);
      // node-1's uplink is this namespace's, moved to the router's subnet 211.
      must(["ip", "link", "set", SPARE, "netns", NS.router]);
      inNs(NS.router, [
        `address add 192.168.211.1/24 dev ${SPARE}`,
        `address add fd00:211::1/64 dev ${SPARE} nodad`,
        `link set ${SPARE} up`,
      ]);
      must(["ip", "-4", "route", "replace", "default", "via", "192.168.211.1"]);
      must(["ip", "-6", "route", "replace", "default", "via", "fd00:211::1"]);
      link(NS.router, "r2", NS.node2, "eth0");
      inNs(NS.router, [
        "address add 192.168.212.1/24 dev r2",
        "address add fd00:212::1/64 dev r2 nodad",
        "link set r2 up",
      ]);
      inNs(NS.node2, [
        "address add 192.168.212.12/24 dev eth0",
        "address add fd00:212::12/64 dev eth0 nodad",
        "link set eth0 up",
        "route add default via 192.168.212.1",
        "route add default via fd00:212::1",
      ]);
      // The client's router sends the floating IP to node-1, which does not host it.
      link(NS.router, "rc", NS.client, "eth0");
      inNs(NS.router, [
        "address add 192.168.213.1/24 dev rc",
        "link set rc up",
        `route add ${FLOATING}/32 via 192.168.211.11`,
      ]);
      inNs(NS.client, [
        `address add ${CLIENT}/24 dev eth0`,
        "link set eth0 up",
        "route add default via 192.168.213.1",
      ]);
      // A pod on each node; pod 2 also holds the floating IP (the NAT is not what is tested here).
      for (const n of [1, 2] as const) {
        const node = n === 1 ? undefined : NS.node2;
        const host = `vx${tag}p`;
        link(node, n === 1 ? host : "p0", POD[n], "eth0");
        const dev = n === 1 ? host : "p0";
        if (n === 1) must(["sysctl", "-qw", `net.ipv6.conf.${host}.accept_dad=0`]);
        inNs(node, [
          `address add fe80::1/64 dev ${dev} nodad`,
          `link set ${dev} up`,
          `route replace ${POD_IP[n][4]}/32 dev ${dev}`,
          `route replace ${POD_IP[n][6]}/128 dev ${dev}`,
          ...(n === 2 ? [`route replace ${FLOATING}/32 dev ${dev}`] : []),
        ]);
        must(["ip", "netns", "exec", POD[n], "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"]);
        inNs(POD[n], [
          `address add ${POD_IP[n][4]}/32 dev eth0`,
          `address add ${POD_IP[n][6]}/128 dev eth0 nodad`,
          ...(n === 2 ? [`address add ${FLOATING}/32 dev eth0`] : []),
          "link set eth0 up",
          "route add 169.254.1.1 dev eth0 scope link",
          "route add default via 169.254.1.1 dev eth0",
          "route add ::/0 via fe80::1 dev eth0",
        ]);
        // The host answers the pod's gateway by proxy ARP, as Calico's veths do.
        if (n === 1) must(["sysctl", "-qw", `net.ipv4.conf.${host}.proxy_arp=1`]);
        else
          must(["ip", "netns", "exec", NS.node2, "sysctl", "-qw", "net.ipv4.conf.p0.proxy_arp=1"]);
      }
      for (const n of [1, 2] as const) {
        const input: RoutingInput = {
          node: `node-${n}`,
          mode: "vxlan",
          bindings: [],
          nodes: NODES,
          blocks: [
            { cidr: "10.244.1.0/24", affinity: "node-1" },
            { cidr: "10.244.2.0/24", affinity: "node-2" },
            { cidr: "fd00:244::1:0/112", affinity: "node-1" },
            { cidr: "fd00:244::2:0/112", affinity: "node-2" },
          ],
          hosted: [{ ip: FLOATING, node: "node-2" }],
          pools: [
            pool("pods", "10.244.0.0/16"),
            pool("pods6", "fd00:244::/64"),
            { ...pool("floating", "203.0.113.0/24"), disabled: true },
          ],
          peers: [],
          subnets:
            n === 1 ? ["192.168.211.0/24", "fd00:211::/64"] : ["192.168.212.0/24", "fd00:212::/64"],
        };
        plans[n] = planRouting(input);
      }
      const one = plans[1] as RoutingPlan;
      expect(await tunnels.apply(one.vxlan ?? NO_VXLAN, await tunnels.read())).toEqual([4, 6]);
      expect(await routes.apply(one.routes, [])).toEqual([]);
      const two = plans[2] as RoutingPlan;
      const changes = renderVxlanChanges(two.vxlan ?? NO_VXLAN, NO_VXLAN_KERNEL, {
        4: "eth0",
        6: "eth0",
      });
      inNs(NS.node2, changes.links.trimEnd().split("\n"));
      must(["bridge", "-n", NS.node2, "-batch", "-"], changes.fdb);
      must(["ip", "-n", NS.node2, "-force", "-batch", "-"], renderRouteChanges(two.routes, []));
    });

    it("plans the other node's blocks and the floating IP through the tunnel, and the kernel reads back the same", async () => {
      const through = (plans[1] as RoutingPlan).routes.filter((route) => route.onlink);
      expect(through.map((route) => `${route.dst} via ${route.via} dev ${route.dev}`)).toEqual([
        "10.244.2.0/24 via 192.168.212.12 dev vxlan.buoy",
        "203.0.113.20/32 via 192.168.212.12 dev vxlan.buoy",
        "fd00:244::2:0/112 via fd00:212::12 dev vxlan6.buoy",
      ]);
      expect(await routes.read()).toEqual(expect.arrayContaining(through));
      // Made with the uplink: the MTU is the uplink's less what encapsulation adds.
      const mtu = (dev: string) =>
        (JSON.parse(must(["ip", "-json", "link", "show", dev])) as { mtu: number }[])[0]?.mtu;
      expect([mtu("vxlan.buoy"), mtu("vxlan6.buoy")]).toEqual([1450, 1430]);
    });

    it("pods on the two nodes reach each other in both families", () => {
      for (const family of [4, 6] as const) {
        expect(ping(POD[1], POD_IP[2][family]), `IPv${family} pod 1 -> pod 2`).toBe(true);
        expect(ping(POD[2], POD_IP[1][family]), `IPv${family} pod 2 -> pod 1`).toBe(true);
      }
    });

    it("a packet that fills the device's MTU crosses whole, with fragmentation forbidden", () => {
      // 1450 bytes of IPv4 (1422 of ICMP payload), 1430 of IPv6 (1382).
      expect(ping(POD[1], POD_IP[2][4], ["-M", "do", "-s", "1422"])).toBe(true);
      expect(ping(POD[1], POD_IP[2][6], ["-M", "do", "-s", "1382"])).toBe(true);
    });

    it("a client routed to node-1 reaches the floating IP node-2 hosts, through the tunnel, its source kept", async () => {
      const ready = `/tmp/${prefix}-vx-ready`;
      const seen = `/tmp/${prefix}-vx-seen.log`;
      const responder = startIn(POD[2], [PYTHON, PROBE, "serve", "pod-2", ready, seen]);
      try {
        expect(await eventually(() => existsSync(ready))).toBe(true);
        for (const mode of ["icmp", "tcp", "udp"]) {
          const sent = sh([
            "ip",
            "netns",
            "exec",
            NS.client,
            PYTHON,
            PROBE,
            "send",
            mode,
            FLOATING,
            "2",
            seen,
          ]);
          const answer = JSON.parse(sent.stdout.trim().split("\n").at(-1) || "{}") as {
            ok?: boolean;
            answer?: { peer?: string; pod?: string };
          };
          expect(answer.ok, `${mode}: ${sent.stdout}${sent.stderr}`).toBe(true);
          expect(answer.answer?.peer, mode).toBe(CLIENT);
        }
      } finally {
        responder.stop();
      }
    });

    it("a node that leaves is removed: its peer, its routes, and nothing is tunnelled to it", async () => {
      const input = planRouting({
        node: "node-1",
        mode: "vxlan",
        bindings: [],
        nodes: [NODES[0] as NodeRecord],
        blocks: [{ cidr: "10.244.1.0/24", affinity: "node-1" }],
        hosted: [],
        pools: [pool("pods", "10.244.0.0/16")],
        peers: [],
      });
      await tunnels.apply(input.vxlan ?? NO_VXLAN, await tunnels.read());
      const held = await routes.read();
      expect(
        await routes.apply(
          input.routes,
          held.filter((route) => !input.routes.some((r) => r.dst === route.dst)),
        ),
      ).toEqual([]);
      const after = await tunnels.read();
      expect(after.neighbours).toEqual([]);
      expect(after.forwarding).toEqual([]);
      expect((await routes.read()).filter((route) => route.onlink)).toEqual([]);
      expect(ping(POD[1], POD_IP[2][4], [], 1)).toBe(false);
    });
  });
});
