import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import type {
  BgpPeer,
  FloatingIpClaim,
  IpPool,
  NodeRecord,
  Versioned,
  WorkloadEndpoint,
} from "../model/records.js";
import type { DatastoreState } from "../datastore/datastore-state.js";
import { endpointName, renderGet, selectRecords, type OutputFormat } from "./render-get.js";
import type { ResourceType } from "./resource-type.js";

const at = <T>(value: T): Versioned<T> => ({ value, revision: "7" });
const pools: IpPool[] = [
  {
    name: "pods",
    cidr: "10.244.0.0/16",
    blockSize: 26,
    disabled: false,
    nodeSelector: "all()",
    natOutgoing: true,
    disableBGPExport: false,
  },
  {
    name: "floating",
    cidr: "10.0.0.0/24",
    blockSize: 26,
    disabled: true,
    nodeSelector: "all()",
    natOutgoing: false,
    disableBGPExport: false,
  },
];
const endpoint = (pod: string, node: string, ip: string, nats: [string, string][]) =>
  ({
    node,
    namespace: "default",
    pod,
    containerID: `ctr-${pod}`,
    endpoint: "eth0",
    interfaceName: `buoy-${pod}`,
    mac: "ee:ee:ee:ee:ee:ee",
    ipNetworks: [`${ip}/32`],
    ipNATs: nats.map(([externalIP, internalIP]) => ({ externalIP, internalIP })),
    network: "k8s-pod-network",
    createdAt: "2025-01-01T00:00:00.000Z",
  }) satisfies WorkloadEndpoint;
const claim = (ip: string, pod: string, node: string, internalIP: string): FloatingIpClaim => ({
  ip,
  namespace: "default",
  pod,
  containerID: `ctr-${pod}`,
  node,
  internalIP,
  createdAt: "2025-01-02T03:04:05.000Z",
});
const nodes: NodeRecord[] = [
  { name: "node-2", addresses: ["192.0.2.12"] },
  { name: "node-1", addresses: ["192.0.2.11", "2001:db8::11"], asNumber: 64512 },
];
const peers: BgpPeer[] = [
  { name: "tor-v6", peerIP: "2001:db8::1", asNumber: 65001 },
  { name: "rack-1", peerIP: "192.0.2.1", asNumber: 4200000001, node: "node-1" },
];
const state: DatastoreState = {
  statuses: [
    {
      ip: "10.0.0.7",
      node: "node-1",
      internalIP: "10.244.0.5",
      programmedSince: "2025-01-02T03:04:06.000Z",
      announced: "bgp",
    },
    {
      ip: "10.0.0.8",
      node: "node-1",
      internalIP: "10.244.0.6",
      programmedSince: "2025-01-02T03:04:07.000Z",
    },
  ],
  pools: pools.map(at),
  blocks: [],
  endpoints: [
    endpoint("web-1", "node-2", "10.244.0.70", []),
    { ...endpoint("web-0", "node-1", "10.244.0.5", [["10.0.0.7", "10.244.0.5"]]), egress: true },
  ].map(at),
  claims: [
    claim("10.0.0.10", "db-0", "node-2", "10.244.0.71"),
    claim("10.0.0.7", "web-0", "node-1", "10.244.0.5"),
    claim("10.0.0.8", "web-2", "node-1", "10.244.0.6"),
  ].map(at),
  nodes: nodes.map(at),
  peers: peers.map(at),
};

describe("renderGet()", () => {
  const cases: { type: ResourceType; format: OutputFormat; want: string }[] = [
    {
      type: "ippools",
      format: "table",
      want: `NAME      CIDR           SELECTOR
floating  10.0.0.0/24    all()
pods      10.244.0.0/16  all()
`,
    },
    {
      type: "ippools",
      format: "wide",
      want: `NAME      CIDR           SELECTOR  BLOCKSIZE  DISABLED  NATOUTGOING  DISABLEBGPEXPORT
floating  10.0.0.0/24    all()     26         true      false        false
pods      10.244.0.0/16  all()     26         false     true         false
`,
    },
    {
      type: "endpoints",
      format: "table",
      want: `WORKLOAD       NODE    NETWORKS        INTERFACE
default/web-0  node-1  10.244.0.5/32   buoy-web-0
default/web-1  node-2  10.244.0.70/32  buoy-web-1
`,
    },
    {
      type: "endpoints",
      format: "wide",
      want: `WORKLOAD       NODE    NETWORKS        INTERFACE   FLOATING IPS          EGRESS  CONTAINER
default/web-0  node-1  10.244.0.5/32   buoy-web-0  10.0.0.7->10.244.0.5  yes     ctr-web-0
default/web-1  node-2  10.244.0.70/32  buoy-web-1                        -       ctr-web-1
`,
    },
    {
      type: "floatingips",
      format: "table",
      want: `FLOATING IP  POD            NODE    INTERNAL IP  PROGRAMMED  ANNOUNCED  FLOATINGIP  READY  SINCE
10.0.0.7     default/web-0  node-1  10.244.0.5   yes         bgp        -           -      2025-01-02T03:04:05.000Z
10.0.0.8     default/web-2  node-1  10.244.0.6   yes         -          -           -      2025-01-02T03:04:05.000Z
10.0.0.10    default/db-0   node-2  10.244.0.71  no          -          -           -      2025-01-02T03:04:05.000Z
`,
    },
    {
      type: "floatingips",
      format: "wide",
      want: `FLOATING IP  POD            NODE    INTERNAL IP  PROGRAMMED  ANNOUNCED  FLOATINGIP  READY  SINCE                     CONTAINER  PROGRAMMED SINCE
10.0.0.7     default/web-0  node-1  10.244.0.5   yes         bgp        -           -      2025-01-02T03:04:05.000Z  ctr-web-0  2025-01-02T03:04:06.000Z
10.0.0.8     default/web-2  node-1  10.244.0.6   yes         -          -           -      2025-01-02T03:04:05.000Z  ctr-web-2  2025-01-02T03:04:07.000Z
10.0.0.10    default/db-0   node-2  10.244.0.71  no          -          -           -      2025-01-02T03:04:05.000Z  ctr-db-0
`,
    },
    {
      type: "nodes",
      format: "wide",
      want: `NAME    ADDRESSES                ASN
node-1  192.0.2.11,2001:db8::11  64512
node-2  192.0.2.12
`,
    },
    {
      type: "bgppeers",
      format: "table",
      want: `NAME    PEERIP       ASN         NODE
rack-1  192.0.2.1    4200000001  node-1
tor-v6  2001:db8::1  65001       (all)
`,
    },
  ];
  for (const { type, format, want } of cases) {
    it(`renderGet() prints ${type} as a ${format} table`, () => {
      expect(renderGet(selectRecords(type, state, {}), format, true)).toBe(want);
    });
  }

  it("renderGet() prints floating IPs as FloatingIPClaim resources in JSON", () => {
    const text = renderGet(
      selectRecords("floatingips", state, { name: "10.0.0.7" }),
      "json",
      false,
    );
    expect(JSON.parse(text)).toEqual({
      apiVersion: "buoy.dev/v1",
      kind: "FloatingIPClaim",
      metadata: { name: "10.0.0.7" },
      spec: {
        namespace: "default",
        pod: "web-0",
        containerID: "ctr-web-0",
        node: "node-1",
        internalIP: "10.244.0.5",
        createdAt: "2025-01-02T03:04:05.000Z",
      },
      status: { programmed: true, programmedSince: "2025-01-02T03:04:06.000Z", announced: "bgp" },
    });
  });

  it("renderGet() leaves announced out of the status of a floating IP its node does not announce", () => {
    const statusOf = (ip: string) =>
      (
        JSON.parse(renderGet(selectRecords("floatingips", state, { name: ip }), "json", false)) as {
          status: unknown;
        }
      ).status;
    expect(statusOf("10.0.0.8")).toEqual({
      programmed: true,
      programmedSince: "2025-01-02T03:04:07.000Z",
    });
    expect(statusOf("10.0.0.10")).toEqual({ programmed: false });
  });

  it("renderGet() prints BGP peers as BGPPeer resources, node only when scoped", () => {
    const text = renderGet(selectRecords("bgppeers", state, {}), "yaml", true);
    expect(parse(text)).toEqual({
      apiVersion: "buoy.dev/v1",
      kind: "BGPPeerList",
      items: [
        {
          apiVersion: "buoy.dev/v1",
          kind: "BGPPeer",
          metadata: { name: "rack-1" },
          spec: { peerIP: "192.0.2.1", asNumber: 4200000001, node: "node-1" },
        },
        {
          apiVersion: "buoy.dev/v1",
          kind: "BGPPeer",
          metadata: { name: "tor-v6" },
          spec: { peerIP: "2001:db8::1", asNumber: 65001 },
        },
      ],
    });
  });

  it("renderGet() prints workload endpoints with Calico-style names and their namespace", () => {
    const text = renderGet(selectRecords("endpoints", state, {}), "json", true);
    const list = JSON.parse(text) as { kind: string; items: { metadata: unknown }[] };
    expect(list.kind).toBe("WorkloadEndpointList");
    expect(list.items.map((item) => item.metadata)).toEqual([
      { name: "node--1-k8s-web--0-eth0", namespace: "default" },
      { name: "node--2-k8s-web--1-eth0", namespace: "default" },
    ]);
  });
});

describe("selectRecords()", () => {
  const names = (type: ResourceType, selection: { name?: string; node?: string }) =>
    selectRecords(type, state, selection).items.map((item) =>
      "ip" in item ? item.ip : "name" in item ? item.name : endpointName(item),
    );

  const cases: {
    desc: string;
    type: ResourceType;
    selection: { name?: string; node?: string };
    want: string[];
  }[] = [
    { desc: "finds a pool by name", type: "ippools", selection: { name: "pods" }, want: ["pods"] },
    {
      desc: "finds an endpoint by namespace/pod",
      type: "endpoints",
      selection: { name: "default/web-1" },
      want: ["node--2-k8s-web--1-eth0"],
    },
    {
      desc: "finds an endpoint by pod name",
      type: "endpoints",
      selection: { name: "web-0" },
      want: ["node--1-k8s-web--0-eth0"],
    },
    {
      desc: "finds an endpoint by its Calico-style name",
      type: "endpoints",
      selection: { name: "node--1-k8s-web--0-eth0" },
      want: ["node--1-k8s-web--0-eth0"],
    },
    {
      desc: "keeps the floating IPs of one node",
      type: "floatingips",
      selection: { node: "node-2" },
      want: ["10.0.0.10"],
    },
    {
      desc: "finds a BGP peer by name",
      type: "bgppeers",
      selection: { name: "tor-v6" },
      want: ["tor-v6"],
    },
    {
      desc: "finds a floating IP by its address",
      type: "floatingips",
      selection: { name: "10.0.0.7" },
      want: ["10.0.0.7"],
    },
  ];
  for (const { desc, type, selection, want } of cases) {
    it(`selectRecords() ${desc}`, () => {
      expect(names(type, selection)).toEqual(want);
    });
  }

  const missing: {
    type: ResourceType;
    selection: { name: string; node?: string };
    message: string;
  }[] = [
    { type: "ippools", selection: { name: "nope" }, message: "IP pool nope does not exist" },
    { type: "nodes", selection: { name: "node-9" }, message: "node node-9 does not exist" },
    { type: "bgppeers", selection: { name: "tor" }, message: "BGP peer tor does not exist" },
    {
      type: "endpoints",
      selection: { name: "web-0", node: "node-2" },
      message: "no workload endpoint matches 'web-0' on node node-2",
    },
    {
      type: "floatingips",
      selection: { name: "10.0.0.99" },
      message: "floating IP 10.0.0.99 is not held by any pod",
    },
    {
      type: "floatingips",
      selection: { name: "web-0" },
      message: "'web-0' is not an IP address, nor a FloatingIP's namespace/name",
    },
  ];
  for (const { type, selection, message } of missing) {
    it(`selectRecords() refuses ${type} named '${selection.name}' that match nothing`, () => {
      expect(() => selectRecords(type, state, selection)).toThrow(message);
    });
  }
});
