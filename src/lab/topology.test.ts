import { describe, expect, it } from "vitest";
import {
  findNode,
  infrastructureNetns,
  isLabNetns,
  LabError,
  planLabTopology,
  podNetnsName,
  randomLabPrefix,
  validateLabPrefix,
} from "./topology.js";

describe("lab topology", () => {
  it.each([
    { desc: "the default shape", prefix: "lab1a2b", ok: true },
    { desc: "12 characters, the longest", prefix: "abcdefghijkl", ok: true },
    { desc: "3 characters, the shortest", prefix: "lab", ok: true },
    { desc: "too short", prefix: "la", ok: false },
    {
      desc: "13 characters: interface names would pass 15 bytes",
      prefix: "abcdefghijklm",
      ok: false,
    },
    { desc: "a hyphen would make <prefix>- ambiguous", prefix: "lab-1", ok: false },
    { desc: "upper case", prefix: "Lab1", ok: false },
    { desc: "starting with a digit", prefix: "1lab", ok: false },
  ])("validateLabPrefix() $desc", ({ prefix, ok }) => {
    if (ok) expect(validateLabPrefix(prefix)).toBe(prefix);
    else expect(() => validateLabPrefix(prefix)).toThrow(LabError);
  });

  it("randomLabPrefix() is lab and four hex digits", () => {
    expect(randomLabPrefix(new Uint8Array([0x0a, 0xff, 0x33]))).toBe("lab0aff");
  });

  it("planLabTopology() names everything with the prefix and numbers nodes from 1", () => {
    const topology = planLabTopology({ prefix: "lab1", nodes: 2, routing: "bgp", ipv6: false });
    expect(infrastructureNetns(topology)).toEqual(["lab1-fab", "lab1-ext", "lab1-n1", "lab1-n2"]);
    expect(topology.fabric).toEqual({
      netns: "lab1-fab",
      bridge: "lab1-br",
      ipv4: "192.168.200.1",
      ipv6: "fd00:200::1",
    });
    expect(topology.nodes[1]).toEqual({
      index: 2,
      name: "node-2",
      netns: "lab1-n2",
      ifname: "lab1-up",
      fabricPort: "lab1-2",
      ipv4: "192.168.200.12",
      ipv6: "fd00:200::12",
    });
    expect(topology.external).toMatchObject({
      ipv4: "192.168.200.254",
      ipv6: "fd00:200::fe",
      asNumber: 64513,
    });
    expect(topology.etcd.endpoint).toBe("http://192.168.200.1:2379");
  });

  it("planLabTopology() keeps every interface name within 15 bytes at the longest prefix and most nodes", () => {
    const topology = planLabTopology({
      prefix: "abcdefghijkl",
      nodes: 50,
      routing: "direct",
      ipv6: false,
    });
    const names = [
      topology.fabric.bridge,
      topology.external.fabricPort,
      topology.external.ifname,
      ...topology.nodes.flatMap((node) => [node.fabricPort, node.ifname]),
    ];
    expect(Math.max(...names.map((name) => Buffer.byteLength(name)))).toBeLessThanOrEqual(15);
  });

  it.each([
    { desc: "IPv4 only", ipv6: false, cidrs: ["10.244.0.0/16", "203.0.113.0/24"] },
    {
      desc: "dual stack",
      ipv6: true,
      cidrs: ["10.244.0.0/16", "203.0.113.0/24", "fd00:244::/64", "2001:db8:f100::/120"],
    },
  ])("planLabTopology() pools, $desc", ({ ipv6, cidrs }) => {
    const { pools } = planLabTopology({ prefix: "lab1", nodes: 1, routing: "bgp", ipv6 });
    expect(pools.map((pool) => pool.cidr)).toEqual(cidrs);
    expect(pools.filter((pool) => pool.disabled).map((pool) => pool.name)).toEqual(
      ipv6 ? ["floating-v4", "floating-v6"] : ["floating-v4"],
    );
  });

  it.each([0, 51, 1.5])("planLabTopology() refuses %s nodes", (nodes) => {
    expect(() => planLabTopology({ prefix: "lab1", nodes, routing: "bgp", ipv6: false })).toThrow(
      /1 to 50 nodes/,
    );
  });

  it("podNetnsName() is <prefix>-<node#>-<pod> and refuses names that are not a pod's", () => {
    expect(podNetnsName("lab1", 2, "web-0")).toBe("lab1-2-web-0");
    expect(() => podNetnsName("lab1", 2, "Web")).toThrow(/invalid pod name/);
    expect(() => podNetnsName("lab1", 2, "web/0")).toThrow(/invalid pod name/);
  });

  it("isLabNetns() does not take another lab whose prefix extends this one", () => {
    expect(isLabNetns("lab1", "lab1-n1")).toBe(true);
    expect(isLabNetns("lab1", "lab12-n1")).toBe(false);
  });

  it("findNode() finds by number, name or namespace and names the nodes it has", () => {
    const topology = planLabTopology({ prefix: "lab1", nodes: 2, routing: "bgp", ipv6: false });
    expect(findNode(topology, 2).name).toBe("node-2");
    expect(findNode(topology, "node-1").index).toBe(1);
    expect(findNode(topology, "lab1-n2").index).toBe(2);
    expect(() => findNode(topology, 3)).toThrow(
      "lab lab1 has no node node-3 (it has node-1, node-2)",
    );
  });
});
