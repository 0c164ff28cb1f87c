import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { renderLabConflist, SEED_CNI_NETWORK_CONFIG } from "./seed-conflist.js";

describe("the seed conflist, as the lab renders it", () => {
  it("SEED_CNI_NETWORK_CONFIG is the seed's fixture, unchanged", () => {
    const fixture = readFileSync(
      new URL("../../test/fixtures/seed-cni-network-config.json", import.meta.url),
      "utf8",
    );
    expect(SEED_CNI_NETWORK_CONFIG.trim()).toBe(fixture.trim());
  });

  it("renderLabConflist() points calico at the lab's etcd and keeps portmap chained after it", () => {
    const conflist = renderLabConflist({
      nodeName: "node-2",
      etcdEndpoint: "http://192.168.200.1:2379",
      logFilePath: "/run/buoy-lab/lab1/node-2/cni.log",
    });
    expect(conflist.name).toBe("k8s-pod-network");
    expect(conflist.plugins.map((plugin) => plugin.type)).toEqual(["calico", "portmap"]);
    expect(conflist.plugins[0]).toEqual({
      type: "calico",
      log_level: "info",
      datastore_type: "etcdv3",
      etcd_endpoints: "http://192.168.200.1:2379",
      log_file_path: "/run/buoy-lab/lab1/node-2/cni.log",
      nodename: "node-2",
      mtu: 1500,
      ipam: { type: "calico-ipam" },
      policy: { type: "k8s" },
      feature_control: { floating_ips: true },
      capabilities: { "io.kubernetes.cri.pod-annotations": true },
    });
    expect(conflist.plugins[1]).toEqual({
      type: "portmap",
      snat: true,
      capabilities: { portMappings: true },
    });
  });

  it("renderLabConflist() for dual-stack pods has the IPAM assign both families", () => {
    const conflist = renderLabConflist({
      nodeName: "node-1",
      etcdEndpoint: "http://192.168.200.1:2379",
      logFilePath: "/run/buoy-lab/lab1/node-1/cni.log",
      ipv6: true,
    });
    expect(conflist.plugins[0]?.ipam).toEqual({
      type: "calico-ipam",
      assign_ipv4: "true",
      assign_ipv6: "true",
    });
  });

  it("renderLabConflist() with the agent's socket has the plugin hand its work there", () => {
    const conflist = renderLabConflist({
      nodeName: "node-1",
      etcdEndpoint: "http://192.168.200.1:2379",
      logFilePath: "/run/buoy-lab/lab1/node-1/cni.log",
      agentSocket: "/run/buoy-lab/lab1/node-1/cni/agent.sock",
    });
    expect(conflist.plugins[0]?.agent_socket).toBe("/run/buoy-lab/lab1/node-1/cni/agent.sock");
    expect(conflist.plugins[1]?.agent_socket).toBeUndefined();
  });
});
