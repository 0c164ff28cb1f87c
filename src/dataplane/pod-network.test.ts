import { describe, expect, it } from "vitest";
import { expectGolden } from "../../test/support/golden.js";
import { ipIn } from "./shell/linux-pod-network.js";
import {
  hostInterfaceName,
  linkAddArgs,
  podMacAddress,
  renderHostSetup,
  renderPodSetup,
  type PodNetworkPlan,
} from "./pod-network.js";

const testdata = new URL("./testdata/", import.meta.url);

const dualStack: PodNetworkPlan = {
  netns: "/var/run/netns/cni-1234",
  ifname: "eth0",
  hostIfname: "cali68caf03a5f4",
  mtu: 1440,
  addresses: ["10.244.0.5", "fd00:244::5"],
  podMac: "0a:58:0a:f4:00:05",
};

describe("pod network scripts", () => {
  it("renderHostSetup() creates the pair into the pod and routes each address", () => {
    expectGolden(testdata, "host-setup-dual-stack", renderHostSetup(dualStack));
  });
  it("renderPodSetup() sets addresses, gateway neighbours and default routes", () => {
    expectGolden(testdata, "pod-setup-dual-stack", renderPodSetup(dualStack));
  });
  const badNames: { desc: string; ifname: string }[] = [
    { desc: "a second script line", ifname: "eth0\nlink set lo down" },
    { desc: "extra words", ifname: "eth0 up" },
    { desc: "an empty name", ifname: "" },
  ];
  for (const { desc, ifname } of badNames) {
    it(`renderPodSetup() never renders an interface name with ${desc}`, () => {
      expect(() => renderPodSetup({ ...dualStack, ifname })).toThrow(/cannot render pod setup/);
    });
  }
  it("renderPodSetup() for IPv4 only has no IPv6 lines", () => {
    expectGolden(
      testdata,
      "pod-setup-ipv4",
      renderPodSetup({ ...dualStack, addresses: ["10.244.0.5"] }),
    );
  });
  it("linkAddArgs() creates the pair with both MACs, the MTU, and the peer in the pod", () => {
    expect(linkAddArgs(dualStack).join(" ")).toBe(
      "link add cali68caf03a5f4 mtu 1440 address ee:ee:ee:ee:ee:ee type veth peer name eth0 mtu 1440 address 0a:58:0a:f4:00:05 netns /var/run/netns/cni-1234",
    );
  });
  it("podMacAddress() is a stable, locally administered unicast MAC", async () => {
    const mac = await podMacAddress("abc", "eth0");
    expect(mac).toBe(await podMacAddress("abc", "eth0"));
    expect(mac).not.toBe(await podMacAddress("abc", "net1"));
    expect(mac).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    expect(parseInt(mac.slice(0, 2), 16) & 0x03).toBe(0x02);
  });
  it("hostInterfaceName() matches Calico's sha1 naming", async () => {
    // sha1("default.web") begins 68caf03a5f4…: the name Calico gives pod default/web.
    expect(await hostInterfaceName("default", "web", "abc")).toBe("cali68caf03a5f4");
    expect(await hostInterfaceName(undefined, undefined, "abc")).toMatch(/^cali[0-9a-f]{11}$/);
    expect((await hostInterfaceName(undefined, undefined, "abc")).length).toBe(15);
  });
});

describe("ipIn()", () => {
  const cases = [
    { desc: "a named namespace", netns: "/var/run/netns/cni-1", want: ["ip", "-n", "cni-1"] },
    { desc: "a /run/netns path", netns: "/run/netns/cni-2", want: ["ip", "-n", "cni-2"] },
    {
      desc: "a process's namespace",
      netns: "/proc/42/ns/net",
      want: ["nsenter", "--net=/proc/42/ns/net", "ip"],
    },
    {
      desc: "a nested path",
      netns: "/var/run/netns/a/b",
      want: ["nsenter", "--net=/var/run/netns/a/b", "ip"],
    },
  ];
  for (const { desc, netns, want } of cases) {
    it(`ipIn() uses ${want[0]} for ${desc}`, () => {
      expect(ipIn(netns)).toEqual(want);
    });
  }
});
