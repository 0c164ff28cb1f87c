import { describe, expect, it } from "vitest";
import { CniError } from "./errors.js";
import { decodeNetConfJson, parseNetConf } from "./netconf.js";

/** The seed's conflist entry for the main plugin, placeholders rendered. */
const seedPlugin = {
  type: "calico",
  log_level: "info",
  datastore_type: "kubernetes",
  nodename: "node-1",
  mtu: 1440,
  ipam: { type: "calico-ipam" },
  policy: { type: "k8s" },
  kubernetes: { kubeconfig: "/etc/cni/net.d/calico-kubeconfig" },
  feature_control: { floating_ips: true },
  name: "k8s-pod-network",
  cniVersion: "0.3.0",
};

function codeAndMessage(raw: Record<string, unknown>): [number, string] {
  try {
    parseNetConf(raw);
  } catch (error) {
    if (error instanceof CniError) return [error.code, error.message];
    throw error;
  }
  throw new Error("parseNetConf() accepted the config");
}

describe("parseNetConf()", () => {
  it("parseNetConf() reads every key of the seed's conflist", () => {
    const conf = parseNetConf(seedPlugin);
    expect(conf).toMatchObject({
      cniVersion: "0.3.0",
      name: "k8s-pod-network",
      type: "calico",
      logLevel: "info",
      datastoreType: "kubernetes",
      nodename: "node-1",
      mtu: 1440,
      ipam: { type: "calico-ipam", assignIpv4: true, assignIpv6: false },
      floatingIpsEnabled: true,
      kubeconfig: "/etc/cni/net.d/calico-kubeconfig",
    });
  });

  it("parseNetConf() fills Calico's defaults", () => {
    const conf = parseNetConf({ type: "calico", ipam: { type: "calico-ipam" } });
    expect(conf).toMatchObject({
      cniVersion: "0.2.0",
      datastoreType: "etcdv3",
      etcdEndpoints: ["http://127.0.0.1:2379"],
      mtu: 1500,
      logFilePath: "/var/log/buoy/cni.log",
      floatingIpsEnabled: false,
      maxFloatingIps: 16,
      podAnnotations: {},
      logRotation: { maxBytes: 100 * 1024 * 1024, maxAgeDays: 30, maxCount: 10 },
    });
  });

  it("parseNetConf() reads Calico's log_file_max_size (MB), log_file_max_age and log_file_max_count", () => {
    const conf = parseNetConf({
      type: "calico",
      log_file_max_size: 5,
      log_file_max_age: 0,
      log_file_max_count: 3,
    });
    expect(conf.logRotation).toEqual({ maxBytes: 5 * 1024 * 1024, maxAgeDays: 0, maxCount: 3 });
  });

  it("parseNetConf() reads max_floating_ips_per_pod, buoy's key beside feature_control", () => {
    expect(parseNetConf({ ...seedPlugin, max_floating_ips_per_pod: 64 }).maxFloatingIps).toBe(64);
    expect(parseNetConf({ ...seedPlugin, max_floating_ips_per_pod: 1 }).maxFloatingIps).toBe(1);
  });

  const nodenames: { desc: string; nodename: string; msg?: string }[] = [
    { desc: "accepts a dotted name", nodename: "worker-1.example.com" },
    {
      desc: "refuses upper case",
      nodename: "Worker-1",
      msg: `invalid network config: key 'nodename' is "Worker-1": not a DNS-1123 subdomain`,
    },
    {
      desc: "refuses a slash (a datastore key path)",
      nodename: "n1/../n2",
      msg: `invalid network config: key 'nodename' is "n1/../n2": not a DNS-1123 subdomain`,
    },
    {
      desc: "refuses a name over 253 characters, echoed truncated",
      nodename: "a".repeat(300),
      msg: '…(truncated, 300 characters)": node name is longer than 253 characters',
    },
  ];
  for (const { desc, nodename, msg } of nodenames) {
    it(`parseNetConf() ${desc} as nodename`, () => {
      if (msg === undefined) {
        expect(parseNetConf({ ...seedPlugin, nodename }).nodename).toBe(nodename);
        return;
      }
      const [code, message] = codeAndMessage({ ...seedPlugin, nodename });
      expect(code).toBe(7);
      expect(message).toContain(msg);
    });
  }

  it("parseNetConf() ignores unknown keys", () => {
    expect(() =>
      parseNetConf({ ...seedPlugin, ipip: { enabled: true }, container_settings: {} }),
    ).not.toThrow();
  });

  it("parseNetConf() splits etcd_endpoints and reads Calico's string booleans", () => {
    const conf = parseNetConf({
      etcd_endpoints: "http://a:2379, http://b:2379",
      ipam: {
        type: "calico-ipam",
        assign_ipv4: "false",
        assign_ipv6: "true",
        ipv6_pools: ["fd00::/64"],
      },
    });
    expect(conf.etcdEndpoints).toEqual(["http://a:2379", "http://b:2379"]);
    expect(conf.ipam).toMatchObject({
      assignIpv4: false,
      assignIpv6: true,
      ipv6Pools: ["fd00::/64"],
    });
  });

  it("parseNetConf() reads pod annotations from runtimeConfig", () => {
    const conf = parseNetConf({
      runtimeConfig: {
        "io.kubernetes.cri.pod-annotations": {
          "cni.projectcalico.org/floatingIPs": '["10.0.0.1"]',
        },
      },
    });
    expect(conf.podAnnotations["cni.projectcalico.org/floatingIPs"]).toBe('["10.0.0.1"]');
  });

  const wrongTypes: { desc: string; patch: Record<string, unknown>; key: string }[] = [
    { desc: "mtu as a string", patch: { mtu: "1500" }, key: "mtu" },
    { desc: "mtu as a fraction", patch: { mtu: 1500.5 }, key: "mtu" },
    { desc: "mtu too small", patch: { mtu: 10 }, key: "mtu" },
    { desc: "nodename as a number", patch: { nodename: 7 }, key: "nodename" },
    { desc: "log_level as a boolean", patch: { log_level: true }, key: "log_level" },
    {
      desc: "log_file_max_size as a string",
      patch: { log_file_max_size: "100" },
      key: "log_file_max_size",
    },
    {
      desc: "log_file_max_count below 0",
      patch: { log_file_max_count: -1 },
      key: "log_file_max_count",
    },
    {
      desc: "floating_ips as a string",
      patch: { feature_control: { floating_ips: "true" } },
      key: "feature_control.floating_ips",
    },
    { desc: "feature_control as an array", patch: { feature_control: [] }, key: "feature_control" },
    {
      desc: "max_floating_ips_per_pod as a string",
      patch: { max_floating_ips_per_pod: "32" },
      key: "max_floating_ips_per_pod",
    },
    {
      desc: "max_floating_ips_per_pod zero",
      patch: { max_floating_ips_per_pod: 0 },
      key: "max_floating_ips_per_pod",
    },
    {
      desc: "max_floating_ips_per_pod a fraction",
      patch: { max_floating_ips_per_pod: 2.5 },
      key: "max_floating_ips_per_pod",
    },
    {
      desc: "max_floating_ips_per_pod over 1024",
      patch: { max_floating_ips_per_pod: 1025 },
      key: "max_floating_ips_per_pod",
    },
    { desc: "agent_socket a number", patch: { agent_socket: 1 }, key: "agent_socket" },
    {
      desc: "agent_socket a relative path",
      patch: { agent_socket: "run/cni.sock" },
      key: "agent_socket",
    },
    { desc: "ipam without type", patch: { ipam: {} }, key: "ipam.type" },
    {
      desc: "assign_ipv6 as a number",
      patch: { ipam: { type: "calico-ipam", assign_ipv6: 1 } },
      key: "ipam.assign_ipv6",
    },
    {
      desc: "ipv4_pools as a string",
      patch: { ipam: { type: "calico-ipam", ipv4_pools: "default" } },
      key: "ipam.ipv4_pools",
    },
    {
      desc: "kubeconfig as a number",
      patch: { kubernetes: { kubeconfig: 1 } },
      key: "kubernetes.kubeconfig",
    },
    {
      desc: "etcd_endpoints as a list",
      patch: { etcd_endpoints: ["http://a"] },
      key: "etcd_endpoints",
    },
    {
      desc: "pod annotations as a list",
      patch: { runtimeConfig: { "io.kubernetes.cri.pod-annotations": [] } },
      key: "runtimeConfig.io.kubernetes.cri.pod-annotations",
    },
    {
      desc: "a pod annotation value that is not a string",
      patch: { runtimeConfig: { "io.kubernetes.cri.pod-annotations": { a: 1 } } },
      key: "runtimeConfig.io.kubernetes.cri.pod-annotations.a",
    },
  ];
  for (const { desc, patch, key } of wrongTypes) {
    it(`parseNetConf() refuses ${desc} with code 7 naming '${key}'`, () => {
      const [code, message] = codeAndMessage({ ...seedPlugin, ...patch });
      expect(code).toBe(7);
      expect(message).toContain(`key '${key}'`);
    });
  }

  it("parseNetConf() refuses an unknown datastore_type", () => {
    expect(codeAndMessage({ datastore_type: "consul" })).toEqual([
      7,
      `invalid network config: key 'datastore_type' must be "etcdv3" or "kubernetes", got "consul"`,
    ]);
  });

  it("parseNetConf() refuses an unsupported cniVersion with code 1", () => {
    const [code, message] = codeAndMessage({ cniVersion: "2.0.0" });
    expect(code).toBe(1);
    expect(message).toContain('config is "2.0.0"');
  });

  it("decodeNetConfJson() gives code 6 for text that is not a JSON object", () => {
    for (const text of ["{", "[]", "null", ""]) {
      expect(() => decodeNetConfJson(text)).toThrow(CniError);
      try {
        decodeNetConfJson(text);
      } catch (error) {
        expect((error as CniError).code).toBe(6);
      }
    }
  });
});
