import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { IpPool } from "../datastore/model.js";
import {
  parseManifests,
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

const summary = (resources: Resource[]) =>
  resources.map((resource) =>
    resource.kind === "IPPool"
      ? [resource.source, resource.pool]
      : [resource.source, resource.node],
  );

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
          pool("default-ipv4-ippool", "192.168.0.0/16", { natOutgoing: true }),
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
      desc: "gives IPPoolList items the list's kind and apiVersion when they omit them",
      text: `apiVersion: buoy.dev/v1\nkind: IPPoolList\nitems:\n- metadata: {name: a}\n  spec: {cidr: 10.0.0.7/24}\n`,
      want: [["document 1, item 1", pool("a", "10.0.0.0/24")]],
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
      text: `${CALICO_POOL}---\napiVersion: v1\nkind: Pod\nmetadata: {name: web}\n`,
      message:
        "document 2: unknown kind 'Pod' (buoy accepts IPPool, Node, List, IPPoolList and NodeList)",
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
      text: `apiVersion: buoy.dev/v1\nkind: FloatingIP\nmetadata: {name: 10.0.0.7}\n`,
      message: "document 1: kind FloatingIP is written by buoy itself and cannot be applied",
    },
    {
      desc: "names the list item at fault",
      text: `apiVersion: buoy.dev/v1\nkind: List\nitems:\n- apiVersion: buoy.dev/v1\n  kind: IPPool\n  metadata: {name: a}\n  spec: {cidr: 10.0.0.0/24}\n- {apiVersion: v1, kind: Service, metadata: {name: s}}\n`,
      message:
        "document 1, item 2: unknown kind 'Service' (buoy accepts IPPool, Node, List, IPPoolList and NodeList)",
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
