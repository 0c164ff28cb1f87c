import { describe, expect, it } from "vitest";
import type { AllocationOwner, IpamBlock } from "../model/records.js";
import { planDepartedReleases } from "./block.js";

const owner = (node: string, pod: string): AllocationOwner => ({
  handle: `k8s-pod-network.${pod}`,
  node,
  namespace: "shop",
  pod,
});

describe("planDepartedReleases()", () => {
  const live = new Set(["node-1"]);

  it("deletes a departed node's block once nothing in it is allocated", () => {
    const block: IpamBlock = {
      cidr: "10.244.1.0/26",
      affinity: "node-2",
      allocations: { "10.244.1.0": owner("node-2", "a"), "10.244.1.1": owner("node-2", "b") },
    };
    expect(planDepartedReleases([block], live)).toEqual([
      { cidr: "10.244.1.0/26", released: ["10.244.1.0", "10.244.1.1"], formerAffinity: "node-2" },
    ]);
  });

  it("keeps an address the departed node's block lent to a live node's pod, without the affinity", () => {
    const block: IpamBlock = {
      cidr: "10.244.1.0/26",
      affinity: "node-2",
      allocations: { "10.244.1.0": owner("node-2", "a"), "10.244.1.9": owner("node-1", "lent") },
    };
    expect(planDepartedReleases([block], live)).toEqual([
      {
        cidr: "10.244.1.0/26",
        released: ["10.244.1.0"],
        formerAffinity: "node-2",
        after: {
          cidr: "10.244.1.0/26",
          affinity: "",
          allocations: { "10.244.1.9": owner("node-1", "lent") },
        },
      },
    ]);
  });

  it("releases what a live node's block lent to a departed node's pod, and leaves healthy blocks out", () => {
    const lent: IpamBlock = {
      cidr: "10.244.0.0/26",
      affinity: "node-1",
      allocations: { "10.244.0.0": owner("node-1", "x"), "10.244.0.5": owner("node-2", "y") },
    };
    const healthy: IpamBlock = {
      cidr: "10.244.2.0/26",
      affinity: "node-1",
      allocations: { "10.244.2.0": owner("node-1", "z") },
    };
    const emptyLive: IpamBlock = { cidr: "10.244.3.0/26", affinity: "node-1", allocations: {} };
    expect(planDepartedReleases([lent, healthy, emptyLive], live)).toEqual([
      {
        cidr: "10.244.0.0/26",
        released: ["10.244.0.5"],
        after: {
          cidr: "10.244.0.0/26",
          affinity: "node-1",
          allocations: { "10.244.0.0": owner("node-1", "x") },
        },
      },
    ]);
  });
});
