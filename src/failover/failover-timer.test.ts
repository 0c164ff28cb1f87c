import { describe, expect, it } from "vitest";
import { FailoverTimer } from "./failover-timer.js";

describe("FailoverTimer", () => {
  it("times from the loss to the moved claim programmed, once", () => {
    const timer = new FailoverTimer();
    timer.lost("shop/web", "NodeLost", 3, 1000);
    // A report about the claim before the move does not end it.
    expect(timer.programmed("shop/web", 3, 1200)).toBeUndefined();
    expect(timer.programmed("shop/web", 4, 1750)).toEqual({ reason: "NodeLost", seconds: 0.75 });
    expect(timer.programmed("shop/web", 4, 1800)).toBeUndefined();
  });

  it("keeps the first loss of one claim version, and starts again for a later holder's", () => {
    const timer = new FailoverTimer();
    timer.lost("shop/web", "NotReady", 3, 1000);
    timer.lost("shop/web", "Deleted", 3, 1500);
    expect(timer.reason("shop/web")).toBe("NotReady");
    timer.lost("shop/web", "Deleted", 5, 2000);
    expect(timer.programmed("shop/web", 6, 2100)).toEqual({ reason: "Deleted", seconds: 0.1 });
  });

  it("forgets a loss the holder recovered from before the claim moved", () => {
    const timer = new FailoverTimer();
    timer.lost("shop/web", "NotReady", 3, 1000);
    timer.recovered("shop/web", 3);
    expect(timer.programmed("shop/web", 4, 2000)).toBeUndefined();
  });
});
