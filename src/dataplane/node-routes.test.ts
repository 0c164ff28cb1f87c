import { describe, expect, it } from "vitest";
import {
  diffByKey,
  parseIpRouteLine,
  parseIpRoutes,
  renderRouteChanges,
  routeKey,
  type NodeRoute,
} from "./node-routes.js";

const dev = (dst: string, name: string): NodeRoute => ({
  family: dst.includes(":") ? 6 : 4,
  dst,
  dev: name,
});

describe("node routes", () => {
  it("renderRouteChanges() deletes before it adds, with buoy's protocol", () => {
    expect(
      renderRouteChanges(
        [dev("10.96.0.1/32", "calib"), { family: 4, dst: "10.244.1.0/26", via: "192.168.200.12" }],
        [
          dev("10.96.0.1/32", "calia"),
          dev("fd00::1/128", "calia"),
          { family: 4, dst: "10.244.0.0/26", blackhole: true },
        ],
      ),
    ).toBe(
      "route del 10.96.0.1/32 dev calia proto 202 metric 10\n" +
        "route del fd00::1/128 dev calia proto 202 metric 10\n" +
        "route del blackhole 10.244.0.0/26 proto 202 metric 10\n" +
        "route replace 10.96.0.1/32 dev calib proto 202 metric 10\n" +
        "route replace 10.244.1.0/26 via 192.168.200.12 proto 202 metric 10\n",
    );
  });
  it("renderRouteChanges() is empty when nothing changes", () => {
    expect(renderRouteChanges([], [])).toBe("");
  });
  it("diffByKey() sees a move to another interface as one removal and one addition", () => {
    const { added, removed } = diffByKey(
      [dev("10.96.0.1/32", "calib"), dev("10.96.0.2/32", "calic")],
      [dev("10.96.0.1/32", "calia"), dev("10.96.0.2/32", "calic")],
      routeKey,
    );
    expect(added).toEqual([dev("10.96.0.1/32", "calib")]);
    expect(removed).toEqual([dev("10.96.0.1/32", "calia")]);
  });
  it("parseIpRoutes() reads dev, via and blackhole routes as ip -json lists them", () => {
    const listing = [
      { dst: "203.0.113.10", dev: "cali0123456789a", protocol: "202", scope: "link", flags: [] },
      { dst: "10.244.1.0/26", gateway: "192.168.200.12", dev: "eth0", protocol: "202", flags: [] },
      { type: "blackhole", dst: "10.244.0.0/26", protocol: "202", flags: [] },
      { dst: "not an address", dev: "eth0" },
    ];
    expect(parseIpRoutes(listing, 4)).toEqual([
      dev("203.0.113.10/32", "cali0123456789a"),
      { family: 4, dst: "10.244.1.0/26", via: "192.168.200.12" },
      { family: 4, dst: "10.244.0.0/26", blackhole: true },
    ]);
    expect(
      parseIpRoutes([{ dst: "fd00:244::/122", gateway: "FD00:200::12", dev: "eth0" }], 6),
    ).toEqual([{ family: 6, dst: "fd00:244::/122", via: "fd00:200::12" }]);
    expect(parseIpRoutes("garbage", 4)).toEqual([]);
  });

  const lines: { desc: string; line: string; family: 4 | 6; route: NodeRoute | undefined }[] = [
    {
      desc: "a floating IP's route to its pod",
      line: "203.0.113.10 dev cali0123456789a proto 202 scope link metric 10 ",
      family: 4,
      route: dev("203.0.113.10/32", "cali0123456789a"),
    },
    {
      desc: "another node's block",
      line: "10.244.1.0/26 via 192.168.200.12 dev eth0 proto 202 metric 10",
      family: 4,
      route: { family: 4, dst: "10.244.1.0/26", via: "192.168.200.12" },
    },
    {
      desc: "a blackhole",
      line: "blackhole 10.244.0.0/26 proto 202 metric 10",
      family: 4,
      route: { family: 4, dst: "10.244.0.0/26", blackhole: true },
    },
    {
      desc: "IPv6, gateway made canonical",
      line: "fd00:244::/122 via FD00:200::12 dev eth0 proto 202 metric 10 pref medium",
      family: 6,
      route: { family: 6, dst: "fd00:244::/122", via: "fd00:200::12" },
    },
    {
      desc: "a multipath route, skipped as in the JSON",
      line: "10.0.0.0/24 proto 202 \tnexthop via 192.168.0.1 dev eth0 weight 1",
      family: 4,
      route: undefined,
    },
    {
      desc: "the default route",
      line: "default via 192.168.0.1 dev eth0",
      family: 4,
      route: undefined,
    },
    { desc: "an empty line", line: "  ", family: 4, route: undefined },
    {
      desc: "a route through the VXLAN device",
      line: "10.244.1.0/26 via 192.168.10.2 dev vxlan.buoy metric 10 onlink ",
      family: 4,
      route: {
        family: 4,
        dst: "10.244.1.0/26",
        via: "192.168.10.2",
        dev: "vxlan.buoy",
        onlink: true,
      },
    },
    {
      desc: "an IPv6 route through the VXLAN device",
      line: "fd00:244::40/122 via fd10::2 dev vxlan6.buoy metric 10 onlink pref medium",
      family: 6,
      route: {
        family: 6,
        dst: "fd00:244::40/122",
        via: "fd10::2",
        dev: "vxlan6.buoy",
        onlink: true,
      },
    },
  ];
  for (const { desc, line, family, route } of lines) {
    it(`parseIpRouteLine() reads ${desc} as ip -o route show prints it`, () => {
      expect(parseIpRouteLine(line, family)).toEqual(route);
    });
  }
});
