import { describe, expect, it } from "vitest";
import type { IpamBlock, Versioned } from "../model/records.js";
import {
  BlockIndex,
  cidrsHolding,
  emptyRegion,
  overlappingCidr,
  regionCidrOf,
  withBlockCidr,
  withoutBlockCidr,
} from "./region.js";

const block = (cidr: string, allocated: string[] = [], revision = "1"): Versioned<IpamBlock> => ({
  value: {
    cidr,
    affinity: "node-1",
    allocations: Object.fromEntries(allocated.map((ip) => [ip, { handle: ip, node: "node-1" }])),
  },
  revision,
});

describe("regionCidrOf()", () => {
  it("is the /20 or /116 around an address or a block", () => {
    expect(regionCidrOf("10.244.17.5")).toBe("10.244.16.0/20");
    expect(regionCidrOf("10.244.17.64/26")).toBe("10.244.16.0/20");
    expect(regionCidrOf("10.244.16.0/20")).toBe("10.244.16.0/20");
    expect(regionCidrOf("fd00::1:2345")).toBe("fd00::1:2000/116");
    expect(regionCidrOf("fd00::1:2340/122")).toBe("fd00::1:2000/116");
    expect(regionCidrOf("not an address")).toBeUndefined();
  });
});

describe("cidrsHolding() and overlappingCidr()", () => {
  const listed = ["10.244.16.0/26", "10.244.16.64/28", "10.244.17.0/24"];

  it("finds the block holding an address whatever its size", () => {
    expect(cidrsHolding(listed, "10.244.16.70")).toEqual(["10.244.16.64/28"]);
    expect(cidrsHolding(listed, "10.244.17.200")).toEqual(["10.244.17.0/24"]);
    expect(cidrsHolding(listed, "10.244.16.80")).toEqual([]);
    expect(cidrsHolding(listed, "fd00::1")).toEqual([]);
  });

  it("finds a listed block inside, around or on a CIDR, but not the CIDR itself", () => {
    expect(overlappingCidr(listed, "10.244.16.0/28")).toBe("10.244.16.0/26");
    expect(overlappingCidr(listed, "10.244.16.0/24")).toBe("10.244.16.0/26");
    expect(overlappingCidr(listed, "10.244.16.0/26")).toBeUndefined();
    expect(overlappingCidr(listed, "10.244.16.80/28")).toBeUndefined();
  });
});

describe("withBlockCidr() and withoutBlockCidr()", () => {
  it("keep the list sorted and without repeats", () => {
    const region = withBlockCidr(
      withBlockCidr(emptyRegion("10.244.16.0/20"), "10.244.16.64/26"),
      "10.244.16.0/26",
    );
    expect(region.blocks).toEqual(["10.244.16.0/26", "10.244.16.64/26"]);
    expect(withBlockCidr(region, "10.244.16.0/26")).toBe(region);
    expect(withoutBlockCidr(region, "10.244.16.0/26").blocks).toEqual(["10.244.16.64/26"]);
  });
});

describe("BlockIndex", () => {
  it("finds blocks by containment and overlap, only in the address's region", () => {
    const index = new BlockIndex([
      block("10.244.0.0/26", ["10.244.0.1"]),
      block("10.244.0.0/28", ["10.244.0.1", "10.244.0.2"]), // an older, overlapping record
      block("10.244.16.0/26"),
    ]);
    expect(index.holding("10.244.0.2").map((b) => b.value.cidr)).toEqual([
      "10.244.0.0/26",
      "10.244.0.0/28",
    ]);
    expect(index.holding("10.244.0.40").map((b) => b.value.cidr)).toEqual(["10.244.0.0/26"]);
    expect(index.holding("10.244.1.0")).toEqual([]);
    expect(index.overlaps("10.244.0.32/28")).toBe(true);
    expect(index.overlaps("10.244.0.64/26")).toBe(false);
    expect(index.overlaps("10.244.16.0/26")).toBe(false);
    expect(index.allocatedInOverlapping("10.244.0.0/26")).toEqual(["10.244.0.1", "10.244.0.2"]);
  });
});
