import { describe, expect, it } from "vitest";
import {
  blockRefusal,
  calicoBlock,
  calicoPool,
  liveAllocations,
  mergeBlock,
} from "./calico-objects.js";

describe("Calico's objects as buoy's", () => {
  it("calicoPool() takes Calico's fields; a pool gives addresses only when named in --enable", () => {
    const calico = {
      metadata: { name: "default-ipv4-ippool" },
      spec: { cidr: "10.244.0.0/16", blockSize: 26, ipipMode: "Always", natOutgoing: true },
    };
    expect(calicoPool(calico).pool?.disabled).toBe(true);
    expect(calicoPool(calico).notes).toContain(
      "IP pool default-ipv4-ippool: imported disabled (--enable default-ipv4-ippool gives pods addresses from it)",
    );
    expect(calicoPool(calico, new Set(["default-ipv4-ippool"]))).toEqual({
      pool: {
        name: "default-ipv4-ippool",
        cidr: "10.244.0.0/16",
        blockSize: 26,
        disabled: false,
        nodeSelector: "all()",
        natOutgoing: true,
        disableBGPExport: false,
      },
      notes: [
        "IP pool default-ipv4-ippool: ipipMode Always is not imported (buoy routes without it)",
      ],
    });
    const selected = calicoPool(
      {
        metadata: { name: "rack-a" },
        spec: { cidr: "10.245.0.0/16", nodeSelector: "rack == 'a'" },
      },
      new Set(["rack-a"]),
    );
    expect(selected.pool?.disabled).toBe(true);
    expect(selected.notes).toEqual([
      "IP pool rack-a: nodeSelector \"rack == 'a'\" is imported as disabled (buoy assigns from every pool on every node)",
    ]);
    expect(() => calicoPool({ metadata: { name: "bad" }, spec: { cidr: "x" } })).toThrow(
      /IP pool bad/,
    );
  });

  it("calicoBlock() turns allocation indexes and attributes into addresses and owners", () => {
    expect(
      calicoBlock({
        metadata: { name: "10-244-1-0-26" },
        spec: {
          cidr: "10.244.1.0/26",
          affinity: "host:node-2",
          allocations: [0, null, 1, null],
          attributes: [
            {
              handle_id: "ipip-tunnel-addr-node-2",
              secondary: { node: "node-2", type: "ipipTunnelAddress" },
            },
            {
              handle_id: "k8s-pod-network.0123abcd",
              secondary: { namespace: "shop", pod: "db-0", node: "node-2" },
            },
          ],
          unallocated: [1, 3],
        },
      }),
    ).toEqual({
      cidr: "10.244.1.0/26",
      affinity: "node-2",
      allocations: {
        "10.244.1.0": { handle: "ipip-tunnel-addr-node-2", node: "node-2" },
        "10.244.1.2": {
          handle: "k8s-pod-network.0123abcd",
          node: "node-2",
          namespace: "shop",
          pod: "db-0",
          network: "k8s-pod-network",
          containerID: "0123abcd",
        },
      },
    });
  });

  it("calicoBlock() refuses a block that does not add up", () => {
    const block = (spec: Record<string, unknown>) => () =>
      calicoBlock({ metadata: { name: "b" }, spec: { cidr: "10.0.0.0/30", ...spec } });
    expect(block({ allocations: [0, 0, 0, 0, 0] })).toThrow("5 allocations for 4 addresses");
    expect(block({ allocations: [3], attributes: [] })).toThrow("allocation 0 has no handle");
    expect(block({ allocations: ["x"] })).toThrow("allocation 0 is not an attribute index");
    expect(block({ cidr: "nope" })).toThrow("spec.cidr is not a CIDR");
  });

  it("mergeBlock() adds what is new and reports an address two handles hold", () => {
    const owner = (handle: string) => ({ handle, node: "node-1" });
    const mine = {
      cidr: "10.0.0.0/30",
      affinity: "node-1",
      allocations: { "10.0.0.1": owner("a") },
    };
    const calico = {
      cidr: "10.0.0.0/30",
      affinity: "node-1",
      allocations: { "10.0.0.1": owner("b"), "10.0.0.2": owner("c") },
    };
    expect(mergeBlock(mine, calico)).toEqual({
      block: { ...mine, allocations: { "10.0.0.1": owner("a"), "10.0.0.2": owner("c") } },
      added: 1,
      conflicts: ["10.0.0.1: Calico gave it to b, buoy to a"],
    });
    expect(mergeBlock(undefined, calico).added).toBe(2);
  });

  it("calicoPool() leaves out a pool for tunnels only, and keeps a Manual one disabled", () => {
    expect(
      calicoPool({
        metadata: { name: "t" },
        spec: { cidr: "10.9.0.0/24", allowedUses: ["Tunnel"] },
      }),
    ).toEqual({
      pool: undefined,
      notes: ['IP pool t: allowedUses ["Tunnel"] has no Workload: not imported'],
    });
    const manual = calicoPool(
      { metadata: { name: "m" }, spec: { cidr: "10.8.0.0/24", assignmentMode: "Manual" } },
      new Set(["m"]),
    );
    expect(manual.pool?.disabled).toBe(true);
  });

  it("blockRefusal() takes only a block in a pool at its blockSize, on known nodes, claiming nothing, overlapping nothing", () => {
    const pools = [calicoPool({ metadata: { name: "p" }, spec: { cidr: "10.244.0.0/16" } }).pool!];
    const context = {
      pools,
      blocks: [{ cidr: "10.244.16.0/26", affinity: "node-1", allocations: {} }],
      claimed: new Set(["10.244.48.5"]),
      nodes: new Set(["node-1"]),
      livePods: new Set<string>(),
    };
    const owner = { handle: "k8s-pod-network.c1", node: "node-1" };
    const block = (
      cidr: string,
      allocations: Record<string, typeof owner> = {},
      affinity = "node-1",
    ) => ({
      cidr,
      affinity,
      allocations,
    });
    expect(blockRefusal(block("10.244.1.0/26", { "10.244.1.3": owner }), context)).toBeUndefined();
    expect(blockRefusal(block("0.0.0.0/1"), context)).toBe(
      "block 0.0.0.0/1: in no IP pool; not imported",
    );
    expect(blockRefusal(block("10.244.0.0/19"), context)).toBe(
      "block 10.244.0.0/19: IP pool p's blocks are /26; not imported",
    );
    expect(blockRefusal(block("10.244.2.0/26", {}, "evil"), context)).toBe(
      'block 10.244.2.0/26: affine to "evil", no node of the cluster; not imported',
    );
    expect(blockRefusal(block("10.244.48.0/26", { "10.244.48.5": owner }), context)).toBe(
      "block 10.244.48.0/26: 10.244.48.5 is a floating IP buoy has a claim for; not imported",
    );
    const wide = { ...context, pools: [{ ...pools[0]!, blockSize: 20 }] };
    expect(blockRefusal(block("10.244.16.0/20"), wide)).toBe(
      "block 10.244.16.0/20: overlaps buoy's block 10.244.16.0/26; not imported",
    );
  });

  it("liveAllocations() leaves out what a pod the API server no longer has held", () => {
    const block = {
      cidr: "10.0.0.0/30",
      affinity: "n",
      allocations: {
        "10.0.0.0": { handle: "ipip-tunnel-addr-n", node: "n" },
        "10.0.0.1": { handle: "k8s-pod-network.a", node: "n", namespace: "s", pod: "a" },
        "10.0.0.2": { handle: "k8s-pod-network.b", node: "n", namespace: "s", pod: "gone" },
      },
    };
    expect(Object.keys(liveAllocations(block, new Set(["s/a"])).allocations)).toEqual([
      "10.0.0.0",
      "10.0.0.1",
    ]);
  });
});
