import { describe, expect, it } from "vitest";
import type { FloatingIpClaim, IpPool, WorkloadEndpoint } from "../model/records.js";
import {
  coverPrefixes,
  planNat,
  planNatOutgoing,
  type NatPlan,
  type NatRefusalReason,
} from "./nat-plan.js";

function endpoint(over: Partial<WorkloadEndpoint> = {}): WorkloadEndpoint {
  return {
    node: "node-1",
    namespace: "shop",
    pod: "a",
    containerID: "ctr-a",
    endpoint: "eth0",
    interfaceName: "cali1111111111a",
    mac: "0a:58:0a:f4:00:05",
    ipNetworks: ["10.244.0.5/32", "fd00:244::5/128"],
    ipNATs: [],
    network: "k8s-pod-network",
    createdAt: "2024-01-01T00:00:00Z",
    ...over,
  };
}

function claim(ip: string, containerID = "ctr-a"): FloatingIpClaim {
  return {
    ip,
    namespace: "shop",
    pod: "a",
    containerID,
    node: "node-1",
    internalIP: "",
    createdAt: "2024-01-01T00:00:00Z",
  };
}

const podB = endpoint({
  pod: "b",
  containerID: "ctr-b",
  interfaceName: "cali222222222bb",
  ipNetworks: ["10.244.0.6/32"],
});

const pools: IpPool[] = [
  {
    name: "floating",
    cidr: "10.96.0.0/24",
    blockSize: 26,
    disabled: true,
    nodeSelector: "all()",
    natOutgoing: false,
    disableBGPExport: false,
  },
];

describe("planNat()", () => {
  const cases: {
    desc: string;
    endpoints: WorkloadEndpoint[];
    claims: FloatingIpClaim[];
    pools?: IpPool[];
    want: NatPlan;
  }[] = [
    { desc: "plans nothing for no endpoints", endpoints: [], claims: [], want: empty() },
    {
      desc: "binds each claimed floating IP of both families to the pod's address",
      endpoints: [
        endpoint({
          ipNATs: [
            { internalIP: "fd00:244::5", externalIP: "fd00:96::1" },
            { internalIP: "10.244.0.5", externalIP: "10.96.0.1" },
          ],
        }),
      ],
      claims: [claim("10.96.0.1"), claim("fd00:96::1")],
      want: {
        bindings: [
          { family: 4, floating: "10.96.0.1", pod: "10.244.0.5", hostIfname: "cali1111111111a" },
          { family: 6, floating: "fd00:96::1", pod: "fd00:244::5", hostIfname: "cali1111111111a" },
        ],
        refused: [],
      },
    },
    {
      desc: "ignores endpoints on other nodes",
      endpoints: [
        endpoint({
          node: "node-2",
          ipNATs: [{ internalIP: "10.244.0.5", externalIP: "10.96.0.1" }],
        }),
      ],
      claims: [claim("10.96.0.1")],
      want: empty(),
    },
    {
      desc: "sorts by family, then by numeric address",
      endpoints: [
        endpoint({
          ipNATs: ["fd00:96::1", "10.96.0.10", "10.96.0.9"].map((externalIP) => ({
            externalIP,
            internalIP: externalIP.includes(":") ? "fd00:244::5" : "10.244.0.5",
          })),
        }),
      ],
      claims: [claim("10.96.0.9"), claim("10.96.0.10"), claim("fd00:96::1")],
      want: {
        bindings: [
          { family: 4, floating: "10.96.0.9", pod: "10.244.0.5", hostIfname: "cali1111111111a" },
          { family: 4, floating: "10.96.0.10", pod: "10.244.0.5", hostIfname: "cali1111111111a" },
          { family: 6, floating: "fd00:96::1", pod: "fd00:244::5", hostIfname: "cali1111111111a" },
        ],
        refused: [],
      },
    },
    {
      desc: "canonicalises IPv6 in ipNATs and claims",
      endpoints: [
        endpoint({ ipNATs: [{ internalIP: "FD00:244:0::5", externalIP: "fd00:96:0:0::1" }] }),
      ],
      claims: [claim("FD00:96::0:1")],
      want: {
        bindings: [
          { family: 6, floating: "fd00:96::1", pod: "fd00:244::5", hostIfname: "cali1111111111a" },
        ],
        refused: [],
      },
    },
    {
      desc: "binds a floating IP listed twice once",
      endpoints: [
        endpoint({
          ipNATs: [
            { internalIP: "10.244.0.5", externalIP: "10.96.0.1" },
            { internalIP: "10.244.0.5", externalIP: "10.96.0.1" },
          ],
        }),
      ],
      claims: [claim("10.96.0.1")],
      want: {
        bindings: [
          { family: 4, floating: "10.96.0.1", pod: "10.244.0.5", hostIfname: "cali1111111111a" },
        ],
        refused: [],
      },
    },
    {
      desc: "refuses a floating IP listed twice once",
      endpoints: [
        endpoint({
          ipNATs: [
            { internalIP: "10.244.0.5", externalIP: "10.96.0.1" },
            { internalIP: "10.244.0.5", externalIP: "10.96.0.1" },
          ],
        }),
      ],
      claims: [],
      want: refused("10.96.0.1", "shop/a", "no claim"),
    },
    {
      desc: "refuses a floating IP without a claim",
      endpoints: [endpoint({ ipNATs: [{ internalIP: "10.244.0.5", externalIP: "10.96.0.1" }] })],
      claims: [],
      want: refused("10.96.0.1", "shop/a", "no claim"),
    },
    {
      desc: "refuses a floating IP whose claim another container holds",
      endpoints: [endpoint({ ipNATs: [{ internalIP: "10.244.0.5", externalIP: "10.96.0.1" }] })],
      claims: [claim("10.96.0.1", "ctr-other")],
      want: refused("10.96.0.1", "shop/a", "claimed by another container"),
    },
    {
      desc: "refuses an entry that is not a single IP",
      endpoints: [endpoint({ ipNATs: [{ internalIP: "10.244.0.5", externalIP: "10.96.0.0/24" }] })],
      claims: [claim("10.96.0.0/24")],
      want: refused("10.96.0.0/24", "shop/a", "not an IP"),
    },
    {
      desc: "refuses an internal address that is not an IP",
      endpoints: [endpoint({ ipNATs: [{ internalIP: "pod-a", externalIP: "10.96.0.1" }] })],
      claims: [claim("10.96.0.1")],
      want: refused("10.96.0.1", "shop/a", "not an IP"),
    },
    {
      desc: "refuses a floating IP of another family than its pod address",
      endpoints: [endpoint({ ipNATs: [{ internalIP: "10.244.0.5", externalIP: "fd00:96::1" }] })],
      claims: [claim("fd00:96::1")],
      want: refused("fd00:96::1", "shop/a", "family mismatch"),
    },
    {
      desc: "refuses a translation to an address the pod does not have",
      endpoints: [endpoint({ ipNATs: [{ internalIP: "10.244.0.6", externalIP: "10.96.0.1" }] })],
      claims: [claim("10.96.0.1")],
      want: refused("10.96.0.1", "shop/a", "not the pod's address"),
    },
    {
      desc: "refuses, given pools, a floating IP outside all of them",
      endpoints: [endpoint({ ipNATs: [{ internalIP: "10.244.0.5", externalIP: "10.97.0.1" }] })],
      claims: [claim("10.97.0.1")],
      pools,
      want: refused("10.97.0.1", "shop/a", "not in any pool"),
    },
    {
      desc: "accepts, given pools, a floating IP inside a disabled pool",
      endpoints: [endpoint({ ipNATs: [{ internalIP: "10.244.0.5", externalIP: "10.96.0.1" }] })],
      claims: [claim("10.96.0.1")],
      pools,
      want: {
        bindings: [
          { family: 4, floating: "10.96.0.1", pod: "10.244.0.5", hostIfname: "cali1111111111a" },
        ],
        refused: [],
      },
    },
    {
      desc: "binds a contested floating IP to the claim holder only",
      endpoints: [
        { ...podB, ipNATs: [{ internalIP: "10.244.0.6", externalIP: "10.96.0.1" }] },
        endpoint({ ipNATs: [{ internalIP: "10.244.0.5", externalIP: "10.96.0.1" }] }),
      ],
      claims: [claim("10.96.0.1", "ctr-b")],
      want: {
        bindings: [
          { family: 4, floating: "10.96.0.1", pod: "10.244.0.6", hostIfname: "cali222222222bb" },
        ],
        refused: [
          { floatingIP: "10.96.0.1", pod: "shop/a", reason: "claimed by another container" },
        ],
      },
    },
    {
      desc: "refuses a floating IP a second interface of the holder asks for too",
      endpoints: [
        endpoint({
          endpoint: "net1",
          interfaceName: "cali1111111111b",
          ipNetworks: ["10.245.0.5/32"],
          ipNATs: [{ internalIP: "10.245.0.5", externalIP: "10.96.0.1" }],
        }),
        endpoint({ ipNATs: [{ internalIP: "10.244.0.5", externalIP: "10.96.0.1" }] }),
      ],
      claims: [claim("10.96.0.1")],
      want: {
        bindings: [
          { family: 4, floating: "10.96.0.1", pod: "10.244.0.5", hostIfname: "cali1111111111a" },
        ],
        refused: [
          { floatingIP: "10.96.0.1", pod: "shop/a", reason: "requested by another endpoint" },
        ],
      },
    },
  ];
  for (const { desc, endpoints, claims, pools: given, want } of cases) {
    it(`planNat() ${desc}`, () => {
      expect(planNat(endpoints, "node-1", claims, given)).toEqual(want);
    });
  }

  it("planNat() refuses, given the node's interfaces, an endpoint whose host interface is gone", () => {
    const endpoints = [
      endpoint({ ipNATs: [{ internalIP: "10.244.0.5", externalIP: "10.96.0.1" }] }),
    ];
    const claims = [claim("10.96.0.1")];
    const [host] = planNat(endpoints, "node-1", claims).bindings.map((b) => b.hostIfname);
    expect(planNat(endpoints, "node-1", claims, undefined, new Set(["lo"]))).toEqual(
      refused("10.96.0.1", "shop/a", "host interface missing"),
    );
    expect(
      planNat(endpoints, "node-1", claims, undefined, new Set([host as string])).bindings,
    ).toHaveLength(1);
  });

  it("planNat() marks, for a pod that opted in to egress, its first held floating IP of each family", () => {
    const nats = [
      { internalIP: "10.244.0.5", externalIP: "10.96.0.9" },
      { internalIP: "10.244.0.5", externalIP: "10.96.0.2" },
      { internalIP: "10.244.0.5", externalIP: "10.96.0.3" },
      { internalIP: "fd00:244::5", externalIP: "fd00:96::1" },
    ];
    const claims = ["10.96.0.2", "10.96.0.3", "fd00:96::1"].map((ip) => claim(ip));
    const marked = (egress: boolean) =>
      planNat([endpoint({ ipNATs: nats, egress })], "node-1", claims).bindings.map(
        (b) => `${b.floating}${b.egress ? " egress" : ""}`,
      );
    // 10.96.0.9 has no claim: the next one the pod holds is its source.
    expect(marked(true)).toEqual(["10.96.0.2 egress", "10.96.0.3", "fd00:96::1 egress"]);
    expect(marked(false)).toEqual(["10.96.0.2", "10.96.0.3", "fd00:96::1"]);
  });

  it("planNat() gives egress from a claim marked egress (a FloatingIP's spec.egress) first, without the pod's opt-in", () => {
    const nats = [
      { internalIP: "10.244.0.5", externalIP: "10.96.0.2" },
      { internalIP: "10.244.0.5", externalIP: "10.96.0.3" },
      { internalIP: "fd00:244::5", externalIP: "fd00:96::1" },
    ];
    const plan = (claims: Pick<FloatingIpClaim, "ip" | "containerID" | "egress">[]) =>
      planNat([endpoint({ ipNATs: nats })], "node-1", claims).bindings.map(
        (b) => `${b.floating}${b.egress ? " egress" : ""}`,
      );
    const marked = { ...claim("10.96.0.3"), egress: true };
    // The pod leaves from the marked address, and from its first of the other family.
    expect(plan([claim("10.96.0.2"), marked, claim("fd00:96::1")])).toEqual([
      "10.96.0.2",
      "10.96.0.3 egress",
      "fd00:96::1 egress",
    ]);
    // A mark on a claim another container holds gives this pod nothing.
    expect(plan([claim("10.96.0.2"), { ...claim("10.96.0.3", "ctr-b"), egress: true }])).toEqual([
      "10.96.0.2",
    ]);
  });

  it("planNat() does not depend on the order of its input", () => {
    const endpoints = [
      endpoint({ ipNATs: [{ internalIP: "10.244.0.5", externalIP: "10.96.0.2" }] }),
      { ...podB, ipNATs: [{ internalIP: "10.244.0.6", externalIP: "10.96.0.1" }] },
    ];
    const claims = [claim("10.96.0.2"), claim("10.96.0.1", "ctr-b")];
    expect(planNat([...endpoints].reverse(), "node-1", [...claims].reverse())).toEqual(
      planNat(endpoints, "node-1", claims),
    );
  });
});

function empty(): NatPlan {
  return { bindings: [], refused: [] };
}

function refused(floatingIP: string, pod: string, reason: NatRefusalReason): NatPlan {
  return { bindings: [], refused: [{ floatingIP, pod, reason }] };
}

describe("planNatOutgoing()", () => {
  const pool = (cidr: string, natOutgoing: boolean): IpPool => ({
    name: cidr,
    cidr,
    blockSize: 26,
    disabled: false,
    nodeSelector: "all()",
    natOutgoing,
    disableBGPExport: false,
  });
  it("masquerades from natOutgoing pools to anything outside every pool", () => {
    expect(
      planNatOutgoing([
        pool("10.244.0.0/16", true),
        pool("203.0.113.0/24", false),
        pool("10.244.8.0/24", true),
        pool("fd00:244::/64", false),
      ]),
    ).toEqual({
      sources: ["10.244.0.0/16"],
      pools: ["10.244.0.0/16", "203.0.113.0/24", "fd00:244::/64"],
    });
  });
  it("coverPrefixes() drops duplicates, nested prefixes and text that is not a prefix", () => {
    expect(
      coverPrefixes([
        "10.0.0.0/8",
        "10.1.0.0/16",
        "10.0.0.0/8",
        "bad",
        "9.0.0.0/8",
        "::/0",
        "fd00::/8",
      ]),
    ).toEqual(["9.0.0.0/8", "10.0.0.0/8", "::/0"]);
  });
  it("coverPrefixes() takes one prefix in two spellings, or with host bits, as one element", () => {
    // nft refuses overlapping elements in an interval set, and with them the whole table.
    expect(coverPrefixes(["10.0.0.1/8", "10.0.0.0/8", "fd00:0::/8", "FD00::/8"])).toEqual([
      "10.0.0.0/8",
      "fd00::/8",
    ]);
  });
});

describe("planNat() during a move", () => {
  it("holds a binding back while another node's status says it still translates the IP", () => {
    const endpoint = {
      node: "node-2",
      namespace: "default",
      pod: "web",
      containerID: "c2",
      endpoint: "eth0",
      interfaceName: "calib",
      mac: "",
      ipNetworks: ["10.244.1.5/32"],
      ipNATs: [{ internalIP: "10.244.1.5", externalIP: "203.0.113.10" }],
      network: "k8s-pod-network",
      createdAt: "",
    };
    const claim = {
      ip: "203.0.113.10",
      namespace: "default",
      pod: "web",
      containerID: "c2",
      node: "node-2",
      internalIP: "10.244.1.5",
      createdAt: "",
    };
    const waiting = planNat(
      [endpoint],
      "node-2",
      [claim],
      undefined,
      undefined,
      new Map([["203.0.113.10", "node-1"]]),
    );
    expect(waiting.bindings).toEqual([]);
    expect(waiting.waiting).toEqual([
      { floatingIP: "203.0.113.10", pod: "default/web", node: "node-1" },
    ]);
    const free = planNat(
      [endpoint],
      "node-2",
      [claim],
      undefined,
      undefined,
      new Map([["203.0.113.10", "node-2"]]),
    );
    expect(free.bindings.map((b) => b.floating)).toEqual(["203.0.113.10"]);
    expect(free.waiting).toBeUndefined();
  });
});

describe("planNat() with records that ask for one map key twice", () => {
  const podC = endpoint({
    pod: "c",
    containerID: "ctr-c",
    interfaceName: "cali333333333cc",
    ipNetworks: ["10.244.0.5/32"],
    egress: true,
  });
  const cases: {
    desc: string;
    endpoints: WorkloadEndpoint[];
    claims: FloatingIpClaim[];
    /** `floating>pod`, ` egress` when marked. */
    bindings: string[];
    refused: NatPlan["refused"];
  }[] = [
    {
      desc: "keeps egress for the first of two endpoints with one pod address, binds both",
      endpoints: [
        endpoint({
          egress: true,
          ipNATs: [{ internalIP: "10.244.0.5", externalIP: "10.96.0.1" }],
        }),
        { ...podC, ipNATs: [{ internalIP: "10.244.0.5", externalIP: "10.96.0.2" }] },
      ],
      claims: [claim("10.96.0.1"), claim("10.96.0.2", "ctr-c")],
      bindings: ["10.96.0.1>10.244.0.5 egress", "10.96.0.2>10.244.0.5"],
      refused: [{ floatingIP: "10.96.0.2", pod: "shop/c", reason: "duplicate egress source" }],
    },
    {
      desc: "refuses the later endpoint's egress once per pod address, whatever its IP count",
      endpoints: [
        endpoint({
          egress: true,
          ipNATs: [{ internalIP: "10.244.0.5", externalIP: "10.96.0.1" }],
        }),
        {
          ...podC,
          ipNATs: [
            { internalIP: "10.244.0.5", externalIP: "10.96.0.2" },
            { internalIP: "10.244.0.5", externalIP: "10.96.0.3" },
          ],
        },
      ],
      claims: [claim("10.96.0.1"), claim("10.96.0.2", "ctr-c"), claim("10.96.0.3", "ctr-c")],
      bindings: ["10.96.0.1>10.244.0.5 egress", "10.96.0.2>10.244.0.5", "10.96.0.3>10.244.0.5"],
      refused: [{ floatingIP: "10.96.0.2", pod: "shop/c", reason: "duplicate egress source" }],
    },
    {
      desc: "lets a later endpoint egress when the first one did not opt in",
      endpoints: [
        endpoint({ ipNATs: [{ internalIP: "10.244.0.5", externalIP: "10.96.0.1" }] }),
        { ...podC, ipNATs: [{ internalIP: "10.244.0.5", externalIP: "10.96.0.2" }] },
      ],
      claims: [claim("10.96.0.1"), claim("10.96.0.2", "ctr-c")],
      bindings: ["10.96.0.1>10.244.0.5", "10.96.0.2>10.244.0.5 egress"],
      refused: [],
    },
    {
      desc: "binds a floating IP two endpoints of its holder ask for to the first one only",
      endpoints: [
        endpoint({ ipNATs: [{ internalIP: "10.244.0.5", externalIP: "10.96.0.1" }] }),
        endpoint({
          endpoint: "net1",
          interfaceName: "cali1111111111b",
          ipNetworks: ["10.245.0.5/32"],
          ipNATs: [{ internalIP: "10.245.0.5", externalIP: "10.96.0.1" }],
        }),
      ],
      claims: [claim("10.96.0.1")],
      bindings: ["10.96.0.1>10.244.0.5"],
      refused: [
        { floatingIP: "10.96.0.1", pod: "shop/a", reason: "requested by another endpoint" },
      ],
    },
    {
      desc: "binds one floating IP given in two spellings once",
      endpoints: [
        endpoint({
          ipNATs: [
            { internalIP: "fd00:244::5", externalIP: "fd00:96:0::1" },
            { internalIP: "fd00:244:0::5", externalIP: "FD00:96::1" },
          ],
        }),
      ],
      claims: [claim("fd00:96::1")],
      bindings: ["fd00:96::1>fd00:244::5"],
      refused: [],
    },
  ];
  for (const { desc, endpoints, claims, bindings, refused } of cases) {
    it(`planNat() ${desc}`, () => {
      const plan = planNat(endpoints, "node-1", claims);
      expect(
        plan.bindings.map((b) => `${b.floating}>${b.pod}${b.egress ? " egress" : ""}`),
      ).toEqual(bindings);
      expect(plan.refused).toEqual(refused);
      // Every map's keys are unique, so nft takes the table.
      const keys = {
        fip_dnat: plan.bindings.map((b) => b.floating),
        fip_hairpin: plan.bindings.map((b) => `${b.pod} . ${b.floating}`),
        fip_egress: plan.bindings.filter((b) => b.egress).map((b) => b.pod),
      };
      for (const list of Object.values(keys)) expect(new Set(list).size).toBe(list.length);
      // The same endpoint wins whatever order the records come in.
      expect(planNat([...endpoints].reverse(), "node-1", [...claims].reverse())).toEqual(plan);
    });
  }
});
