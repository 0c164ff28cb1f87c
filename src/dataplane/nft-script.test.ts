import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { FakeNft } from "../../test/support/fake-nft.js";
import { expectGolden } from "../../test/support/golden.js";
import type { NatPlan } from "./nat-plan.js";
import {
  parseNftTable,
  renderNftElementChanges,
  renderNftTable,
  renderNftTableRemoval,
  type NftBinding,
} from "./nft-script.js";

const testdata = new URL("./testdata/", import.meta.url);

/** `nft -j list table` output captured from nft 1.0.6 after applying the IPv4 and IPv6 goldens' plan. */
function listing(family: 4 | 6): { nftables: Record<string, Record<string, unknown>>[] } {
  const path = new URL(`./testdata/nft-list-ipv${family}.json`, import.meta.url);
  return JSON.parse(readFileSync(path, "utf8"));
}

const plan: NatPlan = {
  bindings: [
    {
      family: 4,
      floating: "10.96.0.1",
      pod: "10.244.0.5",
      hostIfname: "cali1111111111a",
      egress: true,
    },
    { family: 4, floating: "10.96.0.2", pod: "10.244.0.5", hostIfname: "cali1111111111a" },
    {
      family: 6,
      floating: "fd00:96::1",
      pod: "fd00:244::5",
      hostIfname: "cali1111111111a",
      egress: true,
    },
  ],
  refused: [],
  natOutgoing: {
    sources: ["10.244.0.0/16", "fd00:244::/64"],
    pools: ["10.244.0.0/16", "10.96.0.0/24", "10.97.0.7/32", "fd00:244::/64", "fd00:96::/120"],
  },
};

describe("nftables scripts", () => {
  it("renderNftTable() replaces the IPv4 table with both maps and the three chains", () => {
    expectGolden(testdata, "nft-table-ipv4", renderNftTable(plan, 4));
  });
  it("renderNftTableRemoval() deletes each family's table, present or not", () => {
    expect(renderNftTableRemoval([4, 6])).toBe(
      "add table ip buoy\ndelete table ip buoy\nadd table ip6 buoy\ndelete table ip6 buoy\n",
    );
    expect(renderNftTableRemoval([])).toBe("");
  });
  it("renderNftTable() renders the IPv6 table from the same plan", () => {
    expectGolden(testdata, "nft-table-ipv6", renderNftTable(plan, 6));
  });
  it("renderNftTable() for an empty plan has maps without elements", () => {
    expectGolden(testdata, "nft-table-empty", renderNftTable({ bindings: [] }, 4));
  });
  it("renderNftTable() does not depend on the order of the bindings", () => {
    expect(renderNftTable({ ...plan, bindings: [...plan.bindings].reverse() }, 4)).toBe(
      renderNftTable(plan, 4),
    );
  });
  it("renderNftElementChanges() removes, then adds, in both maps", () => {
    const moved: NftBinding = { family: 4, floating: "10.96.0.1", pod: "10.244.0.9" };
    const added: NftBinding = { family: 4, floating: "10.96.0.7", pod: "10.244.0.9" };
    const other: NftBinding = { family: 6, floating: "fd00:96::1", pod: "fd00:244::9" };
    expectGolden(
      testdata,
      "nft-changes-ipv4",
      renderNftElementChanges(4, [added, moved, other], [plan.bindings[0]!, other]),
    );
  });
  it("renderNftElementChanges() is empty when nothing changes in that family", () => {
    expect(renderNftElementChanges(4, [], [])).toBe("");
    expect(renderNftElementChanges(4, [plan.bindings[2]!], [])).toBe("");
  });
});

describe("parseNftTable()", () => {
  it("parseNftTable() reads the bindings of an intact IPv4 table", () => {
    expect(parseNftTable(listing(4), 4)).toEqual({
      bindings: plan.bindings.filter((b) => b.family === 4).map(({ hostIfname: _, ...b }) => b),
      intact: true,
      natOutgoing: {
        sources: ["10.244.0.0/16"],
        pools: ["10.96.0.0/24", "10.97.0.7/32", "10.244.0.0/16"],
      },
    });
  });
  it("parseNftTable() reads the bindings of an intact IPv6 table", () => {
    expect(parseNftTable(listing(6), 6)).toEqual({
      bindings: [{ family: 6, floating: "fd00:96::1", pod: "fd00:244::5", egress: true }],
      intact: true,
      natOutgoing: { sources: ["fd00:244::/64"], pools: ["fd00:96::/120", "fd00:244::/64"] },
    });
  });

  const damaged: { desc: string; damage(l: ReturnType<typeof listing>): void }[] = [
    {
      desc: "a hairpin element is missing",
      damage: (l) => void (l.nftables[3]!.map!.elem as unknown[]).pop(),
    },
    {
      desc: "a hairpin element points elsewhere",
      damage: (l) => void ((l.nftables[3]!.map!.elem as unknown[][])[0]![1] = "10.96.0.9"),
    },
    {
      desc: "an egress element's pod has no binding from that floating IP",
      damage: (l) => void ((l.nftables[4]!.map!.elem as unknown[][])[0]![1] = "10.96.0.9"),
    },
    {
      desc: "an egress element is extra",
      damage: (l) =>
        void (l.nftables[4]!.map!.elem as unknown[][]).push(["10.244.0.9", "10.96.0.2"]),
    },
    { desc: "the egress map is gone", damage: (l) => void l.nftables.splice(4, 1) },
    { desc: "a chain is gone", damage: (l) => void l.nftables.splice(8, 1) },
    { desc: "a set is gone", damage: (l) => void l.nftables.splice(6, 1) },
    {
      desc: "a set holds an address range",
      damage: (l) => void (l.nftables[5]!.set!.elem = [{ range: ["10.0.0.1", "10.0.0.9"] }]),
    },
    {
      desc: "a chain has another priority",
      damage: (l) => void (l.nftables[8]!.chain!.prio = 0),
    },
    {
      desc: "a rule was added",
      damage: (l) => void l.nftables.push({ rule: { chain: "output", expr: [{ accept: null }] } }),
    },
    {
      desc: "a rule was changed",
      damage: (l) => void (l.nftables[14]!.rule!.expr = [{ accept: null }]),
    },
    {
      desc: "the egress rule was changed",
      damage: (l) => void (l.nftables[13]!.rule!.expr = [{ accept: null }]),
    },
    { desc: "a set was added", damage: (l) => void l.nftables.push({ set: { name: "x" } }) },
    { desc: "a map was deleted", damage: (l) => void l.nftables.splice(3, 1) },
  ];
  for (const { desc, damage } of damaged) {
    it(`parseNftTable() reports a table that is not intact when ${desc}`, () => {
      const l = listing(4);
      damage(l);
      expect(parseNftTable(l, 4).intact).toBe(false);
    });
  }

  it("parseNftTable() reports the other family's table as not intact", () => {
    expect(parseNftTable(listing(4), 6)).toMatchObject({ bindings: [], intact: false });
  });
  it("parseNftTable() reports output that is not a listing as not intact", () => {
    expect(parseNftTable({}, 4)).toMatchObject({ bindings: [], intact: false });
    expect(parseNftTable(null, 4)).toMatchObject({ bindings: [], intact: false });
  });
});

// The agent's unit tests run the scripts through test/support/fake-nft.ts:
// it must read them as nft 1.0.6 did.
describe("the shared FakeNft", () => {
  it("reads back, after each family's table, what nft 1.0.6 listed for the same plan", async () => {
    const nft = new FakeNft();
    for (const family of [4, 6] as const) {
      await nft.apply(renderNftTable(plan, family));
      expect(await nft.readTable(family)).toEqual(parseNftTable(listing(family), family));
    }
  });

  it("applies element changes, refuses (changing nothing) what nft refuses, and removes tables", async () => {
    const nft = new FakeNft();
    const first: NftBinding = { family: 4, floating: "10.96.0.1", pod: "10.244.0.5", egress: true };
    const second: NftBinding = { family: 4, floating: "10.96.0.2", pod: "10.244.0.5" };
    await nft.apply(renderNftTable({ bindings: [first, second] }, 4));
    const moved = { ...second, pod: "10.244.0.6" };
    await nft.apply(renderNftElementChanges(4, [moved], [second]));
    expect((await nft.readTable(4))?.bindings).toEqual([first, moved]);
    const before = await nft.readTable(4);
    // A removed element that is not there; an added floating IP held with another pod.
    await expect(nft.apply(renderNftElementChanges(4, [], [second]))).rejects.toThrow(
      /No such file or directory/,
    );
    await expect(
      nft.apply(renderNftElementChanges(4, [{ ...first, pod: "10.244.0.7" }], [])),
    ).rejects.toThrow(/File exists/);
    expect(await nft.readTable(4)).toEqual(before);
    expect(before?.intact).toBe(true);

    await nft.apply(renderNftTableRemoval([4, 6]));
    expect(await nft.readTable(4)).toBeUndefined();
    await expect(nft.apply(renderNftElementChanges(4, [first], []))).rejects.toThrow(
      /No such file or directory/,
    );
  });
});
