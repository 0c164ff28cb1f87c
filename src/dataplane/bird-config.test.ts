import { describe, expect, it } from "vitest";
import { expectGolden } from "../../test/support/golden.js";
import {
  BirdConfigError,
  parseBirdConfigureReply,
  parseBirdProtocols,
  renderBirdNodeConfig,
  renderBirdPeerNames,
  renderBirdRouterConfig,
  type BirdNeighbor,
  type BirdNodeConfig,
} from "./bird-config.js";

const testdata = new URL("./testdata/", import.meta.url);

const neighbors: BirdNeighbor[] = [
  { name: "tor", address: "192.168.77.254", asNumber: 65000 },
  { name: "node-b", address: "192.168.77.2", asNumber: 64512 },
  { name: "node-b.v6", address: "FD00:77:0::2", asNumber: 64512 },
  { name: "tor-v6", address: "fd00:77::fe", asNumber: 65000 },
];

const node: BirdNodeConfig = {
  routerId: "192.168.77.1",
  asNumber: 64512,
  neighbors,
  exports: ["203.0.113.7/32", "2001:db8:f::7/128", "10.250.1.0/26", "10.250.1.0/26", "10.9.0.0/26"],
};

describe("BIRD configs", () => {
  it("renderBirdNodeConfig() announces the exports to iBGP and eBGP neighbors of both families", () => {
    expectGolden(testdata, "bird-node", renderBirdNodeConfig(node));
  });
  it("renderBirdNodeConfig() without neighbors or exports is still a whole config", () => {
    expectGolden(
      testdata,
      "bird-node-empty",
      renderBirdNodeConfig({ routerId: "10.0.0.1", asNumber: 64512, neighbors: [], exports: [] }),
    );
  });
  it("renderBirdRouterConfig() imports from every neighbor and exports nothing", () => {
    expectGolden(
      testdata,
      "bird-router",
      renderBirdRouterConfig({
        routerId: "192.168.77.254",
        asNumber: 65000,
        neighbors: [
          { name: "node-a", address: "192.168.77.1", asNumber: 64512 },
          { name: "node-a-v6", address: "fd00:77::1", asNumber: 64512 },
        ],
      }),
    );
  });
  it("renderBirdNodeConfig() does not depend on the order of neighbors and exports", () => {
    const reversed = {
      ...node,
      neighbors: [...node.neighbors].reverse(),
      exports: [...node.exports].reverse(),
    };
    expect(renderBirdNodeConfig(reversed)).toBe(renderBirdNodeConfig(node));
  });
  it("renderBirdNodeConfig() writes each export once, in canonical form", () => {
    const config = renderBirdNodeConfig({
      ...node,
      exports: ["2001:DB8:F:0::7/128", "2001:db8:f::7/128", "10.250.1.0/26", "10.250.1.0/26"],
    });
    expect(config.match(/^\troute .*$/gm)).toEqual([
      "\troute 10.250.1.0/26 blackhole;",
      "\troute 2001:db8:f::7/128 blackhole;",
    ]);
  });
  it("renderBirdNodeConfig() keeps quotes and line breaks of names out of strings and comments", () => {
    const config = renderBirdNodeConfig({
      ...node,
      neighbors: [{ name: 'evil"\n}\nprotocol x', address: "192.168.77.9", asNumber: 64512 }],
    });
    expect(config).toContain('\tdescription "evil__}_protocol x";\n');
    expect(config).toContain("# evil__}_protocol x: iBGP\n");
    expect(config).toContain("protocol bgp peer_evil____protocol_x from buoy_peer {\n");
  });

  const invalid: { desc: string; change: Partial<BirdNodeConfig>; error: string }[] = [
    {
      desc: "an IPv6 router ID",
      change: { routerId: "fd00::1" },
      error: "router ID 'fd00::1' is not an IPv4 address",
    },
    {
      desc: "AS 0",
      change: { asNumber: 0 },
      error: "AS number 0 of the node is not in 1-4294967295",
    },
    {
      desc: "a neighbor's AS above 32 bits",
      change: { neighbors: [{ name: "x", address: "10.0.0.2", asNumber: 2 ** 32 }] },
      error: "AS number 4294967296 of neighbor x is not in 1-4294967295",
    },
    {
      desc: "a neighbor given by name",
      change: { neighbors: [{ name: "x", address: "node-b.local", asNumber: 1 }] },
      error: "neighbor x: 'node-b.local' is not an IP address",
    },
    {
      desc: "two neighbors with one name",
      change: {
        neighbors: [
          { name: "x", address: "10.0.0.2", asNumber: 1 },
          { name: "x", address: "10.0.0.3", asNumber: 1 },
        ],
      },
      error: "neighbor name x is given twice",
    },
    {
      desc: "two neighbors with one address",
      change: {
        neighbors: [
          { name: "x", address: "fd00::2", asNumber: 1 },
          { name: "y", address: "fd00:0::2", asNumber: 1 },
        ],
      },
      error: "neighbors x and y have the same address fd00::2",
    },
    {
      desc: "the node itself as a neighbor",
      change: { neighbors: [{ name: "me", address: "192.168.77.1", asNumber: 64512 }] },
      error: "neighbor me has the router ID's address 192.168.77.1",
    },
    {
      desc: "an export with host bits",
      change: { exports: ["10.250.1.1/26"] },
      error: "exported prefix '10.250.1.1/26' is not a CIDR without host bits",
    },
    {
      desc: "an export without length",
      change: { exports: ["203.0.113.7"] },
      error: "exported prefix '203.0.113.7' is not a CIDR without host bits",
    },
  ];
  for (const { desc, change, error } of invalid) {
    it(`renderBirdNodeConfig() refuses ${desc}`, () => {
      expect(() => renderBirdNodeConfig({ ...node, ...change })).toThrow(
        new BirdConfigError(error),
      );
    });
  }
});

describe("renderBirdPeerNames()", () => {
  const cases: { desc: string; names: string[]; want: string[] }[] = [
    { desc: "keeps identifier characters", names: ["tor_1"], want: ["peer_tor_1"] },
    {
      desc: "turns '-' and '.' of node names into '_'",
      names: ["node-b.example"],
      want: ["peer_node_b_example"],
    },
    {
      desc: "hashes names that collide once turned, and only those",
      names: ["node-b", "node_b", "node-c"],
      want: ["peer_node_b_05c3b726", "peer_node_b_2e40c79c", "peer_node_c"],
    },
    {
      desc: "cuts long names and hashes them, within BIRD's 64 characters",
      names: ["n".repeat(253)],
      want: [`peer_${"n".repeat(34)}_80439001`],
    },
  ];
  for (const { desc, names, want } of cases) {
    it(`renderBirdPeerNames() ${desc}`, () => {
      const peers = renderBirdPeerNames(names.map((name) => ({ name })));
      expect(names.map((name) => peers.get(name))).toEqual(want);
      for (const id of peers.values()) expect(id).toMatch(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/);
    });
  }
});

describe("birdc replies", () => {
  // Captured from BIRD 2.0.12 (Debian bookworm).
  const protocols = [
    "BIRD 2.0.12 ready.",
    "Name       Proto      Table      State  Since         Info",
    "buoy_device Device     ---        up     13:47:39.306  ",
    "buoy_exports4 Static     master4    up     13:47:39.306  ",
    "buoy_kernel4 Kernel     master4    up     13:47:39.306  ",
    "peer_node_b BGP        ---        up     13:47:43.296  Established   ",
    "peer_tor   BGP        ---        start  13:47:42.314  Active        Socket: Connection refused",
    "peer_tor6  BGP        ---        start  2025-11-20 13:47:42  Connect       ",
    "",
  ].join("\n");

  it("parseBirdProtocols() lists BGP protocols only, with state and info", () => {
    expect(parseBirdProtocols(protocols)).toEqual([
      { name: "peer_node_b", state: "up", info: "Established" },
      { name: "peer_tor", state: "start", info: "Active Socket: Connection refused" },
      { name: "peer_tor6", state: "start", info: "Connect" },
    ]);
  });
  it("parseBirdProtocols() is empty without BGP protocols", () => {
    expect(parseBirdProtocols("BIRD 2.0.12 ready.\nName Proto Table State Since Info\n")).toEqual(
      [],
    );
  });

  const replies: { desc: string; output: string; want: string | undefined }[] = [
    {
      desc: "takes Reconfigured",
      output:
        "0001 BIRD 2.0.12 ready.\n0002-Reading configuration from /b.conf\n0003 Reconfigured\n",
      want: undefined,
    },
    {
      desc: "takes Reconfiguration in progress (sessions restarting)",
      output:
        "0001 BIRD 2.0.12 ready.\n0002-Reading configuration from /b.conf\n0004 Reconfiguration in progress\n",
      want: undefined,
    },
    {
      desc: "returns a parse error without its code",
      output:
        "0001 BIRD 2.0.12 ready.\n0002-Reading configuration from /b.conf\n8002 /b.conf:113:1 syntax error, unexpected GARBAGE\n",
      want: "/b.conf:113:1 syntax error, unexpected GARBAGE",
    },
    {
      desc: "returns a reconfiguration ignored during shutdown",
      output:
        "0001 BIRD 2.0.12 ready.\n0002-Reading configuration from /b.conf\n0006 Reconfiguration ignored, shutting down\n",
      want: "Reconfiguration ignored, shutting down",
    },
    {
      desc: "says so when there is no reply",
      output: "",
      want: "birdc gave no reply: ",
    },
  ];
  for (const { desc, output, want } of replies) {
    it(`parseBirdConfigureReply() ${desc}`, () => {
      expect(parseBirdConfigureReply(output)).toBe(want);
    });
  }
});
