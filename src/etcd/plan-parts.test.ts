import { describe, expect, it } from "vitest";
import { TooManyOperationsError, type KvCompare } from "../datastore/kv.js";
import { fitsOneTransaction, planParts, type TxnUnit } from "./plan-parts.js";

const claimWrite = (n: number, block = `block-${n}`): TxnUnit => ({
  compares: [
    { key: `claim-${n}`, createRevision: 0 },
    { key: block, modRevision: 7 },
  ],
  ops: [{ put: `claim-${n}`, value: "x" }],
});
const claimRemoval = (n: number): TxnUnit => ({
  compares: [{ key: `claim-${n}`, modRevision: 9 }],
  ops: [{ delete: `claim-${n}` }],
});
const anchor: TxnUnit = {
  compares: [{ key: "endpoint", modRevision: 3 }],
  ops: [{ put: "endpoint", value: "e" }],
};
const range = (count: number) => Array.from({ length: count }, (_, i) => i);
const putKeys = (ops: readonly { put?: string; delete?: string }[]) =>
  ops.map((op) => op.put ?? op.delete);

describe("planParts()", () => {
  const cases: {
    desc: string;
    writes: number;
    removals: number;
    max: number;
    sizes: [compares: number, ops: number][];
    anchorPart: number;
  }[] = [
    {
      desc: "what fits is one part",
      writes: 2,
      removals: 1,
      max: 10,
      sizes: [[6, 4]],
      anchorPart: 0,
    },
    {
      desc: "writes fill parts by their compares; the anchor joins the last when there is room",
      writes: 5,
      removals: 0,
      max: 5,
      sizes: [
        [4, 2],
        [4, 2],
        [3, 2],
      ],
      anchorPart: 2,
    },
    {
      desc: "the anchor gets a part of its own when the last write part is full",
      writes: 4,
      removals: 0,
      max: 4,
      sizes: [
        [4, 2],
        [4, 2],
        [1, 1],
      ],
      anchorPart: 2,
    },
    {
      desc: "removals follow the anchor, in its part while there is room",
      writes: 0,
      removals: 5,
      max: 3,
      sizes: [
        [3, 3],
        [3, 3],
      ],
      anchorPart: 0,
    },
  ];
  for (const { desc, writes, removals, max, sizes, anchorPart } of cases) {
    it(`planParts() ${desc}`, () => {
      const plan = planParts(
        {
          writes: range(writes).map((n) => claimWrite(n)),
          anchor,
          removals: range(removals).map(claimRemoval),
        },
        max,
      );
      expect(plan.parts.map((part) => [part.compares.length, part.ops.length])).toEqual(sizes);
      expect(plan.anchorPart).toBe(anchorPart);
      for (const part of plan.parts) {
        expect(part.compares.length).toBeLessThanOrEqual(max);
        expect(part.ops.length).toBeLessThanOrEqual(max);
      }
    });
  }

  it("planParts() keeps the writes in the order given, then the anchor, then the removals", () => {
    const plan = planParts(
      { writes: range(3).map((n) => claimWrite(n)), anchor, removals: [claimRemoval(9)] },
      4,
    );
    expect(plan.parts.flatMap((part) => putKeys(part.ops))).toEqual([
      "claim-0",
      "claim-1",
      "claim-2",
      "endpoint",
      "claim-9",
    ]);
  });

  it("planParts() compares a key several units share once per part", () => {
    // 240 claims in one block: 127 claims and the block, then 113, the block and the endpoint.
    const plan = planParts({
      writes: range(240).map((n) => claimWrite(n, "block")),
      anchor,
      removals: [],
    });
    expect(plan.parts.map((part) => part.compares.length)).toEqual([128, 115]);
    for (const part of plan.parts) {
      const blockCompares = part.compares.filter((compare: KvCompare) => compare.key === "block");
      expect(blockCompares).toHaveLength(1);
    }
    expect(plan.parts.flatMap((part) => part.ops)).toHaveLength(241);
  });

  it("planParts() refuses a unit larger than one transaction", () => {
    const huge: TxnUnit = {
      compares: range(6).map((n) => ({ key: `k${n}`, createRevision: 0 })),
      ops: [],
    };
    expect(() => planParts({ writes: [huge], anchor, removals: [] }, 5)).toThrow(
      TooManyOperationsError,
    );
  });
});

describe("fitsOneTransaction()", () => {
  it("fitsOneTransaction() says whether the whole change is one part", () => {
    const change = (writes: number) => ({
      writes: range(writes).map((n) => claimWrite(n, "block")),
      anchor,
      removals: [],
    });
    // n claims in one block: n + 2 compares (claims, block, endpoint), n + 1 operations.
    expect(fitsOneTransaction(change(126))).toBe(true);
    expect(fitsOneTransaction(change(127))).toBe(false);
  });
});
