import { describe, expect, it } from "vitest";
import { parseIpMonitorLine, parseNftMonitorLine } from "./kernel-events.js";

// Lines as nft 1.0.6 and iproute2 6.1 print them (captured in a namespace).
describe("parseNftMonitorLine", () => {
  it("reads an element of buoy's maps, added or deleted, with its value", () => {
    expect(
      parseNftMonitorLine(
        '{"add": {"element": {"family": "ip", "table": "buoy", "name": "fip_dnat", "elem": {"set": [["11.0.0.1", "10.244.0.5"]]}}}}',
      ),
    ).toEqual([
      {
        kind: "element",
        family: 4,
        map: "fip_dnat",
        key: "11.0.0.1",
        value: "10.244.0.5",
        present: true,
      },
    ]);
    expect(
      parseNftMonitorLine(
        '{"delete": {"element": {"family": "ip6", "table": "buoy", "name": "fip_hairpin", "elem": {"set": [[{"concat": ["fd00::5", "2001:db8:0::1"]}, "2001:db8::1"]]}}}}',
      ),
    ).toEqual([
      {
        kind: "element",
        family: 6,
        map: "fip_hairpin",
        key: "fd00::5 . 2001:db8::1",
        value: "2001:db8::1",
        present: false,
      },
    ]);
  });

  it("leaves other tables alone", () => {
    expect(
      parseNftMonitorLine(
        '{"add": {"element": {"family": "ip", "table": "t", "name": "m", "elem": {"set": [["11.0.0.1", "1.1.1.1"]]}}}}',
      ),
    ).toEqual([]);
    expect(
      parseNftMonitorLine('{"add": {"table": {"family": "inet", "name": "buoy", "handle": 3}}}'),
    ).toEqual([]);
  });

  it("calls anything else in buoy's tables a change to read back", () => {
    for (const line of [
      '{"delete": {"table": {"family": "ip", "name": "buoy", "handle": 1}}}',
      '{"add": {"rule": {"family": "ip", "table": "buoy", "chain": "prerouting", "handle": 9, "expr": []}}}',
      '{"add": {"element": {"family": "ip", "table": "buoy", "name": "nat_sources", "elem": {"set": [{"prefix": {"addr": "10.0.0.0", "len": 8}}]}}}}',
      '{"add": {"element": {"family": "ip", "table": "buoy", "name": "fip_dnat", "elem": {"set": [["not an address", "10.244.0.5"]]}}}}',
      '{"add": {"element": {"family": "ip6", "table": "buoy", "name": "fip_dnat", "elem": {"set": [["11.0.0.1", "10.244.0.5"]]}}}}',
      '{"add": "buoy"',
    ]) {
      expect(parseNftMonitorLine(line), line).toEqual([{ kind: "table" }]);
    }
  });
});

describe("parseIpMonitorLine", () => {
  it("reads buoy's routes in the main table by routeKey", () => {
    expect(parseIpMonitorLine("[ROUTE]11.0.0.1 dev lo proto 202 scope link metric 10 ")).toEqual([
      { kind: "route", key: "11.0.0.1/32 dev lo", present: true },
    ]);
    expect(
      parseIpMonitorLine("[ROUTE]Deleted 11.0.0.9 via 127.0.0.1 dev lo proto 202 metric 10"),
    ).toEqual([{ kind: "route", key: "11.0.0.9/32 via 127.0.0.1", present: false }]);
    expect(parseIpMonitorLine("[ROUTE]blackhole 12.0.0.0/24 proto 202 metric 10")).toEqual([
      { kind: "route", key: "blackhole 12.0.0.0/24", present: true },
    ]);
    expect(parseIpMonitorLine("[ROUTE]2001:db8::1 dev lo proto 202 metric 10 pref medium")).toEqual(
      [{ kind: "route", key: "2001:db8::1/128 dev lo", present: true }],
    );
  });

  it("leaves other protocols' routes and other tables alone", () => {
    expect(parseIpMonitorLine("[ROUTE]11.0.0.1 dev lo proto bird metric 32")).toEqual([]);
    expect(parseIpMonitorLine("[ROUTE]11.0.0.1 dev lo proto 2020 metric 32")).toEqual([]);
    expect(
      parseIpMonitorLine("[ROUTE]11.0.0.2 dev lo table 100 proto 202 scope link metric 10"),
    ).toEqual([]);
    expect(
      parseIpMonitorLine("[NEIGH]10.0.0.1 dev eth0 lladdr 00:11:22:33:44:55 REACHABLE"),
    ).toEqual([]);
  });

  it("reads interfaces by index, also renamed and deleted", () => {
    expect(
      parseIpMonitorLine(
        "[LINK]3: zqa@zqb: <BROADCAST,MULTICAST,M-DOWN> mtu 1500 qdisc noop state DOWN group default \\    link/ether fe:a7:82:16:2b:de brd ff:ff:ff:ff:ff:ff",
      ),
    ).toEqual([{ kind: "link", index: 3, name: "zqa", present: true }]);
    expect(parseIpMonitorLine("[LINK]Deleted 3: zqc@NONE: <BROADCAST,MULTICAST> mtu 1500")).toEqual(
      [{ kind: "link", index: 3, name: "zqc", present: false }],
    );
    expect(parseIpMonitorLine("[LINK]1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536")).toEqual([
      { kind: "link", index: 1, name: "lo", present: true },
    ]);
  });
});
