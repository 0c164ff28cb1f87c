import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { BgpPeer, IpPool } from "../model/records.js";
import {
  parseManifests,
  peerManifest,
  poolManifest,
  renderManifests,
  renderSummary,
  type Resource,
} from "./manifest.js";

/** The IPPool example of Calico's reference documentation, verbatim. */
const CALICO_POOL = `apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: my.ippool-1
spec:
  cidr: 10.1.0.0/16
  ipipMode: CrossSubnet
  natOutgoing: true
  disabled: false
  nodeSelector: all()
  allowedUses:
    - Workload
    - Tunnel
`;

/** What `calicoctl get ippools -o yaml` prints. */
const CALICOCTL_LIST = `apiVersion: projectcalico.org/v3
items:
- apiVersion: projectcalico.org/v3
  kind: IPPool
  metadata:
    creationTimestamp: "2024-05-02T09:12:44Z"
    name: default-ipv4-ippool
    resourceVersion: "724"
    uid: 6e1c0a4e-8a9e-4f58-9a0e-0d8a4f0c2b11
  spec:
    allowedUses:
    - Workload
    - Tunnel
    blockSize: 26
    cidr: 192.168.0.0/16
    ipipMode: Always
    natOutgoing: true
    nodeSelector: all()
    vxlanMode: Never
kind: IPPoolList
metadata:
  resourceVersion: "731"
`;

const pool = (name: string, cidr: string, extra: Partial<IpPool> = {}): IpPool => ({
  name,
  cidr,
  blockSize: cidr.includes(":") ? 122 : 26,
  disabled: false,
  nodeSelector: "all()",
  natOutgoing: false,
  disableBGPExport: false,
  ...extra,
});

/** The BGPPeer example of Calico's reference documentation, verbatim. */
const CALICO_PEER = `apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata:
  name: some.name
spec:
  node: rack1-host1
  peerIP: 192.168.1.1
  asNumber: 63400
`;

const peerDoc = (spec: string, name = "tor") =>
  `apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: ${name}}\nspec: ${spec}\n`;

const summary = (resources: Resource[]) =>
  resources.map((resource) => {
    switch (resource.kind) {
      case "IPPool":
        return [resource.source, resource.pool];
      case "Node":
        return [resource.source, resource.node];
      case "BGPPeer":
        return [resource.source, resource.peer];
      case "Namespace":
        return [resource.source, resource.namespace];
      case "FloatingIP":
        return [resource.source, resource.floatingIp];
      case "Pod":
        return [resource.source, resource.pod];
    }
  });

describe("parseManifests()", () => {
  const accepted: { desc: string; text: string; want: [string, unknown][] }[] = [
    {
      desc: "reads Calico's IPPool example unchanged, ignoring Calico-only fields",
      text: CALICO_POOL,
      want: [
        ["document 1", pool("my.ippool-1", "10.1.0.0/16", { blockSize: 26, natOutgoing: true })],
      ],
    },
    {
      desc: "reads calicoctl's IPPoolList output, ignoring server metadata",
      text: CALICOCTL_LIST,
      want: [
        [
          "document 1, item 1",
          pool("default-ipv4-ippool", "192.168.0.0/16", { natOutgoing: true, vxlanMode: "Never" }),
        ],
      ],
    },
    {
      desc: "reads every document of a multi-document file and skips empty ones",
      text: `---\napiVersion: buoy.dev/v1\nkind: IPPool\nmetadata: {name: a}\nspec: {cidr: 10.0.0.0/24, disabled: true}\n---\n---\napiVersion: buoy.dev/v1\nkind: IPPool\nmetadata: {name: b}\nspec: {cidr: "fd00::/64", blockSize: 120}\n`,
      want: [
        ["document 1", pool("a", "10.0.0.0/24", { disabled: true })],
        ["document 3", pool("b", "fd00::/64", { blockSize: 120 })],
      ],
    },
    {
      desc: "reads JSON",
      text: JSON.stringify(
        {
          apiVersion: "projectcalico.org/v3",
          kind: "IPPool",
          metadata: { name: "floating" },
          spec: { cidr: "10.0.0.0/24", disableBGPExport: true },
        },
        null,
        "\t",
      ),
      want: [["document 1", pool("floating", "10.0.0.0/24", { disableBGPExport: true })]],
    },
    {
      desc: "reads a JSON array of resources",
      text: `[{"apiVersion":"buoy.dev/v1","kind":"Node","metadata":{"name":"node-1"},"spec":{"addresses":["192.0.2.10","2001:db8:0::10"],"asNumber":64512}}]`,
      want: [
        [
          "document 1, item 1",
          { name: "node-1", addresses: ["192.0.2.10", "2001:db8::10"], asNumber: 64512 },
        ],
      ],
    },
    {
      desc: "reads a List whose items carry their own kind",
      text: `apiVersion: v1\nkind: List\nitems:\n- apiVersion: projectcalico.org/v3\n  kind: IPPool\n  metadata: {name: a}\n  spec: {cidr: 10.0.0.0/24}\n- apiVersion: buoy.dev/v1\n  kind: Node\n  metadata: {name: node-1}\n  spec: {addresses: [192.0.2.10]}\n`,
      want: [
        ["document 1, item 1", pool("a", "10.0.0.0/24")],
        ["document 1, item 2", { name: "node-1", addresses: ["192.0.2.10"] }],
      ],
    },
    {
      desc: "reads Calico's BGPPeer example unchanged: a peer of one node",
      text: CALICO_PEER,
      want: [
        [
          "document 1",
          { name: "some.name", peerIP: "192.168.1.1", asNumber: 63400, node: "rack1-host1" },
        ],
      ],
    },
    {
      desc: "reads a BGPPeer of every node, canonicalising its IPv6 peerIP",
      text: `apiVersion: buoy.dev/v1\nkind: BGPPeer\nmetadata: {name: tor-v6}\nspec: {peerIP: "2001:DB8:0::1", asNumber: 65001}\n`,
      want: [["document 1", { name: "tor-v6", peerIP: "2001:db8::1", asNumber: 65001 }]],
    },
    {
      desc: "takes empty selectors and node as not set, and ignores other Calico fields",
      text: peerDoc(
        `{peerIP: 192.0.2.1, asNumber: 65001, node: "", nodeSelector: "", peerSelector: "", keepOriginalNextHop: true}`,
      ),
      want: [["document 1", { name: "tor", peerIP: "192.0.2.1", asNumber: 65001 }]],
    },
    {
      desc: "reads an AS number written as a string, plain or dotted (asdot)",
      text: `${peerDoc(`{peerIP: 192.0.2.1, asNumber: "65001"}`)}---\n${peerDoc(`{peerIP: 192.0.2.2, asNumber: "1.10"}`, "tor-2")}`,
      want: [
        ["document 1", { name: "tor", peerIP: "192.0.2.1", asNumber: 65001 }],
        ["document 2", { name: "tor-2", peerIP: "192.0.2.2", asNumber: 65546 }],
      ],
    },
    {
      desc: "gives BGPPeerList items the list's kind and apiVersion when they omit them",
      text: `apiVersion: projectcalico.org/v3\nkind: BGPPeerList\nitems:\n- metadata: {name: tor}\n  spec: {peerIP: 192.0.2.1, asNumber: 65001}\n`,
      want: [["document 1, item 1", { name: "tor", peerIP: "192.0.2.1", asNumber: 65001 }]],
    },
    {
      desc: "gives IPPoolList items the list's kind and apiVersion when they omit them",
      text: `apiVersion: buoy.dev/v1\nkind: IPPoolList\nitems:\n- metadata: {name: a}\n  spec: {cidr: 10.0.0.7/24}\n`,
      want: [["document 1, item 1", pool("a", "10.0.0.0/24")]],
    },
    {
      desc: "reads a Namespace's labels, and a pool's namespaceSelector",
      text: `apiVersion: buoy.dev/v1\nkind: Namespace\nmetadata: {name: shop, labels: {team: a, example.com/tier: web}}\n---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: a}\nspec: {cidr: 10.0.0.0/24, namespaceSelector: "team == 'a'"}\n`,
      want: [
        ["document 1", { name: "shop", labels: { team: "a", "example.com/tier": "web" } }],
        ["document 2", pool("a", "10.0.0.0/24", { namespaceSelector: "team == 'a'" })],
      ],
    },
    {
      desc: "reads a Namespace without labels as one with none",
      text: `apiVersion: buoy.dev/v1\nkind: Namespace\nmetadata: {name: lab}\n`,
      want: [["document 1", { name: "lab", labels: {} }]],
    },
  ];
  for (const { desc, text, want } of accepted) {
    it(`parseManifests() ${desc}`, () => {
      expect(summary(parseManifests(text))).toEqual(want);
    });
  }

  const refused: { desc: string; text: string; message: string }[] = [
    {
      desc: "names an unknown kind and its document",
      text: `${CALICO_POOL}---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n`,
      message:
        "document 2: unknown kind 'Deployment' (buoy accepts IPPool, Node, BGPPeer, Namespace, FloatingIP, Pod, List, IPPoolList, NodeList, BGPPeerList, NamespaceList, FloatingIPList and PodList)",
    },
    {
      desc: "refuses a CIDR that does not parse",
      text: `apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: bad}\nspec: {cidr: 10.0.0.300/24}\n`,
      message: "document 1: IP pool bad: '10.0.0.300/24' is not a CIDR",
    },
    {
      desc: "refuses a block size outside the pool",
      text: `apiVersion: buoy.dev/v1\nkind: IPPool\nmetadata: {name: bad}\nspec: {cidr: 10.0.0.0/24, blockSize: 20}\n`,
      message: "document 1: IP pool bad: blockSize must be an integer between 24 and 32",
    },
    {
      desc: "refuses a resource without a name",
      text: `apiVersion: buoy.dev/v1\nkind: IPPool\nspec: {cidr: 10.0.0.0/24}\n`,
      message: "document 1: IPPool has no metadata.name",
    },
    {
      desc: "refuses a name that YAML reads as a number",
      text: `apiVersion: buoy.dev/v1\nkind: Node\nmetadata: {name: 1.5}\nspec: {addresses: []}\n`,
      message: "document 1: Node metadata.name must be a string, got number 1.5",
    },
    {
      desc: "refuses an apiVersion it does not know",
      text: `apiVersion: crd.projectcalico.org/v1\nkind: IPPool\nmetadata: {name: a}\nspec: {cidr: 10.0.0.0/24}\n`,
      message:
        "document 1: IPPool in apiVersion 'crd.projectcalico.org/v1' is not supported (use projectcalico.org/v3 or buoy.dev/v1)",
    },
    {
      desc: "refuses Calico's Node, whose fields differ from buoy's",
      text: `apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: node-1}\nspec: {bgp: {ipv4Address: 192.0.2.10/24}}\n`,
      message:
        "document 1: Node in apiVersion 'projectcalico.org/v3' is not supported (use buoy.dev/v1)",
    },
    {
      desc: "refuses a node address that is not an IP address",
      text: `apiVersion: buoy.dev/v1\nkind: Node\nmetadata: {name: node-1}\nspec: {addresses: [192.0.2.10/24]}\n`,
      message: "document 1: node node-1: spec.addresses[0] '192.0.2.10/24' is not an IP address",
    },
    {
      desc: "refuses records that only buoy writes",
      text: `apiVersion: buoy.dev/v1\nkind: FloatingIPClaim\nmetadata: {name: 10.0.0.7}\n`,
      message: "document 1: kind FloatingIPClaim is written by buoy itself and cannot be applied",
    },
    {
      desc: "names the list item at fault",
      text: `apiVersion: buoy.dev/v1\nkind: List\nitems:\n- apiVersion: buoy.dev/v1\n  kind: IPPool\n  metadata: {name: a}\n  spec: {cidr: 10.0.0.0/24}\n- {apiVersion: v1, kind: Service, metadata: {name: s}}\n`,
      message:
        "document 1, item 2: unknown kind 'Service' (buoy accepts IPPool, Node, BGPPeer, Namespace, FloatingIP, Pod, List, IPPoolList, NodeList, BGPPeerList, NamespaceList, FloatingIPList and PodList)",
    },
    {
      desc: "refuses a peerIP that is not an IP address",
      text: peerDoc("{peerIP: 192.0.2.300, asNumber: 65001}"),
      message: "document 1: BGP peer tor: spec.peerIP '192.0.2.300' is not an IP address",
    },
    {
      desc: "refuses a peerIP with a port, saying to give the address alone",
      text: peerDoc(`{peerIP: "[2001:db8::1]:180", asNumber: 65001}`),
      message:
        "document 1: BGP peer tor: spec.peerIP '[2001:db8::1]:180' is not an IP address (buoy peers on port 179 only: give the address alone)",
    },
    {
      desc: "refuses a BGPPeer without peerIP",
      text: peerDoc("{asNumber: 65001}"),
      message: "document 1: BGP peer tor: spec.peerIP is required",
    },
    {
      desc: "refuses a BGPPeer without asNumber",
      text: peerDoc("{peerIP: 192.0.2.1}"),
      message: "document 1: BGP peer tor: spec.asNumber is required",
    },
    ...[
      ["0", "number 0"],
      ["4294967296", "number 4294967296"],
      ["64512.5", "number 64512.5"],
      ['"65536.1"', "'65536.1'"],
      ["AS65001", "'AS65001'"],
    ].map(([asNumber, got]) => ({
      desc: `refuses asNumber ${asNumber}`,
      text: peerDoc(`{peerIP: 192.0.2.1, asNumber: ${asNumber}}`),
      message: `document 1: BGP peer tor: spec.asNumber must be an integer between 1 and 4294967295 or dotted like '1.10', got ${got}`,
    })),
    {
      desc: "refuses a node AS number out of range the same way",
      text: `apiVersion: buoy.dev/v1\nkind: Node\nmetadata: {name: node-1}\nspec: {addresses: [], asNumber: -1}\n`,
      message:
        "document 1: node node-1: spec.asNumber must be an integer between 1 and 4294967295 or dotted like '1.10', got number -1",
    },
    {
      desc: "refuses a spec.node that is not a node name",
      text: peerDoc("{peerIP: 192.0.2.1, asNumber: 65001, node: Rack1_Host1}"),
      message:
        "document 1: BGP peer tor: spec.node 'Rack1_Host1' is not a node name (lower-case letters, digits, '-' and '.')",
    },
    {
      desc: "refuses a BGP peer name outside Calico's pattern",
      text: peerDoc("{peerIP: 192.0.2.1, asNumber: 65001}", "Tor/1"),
      message: "document 1: BGP peer name 'Tor/1' must be lower-case letters, digits, '-' and '.'",
    },
    ...["nodeSelector", "peerSelector"].map((field) => ({
      desc: `refuses a non-empty ${field}, saying what to do instead`,
      text: peerDoc(`{peerIP: 192.0.2.1, asNumber: 65001, ${field}: "rack == 'a'"}`),
      message: `document 1: BGP peer tor: spec.${field} is not supported by buoy; name one node in spec.node, or leave both out for a peer of every node`,
    })),
    {
      desc: "refuses a password rather than open the session without it",
      text: peerDoc(
        "{peerIP: 192.0.2.1, asNumber: 65001, password: {secretKeyRef: {name: bgp, key: pw}}}",
      ),
      message:
        "document 1: BGP peer tor: spec.password is not supported by buoy (no MD5 on its sessions)",
    },
    {
      desc: "refuses a BGPPeer in an apiVersion it does not know",
      text: CALICO_PEER.replace("projectcalico.org/v3", "crd.projectcalico.org/v1"),
      message:
        "document 1: BGPPeer in apiVersion 'crd.projectcalico.org/v1' is not supported (use projectcalico.org/v3 or buoy.dev/v1)",
    },
    {
      desc: "refuses a pool whose namespaceSelector does not parse",
      text: `apiVersion: buoy.dev/v1\nkind: IPPool\nmetadata: {name: a}\nspec: {cidr: 10.0.0.0/24, namespaceSelector: "team = 'a'"}\n`,
      message:
        "document 1: IP pool a: namespaceSelector 'team = 'a'' is not a valid selector: expected '==', '!=', 'in', 'not in', 'contains', 'starts with' or 'ends with' after 'team' at character 6, found '= 'a''",
    },
    {
      desc: "refuses a Namespace label that is not a string",
      text: `apiVersion: buoy.dev/v1\nkind: Namespace\nmetadata: {name: shop, labels: {team: 7}}\n`,
      message: "document 1: namespace shop: label team number 7 is not a label value (a string)",
    },
    {
      desc: "refuses a Namespace label key outside Kubernetes' syntax",
      text: `apiVersion: buoy.dev/v1\nkind: Namespace\nmetadata: {name: shop, labels: {"team a": x}}\n`,
      message: "document 1: namespace shop: 'team a' is not a label key",
    },
    {
      desc: "refuses a Namespace in Calico's apiVersion",
      text: `apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n`,
      message: "document 1: Namespace in apiVersion 'v1' is not supported (use buoy.dev/v1)",
    },
    {
      desc: "refuses a document that is not a resource",
      text: `just a string\n`,
      message: "document 1: expected a resource with apiVersion and kind, got 'just a string'",
    },
  ];
  for (const { desc, text, message } of refused) {
    it(`parseManifests() ${desc}`, () => {
      expect(() => parseManifests(text)).toThrow(message);
    });
  }

  it("parseManifests() reports where YAML breaks", () => {
    expect(() => parseManifests("kind: IPPool\nmetadata: {name: a\n")).toThrow(
      /^document 1: invalid YAML: .* at line 3, column 1$/,
    );
  });
});

describe("renderManifests()", () => {
  const pools = [pool("a", "10.0.0.0/24"), pool("b", "fd00::/64")].map(poolManifest);

  it("renderManifests() prints a list that parseManifests() reads back", () => {
    for (const format of ["json", "yaml"] as const) {
      const text = renderManifests(pools, { kind: "IPPool", asList: true, format });
      expect(summary(parseManifests(text)).map(([, value]) => value)).toEqual([
        pool("a", "10.0.0.0/24"),
        pool("b", "fd00::/64"),
      ]);
    }
  });

  it("renderManifests() prints BGP peers that parseManifests() reads back", () => {
    const peers: BgpPeer[] = [
      { name: "tor", peerIP: "192.0.2.1", asNumber: 65001 },
      { name: "tor-6", peerIP: "2001:db8::1", asNumber: 4200000000, node: "node-1" },
    ];
    for (const format of ["json", "yaml"] as const) {
      const text = renderManifests(peers.map(peerManifest), {
        kind: "BGPPeer",
        asList: true,
        format,
      });
      expect(summary(parseManifests(text)).map(([, value]) => value)).toEqual(peers);
    }
    expect(peerManifest(peers[0] as BgpPeer)).toEqual({
      apiVersion: "buoy.dev/v1",
      kind: "BGPPeer",
      metadata: { name: "tor" },
      spec: { peerIP: "192.0.2.1", asNumber: 65001 },
    });
  });

  it("renderManifests() prints one named resource as itself", () => {
    const text = renderManifests(pools.slice(0, 1), {
      kind: "IPPool",
      asList: false,
      format: "yaml",
    });
    expect(parse(text)).toEqual({
      apiVersion: "buoy.dev/v1",
      kind: "IPPool",
      metadata: { name: "a" },
      spec: {
        cidr: "10.0.0.0/24",
        blockSize: 26,
        disabled: false,
        nodeSelector: "all()",
        natOutgoing: false,
        disableBGPExport: false,
      },
    });
  });

  it("renderManifests() prints an empty list when nothing matched", () => {
    expect(JSON.parse(renderManifests([], { kind: "Node", asList: true, format: "json" }))).toEqual(
      { apiVersion: "buoy.dev/v1", kind: "NodeList", items: [] },
    );
  });
});

describe("renderSummary()", () => {
  it("renderSummary() words the result like calicoctl", () => {
    expect(renderSummary("applied", ["IPPool", "IPPool"])).toBe(
      "Successfully applied 2 'IPPool' resource(s)\n",
    );
    expect(renderSummary("deleted", ["IPPool", "Node"])).toBe(
      "Successfully deleted 2 resource(s)\n",
    );
  });
});
