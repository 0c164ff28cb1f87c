import { describe, expect, it } from "vitest";
import { calicoBlock, calicoPool, mergeBlock } from "./calico-objects.js";

describe("Calico's objects as buoy's", () => {
  it("calicoPool() takes Calico's fields, and imports a node-selected pool disabled", () => {
    expect(
      calicoPool({
        metadata: { name: "default-ipv4-ippool" },
        spec: { cidr: "10.244.0.0/16", blockSize: 26, ipipMode: "Always", natOutgoing: true },
      }),
    ).toEqual({
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
    const selected = calicoPool({
      metadata: { name: "rack-a" },
      spec: { cidr: "10.245.0.0/16", nodeSelector: "rack == 'a'" },
    });
    expect(selected.pool.disabled).toBe(true);
    expect(selected.notes).toEqual([
      "IP pool rack-a: nodeSelector 'rack == 'a'' is imported as disabled (buoy assigns from every pool on every node)",
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
});
