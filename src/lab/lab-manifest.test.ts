import { describe, expect, it } from "vitest";
import { expectGolden } from "../../test/support/golden.js";
import { parseManifests } from "../cli/manifest.js";
import { renderLabManifest } from "./lab-manifest.js";
import { planLabTopology } from "./topology.js";

const testdata = new URL("./testdata/", import.meta.url);

describe("the lab's datastore manifest", () => {
  it("renderLabManifest() has pools, nodes and the router as BGP peer of each family", () => {
    const topology = planLabTopology({ prefix: "lab1", nodes: 2, routing: "bgp", ipv6: true });
    expectGolden(
      testdata,
      "lab-manifest-bgp-dual-stack",
      renderLabManifest(topology, { bgpPeers: true }),
    );
  });

  it.each([
    { desc: "direct routing", routing: "direct" as const, bgpPeers: true },
    { desc: "a buoy without the BGPPeer kind", routing: "bgp" as const, bgpPeers: false },
  ])("renderLabManifest() leaves out BGP peers with $desc", ({ routing, bgpPeers }) => {
    const topology = planLabTopology({ prefix: "lab1", nodes: 1, routing, ipv6: false });
    expect(renderLabManifest(topology, { bgpPeers })).not.toContain("BGPPeer");
  });

  it("renderLabManifest() without BGP peers is a manifest `buoy apply` accepts", () => {
    const topology = planLabTopology({ prefix: "lab1", nodes: 2, routing: "direct", ipv6: true });
    const resources = parseManifests(renderLabManifest(topology, { bgpPeers: false }));
    expect(resources.map((resource) => resource.kind)).toEqual([
      "IPPool",
      "IPPool",
      "IPPool",
      "IPPool",
      "Node",
      "Node",
    ]);
  });
});
