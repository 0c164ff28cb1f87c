import { describe, expect, it } from "vitest";
import { refreshDue, tokenTimes } from "./token-times.js";

const jwt = (claims: Record<string, unknown>) =>
  ["e30", Buffer.from(JSON.stringify(claims)).toString("base64url"), "sig"].join(".");

describe("tokenTimes()", () => {
  it("reads iat and exp from a JWT's claims", () => {
    expect(tokenTimes(jwt({ iat: 1_000, exp: 4_600, sub: "x" }))).toEqual({
      issuedAt: new Date(1_000_000),
      expiresAt: new Date(4_600_000),
    });
  });

  it("is undefined for a static token, a JWT without times, or times out of order", () => {
    expect(tokenTimes("d3c5a8f0e1")).toBeUndefined();
    expect(tokenTimes(jwt({ sub: "x" }))).toBeUndefined();
    expect(tokenTimes(jwt({ iat: 5, exp: 5 }))).toBeUndefined();
    expect(tokenTimes("a.%%%.c")).toBeUndefined();
  });
});

describe("refreshDue()", () => {
  it("is due from half the token's lifetime on", () => {
    const times = { issuedAt: new Date(0), expiresAt: new Date(3_600_000) };
    expect(refreshDue(times, new Date(1_799_999))).toBe(false);
    expect(refreshDue(times, new Date(1_800_000))).toBe(true);
    expect(refreshDue(times, new Date(9_000_000))).toBe(true);
  });
});
