import { describe, expect, it } from "vitest";
import { LeaseClock } from "./lease-clock.js";

describe("LeaseClock", () => {
  it("a Lease unchanged for its duration lapses while others' renewals are heard", () => {
    const clock = new LeaseClock(2500);
    clock.started(0);
    clock.seen("buoy-node.a", "1", 0);
    clock.seen("buoy-node.b", "1", 0);
    for (let t = 1000; t <= 6000; t += 1000) clock.seen("buoy-node.b", String(t), t);
    expect(clock.live("buoy-node.a", 5000, 4900)).toBe(true);
    expect(clock.live("buoy-node.a", 5000, 5100)).toBe(false);
    expect(clock.live("buoy-node.b", 5000, 6100)).toBe(true);
  });

  it("time stops when the watch goes quiet: a stalled watch makes no node look lost", () => {
    const clock = new LeaseClock(2500);
    clock.started(0);
    clock.seen("buoy-node.a", "1", 0);
    clock.seen("buoy-node.b", "1", 1000);
    // Nothing heard after 1 s: time runs to 3.5 s only.
    expect(clock.live("buoy-node.a", 5000, 60_000)).toBe(true);
  });

  it("a restarted watch counts no Lease as older than its start; an unknown Lease is not live", () => {
    const clock = new LeaseClock(2500);
    clock.started(0);
    clock.seen("buoy-node.a", "1", 0);
    clock.started(10_000);
    clock.seen("buoy-node.b", "2", 14_000);
    expect(clock.live("buoy-node.a", 5000, 14_000)).toBe(true);
    expect(clock.live("buoy-node.c", 5000, 14_000)).toBe(false);
    clock.forget("buoy-node.a");
    expect(clock.live("buoy-node.a", 5000, 14_000)).toBe(false);
  });
});
