import { describe, expect, it } from "vitest";
import {
  NO_VXLAN,
  NO_VXLAN_KERNEL,
  parseLocalSubnets,
  parseVxlanDevices,
  parseVxlanForwarding,
  parseVxlanNeighbours,
  renderVxlanChanges,
  vxlanDevice,
  type VxlanKernelState,
  type VxlanPlan,
} from "./vxlan.js";

const device4 = vxlanDevice("node-1", 4, "192.168.201.11");
const device6 = vxlanDevice("node-1", 6, "fd00:201::11");
const peer = { family: 4 as const, address: "192.168.202.12", mac: "02:00:00:00:00:12" };
const peer6 = { family: 6 as const, address: "fd00:202::12", mac: "02:00:00:00:00:13" };
const plan: VxlanPlan = { devices: [device4, device6], peers: [peer, peer6] };
const held = (extra: Partial<VxlanKernelState> = {}): VxlanKernelState => ({
  devices: [
    { ...device4, intact: true },
    { ...device6, intact: true },
  ],
  neighbours: [peer, peer6],
  forwarding: [peer, peer6],
  ...extra,
});

describe("renderVxlanChanges()", () => {
  it("makes the devices and every peer's two entries on a node that has none", () => {
    expect(renderVxlanChanges(plan, NO_VXLAN_KERNEL)).toEqual({
      links: [
        `link add vxlan.buoy type vxlan id 4100 local 192.168.201.11 dstport 4789 nolearning`,
        `link set vxlan.buoy address ${device4.mac} up`,
        `link add vxlan6.buoy type vxlan id 6100 local fd00:201::11 dstport 4789 nolearning`,
        `link set vxlan6.buoy address ${device6.mac} up`,
        `neigh replace 192.168.202.12 lladdr 02:00:00:00:00:12 dev vxlan.buoy nud permanent`,
        `neigh replace fd00:202::12 lladdr 02:00:00:00:00:13 dev vxlan6.buoy nud permanent`,
        "",
      ].join("\n"),
      fdb: [
        "fdb replace 02:00:00:00:00:12 dev vxlan.buoy dst 192.168.202.12 self permanent",
        "fdb replace 02:00:00:00:00:13 dev vxlan6.buoy dst fd00:202::12 self permanent",
        "",
      ].join("\n"),
      remade: [4, 6],
    });
  });

  it("writes nothing when the kernel holds the plan", () => {
    expect(renderVxlanChanges(plan, held())).toEqual({ links: "", fdb: "", remade: [] });
  });

  it("deletes a peer that went, repairs half a peer, and replaces what is not permanent", () => {
    const gone = { family: 4 as const, address: "192.168.203.14", mac: "02:00:00:00:00:14" };
    const changes = renderVxlanChanges(
      plan,
      held({
        neighbours: [gone, { ...peer6, stale: true }],
        forwarding: [gone, peer, peer6],
      }),
    );
    expect(changes.links.split("\n")).toEqual([
      "neigh del 192.168.203.14 dev vxlan.buoy",
      "neigh del fd00:202::12 dev vxlan6.buoy",
      "neigh replace 192.168.202.12 lladdr 02:00:00:00:00:12 dev vxlan.buoy nud permanent",
      "neigh replace fd00:202::12 lladdr 02:00:00:00:00:13 dev vxlan6.buoy nud permanent",
      "",
    ]);
    expect(changes.fdb).toBe("fdb del 02:00:00:00:00:14 dev vxlan.buoy dst 192.168.203.14 self\n");
    expect(changes.remade).toEqual([]);
  });

  it("makes a device again when it is down, learning or made otherwise, with its entries", () => {
    const changes = renderVxlanChanges(
      plan,
      held({
        devices: [
          { ...device4, intact: false },
          { ...device6, vni: 4096, intact: true },
        ],
      }),
    );
    expect(changes.remade).toEqual([4, 6]);
    expect(changes.links).toContain("link del vxlan.buoy\n");
    expect(changes.links).toContain("link del vxlan6.buoy\n");
    expect(changes.links).toContain("neigh replace 192.168.202.12");
    expect(changes.fdb).toContain("fdb replace 02:00:00:00:00:13");
  });

  it("removes every device when vxlan is not the routing mode (their entries go with them)", () => {
    expect(renderVxlanChanges(NO_VXLAN, held())).toEqual({
      links: "link del vxlan.buoy\nlink del vxlan6.buoy\n",
      fdb: "",
      remade: [],
    });
  });
});

describe("reading the kernel", () => {
  it("reads buoy's devices from ip -json -details link, and no one else's", () => {
    const link = (ifname: string, data: Record<string, unknown>, flags = ["UP"]) => ({
      ifname,
      flags,
      address: "02:11:22:33:44:55",
      linkinfo: {
        info_kind: "vxlan",
        info_data: { id: 4100, port: 4789, learning: false, ...data },
      },
    });
    expect(
      parseVxlanDevices([
        link("vxlan.calico", { id: 4096, local: "192.168.201.11" }),
        link("vxlan.buoy", { local: "192.168.201.11" }),
        link("vxlan6.buoy", { id: 6100, local6: "fd00:201:0::11", learning: true }),
      ]),
    ).toEqual([
      { ...device4, mac: "02:11:22:33:44:55", intact: true },
      { ...device6, mac: "02:11:22:33:44:55", intact: false },
    ]);
    expect(
      parseVxlanDevices([link("vxlan.buoy", { local: "192.168.201.11" }, [])])[0]?.intact,
    ).toBe(false);
    expect(parseVxlanDevices("nonsense")).toEqual([]);
  });

  it("reads neighbours and forwarding entries, marking what is not permanent", () => {
    expect(
      parseVxlanNeighbours(4, [
        { dst: "192.168.202.12", lladdr: "02:00:00:00:00:12", state: ["PERMANENT"] },
        { dst: "192.168.203.14", lladdr: "02:00:00:00:00:14", state: ["REACHABLE"] },
        { dst: "192.168.203.15", state: ["FAILED"] },
        { dst: "not an address" },
      ]),
    ).toEqual([
      peer,
      { family: 4, address: "192.168.203.14", mac: "02:00:00:00:00:14", stale: true },
      { family: 4, address: "192.168.203.15", mac: "", stale: true },
    ]);
    expect(
      parseVxlanForwarding(6, [
        { mac: "02:00:00:00:00:13", dst: "fd00:202::12", flags: ["self"], state: "permanent" },
        { mac: "02:00:00:00:00:14", dst: "fd00:202::14", flags: ["self"] },
        { mac: "00:00:00:00:00:00", flags: ["self"], state: "permanent" },
      ]),
    ).toEqual([
      peer6,
      { family: 6, address: "fd00:202::14", mac: "02:00:00:00:00:14", stale: true },
    ]);
  });
});

describe("parseLocalSubnets()", () => {
  it("gives each global address's network, leaving out link-local addresses and buoy's devices", () => {
    const link = (ifname: string, addr_info: unknown[]) => ({ ifname, addr_info });
    expect(
      parseLocalSubnets([
        link("lo", [{ local: "127.0.0.1", prefixlen: 8, scope: "host" }]),
        link("eth0", [
          { local: "192.168.201.11", prefixlen: 24, scope: "global" },
          { local: "fd00:201::11", prefixlen: 64, scope: "global" },
          { local: "fe80::1", prefixlen: 64, scope: "link" },
        ]),
        link("vxlan.buoy", [{ local: "10.244.1.0", prefixlen: 32, scope: "global" }]),
        link("eth1", [{ local: "not an address", prefixlen: 24, scope: "global" }]),
      ]),
    ).toEqual(["192.168.201.0/24", "fd00:201::/64"]);
  });
});
