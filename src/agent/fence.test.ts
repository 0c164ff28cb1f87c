import { describe, expect, it } from "vitest";
import { planFence, renewalRetryMs, validateFenceAfter, withoutFloatingExports } from "./fence.js";

describe("planFence()", () => {
  const cases = [
    { desc: "fresh contact is not fenced", last: 1000, now: 1500, fenced: false, age: 500 },
    {
      desc: "just under fence-after is not fenced",
      last: 1000,
      now: 8499,
      fenced: false,
      age: 7499,
    },
    { desc: "at fence-after it is fenced", last: 1000, now: 8500, fenced: true, age: 7500 },
    { desc: "long without contact is fenced", last: 1000, now: 60_000, fenced: true, age: 59_000 },
    {
      desc: "a clock behind the contact counts as fresh",
      last: 2000,
      now: 1000,
      fenced: false,
      age: 0,
    },
  ];
  for (const c of cases) {
    it(`planFence() ${c.desc}`, () => {
      expect(planFence({ lastContactAt: c.last, now: c.now, fenceAfterMs: 7500 })).toEqual({
        fenced: c.fenced,
        ageMs: c.age,
      });
    });
  }
});

describe("validateFenceAfter()", () => {
  it("validateFenceAfter() accepts half the TTL", () => {
    expect(validateFenceAfter(7500, 15_000, 5000)).toBeUndefined();
  });
  it("validateFenceAfter() accepts the defaults: half of a 5 s TTL, renewed every third", () => {
    expect(validateFenceAfter(2500, 5000, 5000 / 3)).toBeUndefined();
  });
  it("validateFenceAfter() names a third of 5 s rounded, refusing 1.5 s", () => {
    expect(validateFenceAfter(1500, 5000, 5000 / 3)).toBe(
      "must be more than the renewal period (a third of --status-ttl, 1.667 s), got 1.5 s",
    );
  });
  it("validateFenceAfter() refuses the TTL or more, naming both", () => {
    expect(validateFenceAfter(15_000, 15_000, 5000)).toBe(
      "must be less than --status-ttl (15 s), got 15 s",
    );
  });
  it("validateFenceAfter() refuses the renewal period or less", () => {
    expect(validateFenceAfter(5000, 15_000, 5000)).toMatch(/more than the renewal period .*5 s/);
  });
  it("validateFenceAfter() refuses zero", () => {
    expect(validateFenceAfter(0, 15_000, 5000)).toMatch(/positive/);
  });
});

describe("withoutFloatingExports()", () => {
  it("withoutFloatingExports() drops the floating IPs and keeps the blocks", () => {
    expect(
      withoutFloatingExports(
        ["10.250.1.0/26", "203.0.113.7/32", "2001:db8:f::7/128", "10.250.1.9/32"],
        new Set(["203.0.113.7", "2001:db8:f::7"]),
      ),
    ).toEqual(["10.250.1.0/26", "10.250.1.9/32"]);
  });
});

describe("renewalRetryMs()", () => {
  it("retries the first failure after 250 ms, well before the default fence", () => {
    const ttl = 5000;
    expect(renewalRetryMs(1)).toBe(250);
    // Renewed at c + T/3, failed at once, retried: the answer has this long before F = T/2.
    expect(ttl / 2 - (ttl / 3 + renewalRetryMs(1))).toBeGreaterThan(500);
  });
  it("backs off to 500 ms from the second failure in a row", () => {
    expect([2, 3, 10].map(renewalRetryMs)).toEqual([500, 500, 500]);
  });
});
