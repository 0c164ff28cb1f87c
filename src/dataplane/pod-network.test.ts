import { readFileSync, writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  hostInterfaceName,
  renderHostSetup,
  renderPodSetup,
  type PodNetworkPlan,
} from "./pod-network.js";

/** Compares with testdata/<name>.golden; UPDATE_GOLDEN=1 rewrites it. */
function expectGolden(name: string, actual: string): void {
  const path = new URL(`./testdata/${name}.golden`, import.meta.url);
  if (process.env.UPDATE_GOLDEN) writeFileSync(path, actual);
  expect(actual).toBe(readFileSync(path, "utf8"));
}

const dualStack: PodNetworkPlan = {
  netns: "/var/run/netns/cni-1234",
  ifname: "eth0",
  hostIfname: "cali68caf03a5f4",
  mtu: 1440,
  addresses: ["10.244.0.5", "fd00:244::5"],
};

describe("pod network scripts", () => {
  it("renderHostSetup() creates the pair into the pod and routes each address", () => {
    expectGolden("host-setup-dual-stack", renderHostSetup(dualStack));
  });
  it("renderPodSetup() sets addresses, gateway neighbours and default routes", () => {
    expectGolden("pod-setup-dual-stack", renderPodSetup(dualStack));
  });
  it("renderPodSetup() for IPv4 only has no IPv6 lines", () => {
    expectGolden("pod-setup-ipv4", renderPodSetup({ ...dualStack, addresses: ["10.244.0.5"] }));
  });
  it("hostInterfaceName() matches Calico's sha1 naming", () => {
    // sha1("default.web") begins 68caf03a5f4…: the name Calico gives pod default/web.
    expect(hostInterfaceName("default", "web", "abc")).toBe("cali68caf03a5f4");
    expect(hostInterfaceName(undefined, undefined, "abc")).toMatch(/^cali[0-9a-f]{11}$/);
    expect(hostInterfaceName("default", "web", "abc").length).toBeLessThanOrEqual(15);
  });
});
