import { describe, expect, it } from "vitest";
import { expectGolden } from "../../test/support/golden.js";
import type { LabStatus } from "./lab-status.js";
import { findLabProblems, renderLabStatus } from "./render-lab-status.js";

const testdata = new URL("./testdata/", import.meta.url);

const established = (name: string) => ({ name, state: "up", info: "Established" });

const healthy: LabStatus = {
  prefix: "lab1",
  routing: "bgp",
  ipv6: false,
  phase: "up",
  features: { agentRouting: true, bgpPeers: true },
  createdAt: "2026-01-02T03:04:05.000Z",
  stateDir: "/run/buoy-lab/lab1",
  datastore: { netns: "lab1-fab", endpoint: "http://192.168.200.1:2379", healthy: true },
  nodes: [
    {
      name: "node-1",
      netns: "lab1-n1",
      addresses: ["192.168.200.11", "fd00:200::11"],
      agentReady: true,
      bgp: [established("peer_node_2_v4"), established("peer_peer_tor")],
    },
    {
      name: "node-2",
      netns: "lab1-n2",
      addresses: ["192.168.200.12", "fd00:200::12"],
      agentReady: true,
      bgp: [
        { name: "peer_node_1_v4", state: "start", info: "Active Socket: Connection refused" },
        established("peer_peer_tor"),
      ],
    },
  ],
  router: {
    netns: "lab1-ext",
    addresses: ["192.168.200.254", "fd00:200::fe"],
    bgp: [established("peer_node_1"), established("peer_node_2")],
  },
  pods: [
    {
      node: 1,
      nodeName: "node-1",
      name: "web",
      namespace: "default",
      netns: "lab1-1-web",
      containerID: "c0ffee",
      ips: ["10.244.0.65"],
      floatingIps: ["203.0.113.10"],
      responderRunning: true,
    },
  ],
  floatingIps: [
    {
      ip: "203.0.113.10",
      pod: "default/web",
      node: "node-1",
      internalIP: "10.244.0.65",
      programmed: true,
      announced: "bgp",
      routerRoutesTo: ["node-1"],
    },
    {
      ip: "203.0.113.11",
      pod: "blue/new",
      node: "node-2",
      internalIP: "10.244.1.2",
      programmed: false,
      routerRoutesTo: [],
    },
  ],
  processes: [
    { name: "etcd", netns: "lab1-fab", pid: 100, running: true },
    { name: "agent-node-1", netns: "lab1-n1", pid: 101, running: true },
  ],
};

describe("lab status", () => {
  it("renderLabStatus() shows nodes with BGP, the router, pods and where each floating IP goes; a session not Established is a problem", () => {
    expectGolden(testdata, "lab-status-healthy", renderLabStatus(healthy));
    expect(findLabProblems(healthy)).toEqual([
      "BGP session peer_node_1_v4 on node-2 is Active Socket: Connection refused",
    ]);
  });

  it("renderLabStatus() in direct mode shows where each other node routes a floating IP; a node or the router routing it to two nodes is a problem", () => {
    const direct: LabStatus = {
      ...healthy,
      routing: "direct",
      nodes: [
        ...healthy.nodes.map(({ bgp: _bgp, ...node }) => node),
        {
          name: "node-3",
          netns: "lab1-n3",
          addresses: ["192.168.200.13", "fd00:200::13"],
          agentReady: true,
        },
      ],
      router: { netns: "lab1-ext", addresses: ["192.168.200.254", "fd00:200::fe"] },
      floatingIps: [
        {
          ip: "203.0.113.10",
          pod: "default/web",
          node: "node-1",
          internalIP: "10.244.0.65",
          programmed: true,
          announced: "direct",
          nodesRouteVia: [
            { node: "node-2", via: ["node-1"] },
            { node: "node-3", via: [] },
          ],
        },
        {
          ip: "203.0.113.12",
          pod: "default/moving",
          node: "node-2",
          internalIP: "10.244.1.7",
          programmed: true,
          announced: "direct",
          nodesRouteVia: [
            { node: "node-1", via: ["node-2", "node-3"] },
            { node: "node-3", via: 'Cannot open network namespace "lab1-n3"' },
          ],
        },
      ],
    };
    expectGolden(testdata, "lab-status-direct", renderLabStatus(direct));
    expect(findLabProblems(direct)).toEqual([
      "node-1 routes floating IP 203.0.113.12 via node-2, node-3, not one node (node-2 holds it)",
    ]);
    const ecmp: LabStatus = {
      ...healthy,
      nodes: healthy.nodes.map((node) => ({ ...node, bgp: [established("peer_tor")] })),
      floatingIps: [
        {
          ip: "203.0.113.10",
          pod: "default/web",
          node: "node-1",
          internalIP: "10.244.0.65",
          programmed: true,
          announced: "bgp",
          routerRoutesTo: ["node-1", "node-2"],
        },
      ],
    };
    expect(renderLabStatus(ecmp)).toMatch(/^203\.0\.113\.10 .* bgp +node-1,node-2$/m);
    expect(findLabProblems(ecmp)).toEqual([
      "the router routes floating IP 203.0.113.10 to node-1, node-2, not one node (node-1 holds it)",
    ]);
  });

  it("renderLabStatus() shows the log tail of a broken process, and findLabProblems() names it", () => {
    const broken: LabStatus = {
      ...healthy,
      nodes: healthy.nodes.map((node) =>
        node.name === "node-2" ? { ...node, agentReady: false } : node,
      ),
      floatingIps: "cannot use the etcdv3 datastore",
      processes: [
        ...healthy.processes,
        {
          name: "agent-node-2",
          netns: "lab1-n2",
          pid: 102,
          running: false,
          problem: "not running",
          logTail: '{"event":"agent.error","error":"nft: no such file"}',
        },
      ],
    };
    expectGolden(testdata, "lab-status-broken", renderLabStatus(broken));
    expect(findLabProblems(broken)).toEqual([
      "agent on node-2 is not ready",
      "BGP session peer_node_1_v4 on node-2 is Active Socket: Connection refused",
    ]);
  });
});
