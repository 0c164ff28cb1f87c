import { describe, expect, it } from "vitest";
import { parseRouteTargets } from "./route-targets.js";
import { planLabTopology } from "./topology.js";

const { nodes } = planLabTopology({ prefix: "lab1", nodes: 11, routing: "bgp", ipv6: true });

describe("route targets", () => {
  it.each([
    { desc: "no route", stdout: "[]\n", expected: [] },
    { desc: "no output at all", stdout: "", expected: [] },
    {
      desc: "a route via a node's IPv4 address (BIRD's, at the router)",
      stdout:
        '[{"dst":"203.0.113.10","gateway":"192.168.200.11","dev":"lab1-up","protocol":"bird","metric":32,"flags":[]}]',
      expected: ["node-1"],
    },
    {
      desc: "a route via a node's IPv6 address",
      stdout:
        '[{"dst":"2001:db8:f100::10","gateway":"fd00:200::12","dev":"lab1-up","protocol":"bird","flags":[]}]',
      expected: ["node-2"],
    },
    {
      desc: "ECMP: every next hop, in node order",
      stdout:
        '[{"dst":"203.0.113.10","flags":[],"nexthops":[{"gateway":"192.168.200.21","dev":"lab1-up","weight":1,"flags":[]},{"gateway":"192.168.200.12","dev":"lab1-up","weight":1,"flags":[]}]}]',
      expected: ["node-2", "node-11"],
    },
    {
      desc: "two routes to one node count once",
      stdout:
        '[{"dst":"203.0.113.10","gateway":"192.168.200.11","metric":32},{"dst":"203.0.113.10","gateway":"192.168.200.11","metric":100}]',
      expected: ["node-1"],
    },
    {
      desc: "the holder's own route to the pod's interface",
      stdout: '[{"dst":"203.0.113.10","dev":"cali68caf03a5f4","scope":"link","flags":[]}]',
      expected: ["dev cali68caf03a5f4"],
    },
    {
      desc: "a gateway that is no node's address",
      stdout: '[{"dst":"203.0.113.10","gateway":"192.168.200.99","dev":"lab1-up"}]',
      expected: ["192.168.200.99"],
    },
    {
      desc: "a blackhole",
      stdout: '[{"type":"blackhole","dst":"203.0.113.10","flags":[]}]',
      expected: ["blackhole"],
    },
  ])("parseRouteTargets() $desc", ({ stdout, expected }) => {
    expect(parseRouteTargets(stdout, nodes)).toEqual(expected);
  });
});
