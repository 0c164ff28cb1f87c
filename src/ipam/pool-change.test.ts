import { describe, expect, it } from "vitest";
import type { IpPool, IpamBlock } from "../model/records.js";
import { NO_ALLOCATIONS, poolAllocations, validatePoolChange } from "./pool-change.js";

const pool = (name: string, cidr: string, extra: Partial<IpPool> = {}): IpPool => ({
  name,
  cidr,
  blockSize: 26,
  disabled: false,
  nodeSelector: "all()",
  natOutgoing: false,
  disableBGPExport: false,
  ...extra,
});
const block = (cidr: string, allocated: string[]): IpamBlock => ({
  cidr,
  affinity: "node-1",
  allocations: Object.fromEntries(allocated.map((ip) => [ip, { handle: "h", node: "node-1" }])),
});

describe("validatePoolChange()", () => {
  const cases: {
    desc: string;
    next: IpPool;
    pools: IpPool[];
    previous?: IpPool;
    allocations?: { blocks: number; addresses: number };
    refusal: string | undefined;
  }[] = [
    {
      desc: "admits a new pool beside a disjoint one",
      next: pool("b", "10.1.0.0/24"),
      pools: [pool("a", "10.0.0.0/24")],
      refusal: undefined,
    },
    {
      desc: "refuses a pool inside another, naming both",
      next: pool("b", "10.0.0.128/25"),
      pools: [pool("a", "10.0.0.0/24")],
      refusal: "IP pool b (10.0.0.128/25) overlaps IP pool a (10.0.0.0/24)",
    },
    {
      desc: "refuses a pool around another",
      next: pool("b", "10.0.0.0/8"),
      pools: [pool("a", "10.1.0.0/16")],
      refusal: "IP pool b (10.0.0.0/8) overlaps IP pool a (10.1.0.0/16)",
    },
    {
      desc: "refuses the same cidr under another name, IPv6 too",
      next: pool("b", "fd00::/64", { blockSize: 122 }),
      pools: [pool("a", "fd00::/64", { blockSize: 122 })],
      refusal: "IP pool b (fd00::/64) overlaps IP pool a (fd00::/64)",
    },
    {
      desc: "lets IPv4 and IPv6 pools coexist",
      next: pool("b", "::/0", { blockSize: 122 }),
      pools: [pool("a", "10.0.0.0/8")],
      refusal: undefined,
    },
    {
      desc: "skips the pool's own stored version",
      next: pool("a", "10.0.0.0/23"),
      pools: [pool("a", "10.0.0.0/24")],
      previous: pool("a", "10.0.0.0/24"),
      refusal: undefined,
    },
    {
      desc: "ignores another pool whose cidr does not parse",
      next: pool("b", "10.0.0.0/24"),
      pools: [pool("a", "not-a-cidr")],
      refusal: undefined,
    },
    {
      desc: "refuses a cidr change while the pool has allocations",
      next: pool("a", "10.0.0.0/23"),
      pools: [],
      previous: pool("a", "10.0.0.0/24"),
      allocations: { blocks: 1, addresses: 2 },
      refusal:
        "cannot change cidr 10.0.0.0/24 -> 10.0.0.0/23 of IP pool a: 2 address(es) are allocated in 1 of its block(s)",
    },
    {
      desc: "refuses a blockSize change while the pool has allocations",
      next: pool("a", "10.0.0.0/24", { blockSize: 28 }),
      pools: [],
      previous: pool("a", "10.0.0.0/24"),
      allocations: { blocks: 2, addresses: 3 },
      refusal:
        "cannot change blockSize 26 -> 28 of IP pool a: 3 address(es) are allocated in 2 of its block(s)",
    },
    {
      desc: "names both changes at once",
      next: pool("a", "10.0.0.0/23", { blockSize: 28 }),
      pools: [],
      previous: pool("a", "10.0.0.0/24"),
      allocations: { blocks: 1, addresses: 1 },
      refusal:
        "cannot change cidr 10.0.0.0/24 -> 10.0.0.0/23 and blockSize 26 -> 28 of IP pool a: 1 address(es) are allocated in 1 of its block(s)",
    },
    {
      desc: "admits a geometry change of a pool without allocations",
      next: pool("a", "10.0.0.0/24", { blockSize: 28 }),
      pools: [],
      previous: pool("a", "10.0.0.0/24"),
      refusal: undefined,
    },
    {
      desc: "admits other changes of a pool with allocations",
      next: pool("a", "10.0.0.0/24", { natOutgoing: true, namespaceSelector: "all()" }),
      pools: [],
      previous: pool("a", "10.0.0.0/24"),
      allocations: { blocks: 1, addresses: 1 },
      refusal: undefined,
    },
  ];
  for (const { desc, next, pools, previous, allocations, refusal } of cases) {
    it(`validatePoolChange() ${desc}`, () => {
      expect(validatePoolChange(next, pools, previous, allocations ?? NO_ALLOCATIONS)).toBe(
        refusal,
      );
    });
  }
});

describe("poolAllocations()", () => {
  it("poolAllocations() counts used blocks and addresses inside the pool only", () => {
    const blocks = [
      block("10.0.0.0/26", ["10.0.0.1", "10.0.0.2"]),
      block("10.0.0.64/26", []),
      block("10.0.0.128/28", ["10.0.0.129"]),
      block("10.9.0.0/26", ["10.9.0.1"]),
    ];
    expect(poolAllocations(pool("a", "10.0.0.0/24"), blocks)).toEqual({ blocks: 2, addresses: 3 });
  });
});
