import { describe, expect, it } from "vitest";
import { freeBlockCidrs, poolRegionCidrs } from "./new-block.js";
import { validatePool } from "./pool.js";

const take = <T>(items: Iterable<T>, count: number): T[] => {
  const out: T[] = [];
  for (const item of items) {
    if (out.length === count) break;
    out.push(item);
  }
  return out;
};

describe("poolRegionCidrs()", () => {
  it.each([
    {
      desc: "a pool narrower than a region: its one region",
      cidr: "10.9.0.0/24",
      want: ["10.9.0.0/20"],
    },
    {
      desc: "a /19: two regions in order",
      cidr: "10.8.0.0/19",
      want: ["10.8.0.0/20", "10.8.16.0/20"],
    },
    { desc: "IPv6: /116 regions", cidr: "fd00::/115", want: ["fd00::/116", "fd00::1000/116"] },
  ])("poolRegionCidrs() $desc", ({ cidr, want }) => {
    expect([...poolRegionCidrs(validatePool("p", { cidr }))]).toEqual(want);
  });

  it("poolRegionCidrs() is lazy for a pool of very many regions", () => {
    const pool = validatePool("p", { cidr: "fd00::/48" });
    expect(take(poolRegionCidrs(pool), 2)).toEqual(["fd00::/116", "fd00::1000/116"]);
  });
});

describe("freeBlockCidrs()", () => {
  const pool = validatePool("p", { cidr: "10.8.0.0/19", blockSize: 26 });
  it.each([
    {
      desc: "an empty region: its blocks in address order",
      region: { cidr: "10.8.16.0/20", blocks: [] },
      taken: [],
      want: ["10.8.16.0/26", "10.8.16.64/26", "10.8.16.128/26"],
    },
    {
      desc: "listed blocks of any size are passed over, a wider one wholly",
      region: { cidr: "10.8.0.0/20", blocks: ["10.8.0.0/26", "10.8.0.128/25", "10.8.1.8/29"] },
      taken: [],
      want: ["10.8.0.64/26", "10.8.1.64/26", "10.8.1.128/26"],
    },
    {
      desc: "blocks the caller knows of count as listed",
      region: { cidr: "10.8.0.0/20", blocks: [] },
      taken: ["10.8.0.0/24"],
      want: ["10.8.1.0/26", "10.8.1.64/26", "10.8.1.128/26"],
    },
  ])("freeBlockCidrs() $desc", ({ region, taken, want }) => {
    expect(take(freeBlockCidrs(pool, region, taken), 3)).toEqual(want);
  });

  it("freeBlockCidrs() stays inside a pool narrower than its region, and yields nothing when full", () => {
    const small = validatePool("s", { cidr: "10.9.0.0/25", blockSize: 26 });
    const region = { cidr: "10.9.0.0/20", blocks: [] };
    expect([...freeBlockCidrs(small, region)]).toEqual(["10.9.0.0/26", "10.9.0.64/26"]);
    expect([...freeBlockCidrs(small, { ...region, blocks: ["10.9.0.0/25"] })]).toEqual([]);
  });
});
