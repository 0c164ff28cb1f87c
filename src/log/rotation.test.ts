import { describe, expect, it } from "vitest";
import { needsRotation, rotatedName, rotatedToRemove, type RotationLimits } from "./rotation.js";

const limits: RotationLimits = { maxBytes: 1000, maxAgeDays: 2, maxCount: 3 };
const now = new Date("2026-12-04T19:30:00.000Z");

describe("log rotation", () => {
  it("rotates a file this write would take past the size, never an empty one", () => {
    expect(needsRotation(900, 100, limits)).toBe(false);
    expect(needsRotation(901, 100, limits)).toBe(true);
    // One write larger than the limit goes to a fresh file, not rotated twice.
    expect(needsRotation(0, 5000, limits)).toBe(false);
    expect(needsRotation(10_000, 1, { ...limits, maxBytes: 0 })).toBe(false);
  });

  it("names the rotated file by the time, as Calico's lumberjack does", () => {
    expect(rotatedName("cni.log", now)).toBe("cni-2026-12-04T19-30-00.000.log");
    expect(rotatedName("cni", now)).toBe("cni-2026-12-04T19-30-00.000");
  });

  it("removes rotated files past the count and the age, and nothing else", () => {
    const names = [
      "cni.log",
      "cni-2026-12-04T19-00-00.000.log",
      "cni-2026-12-04T18-00-00.000.log",
      "cni-2026-12-03T18-00-00.000.log",
      "cni-2026-12-03T17-00-00.000.log", // fourth newest: past the count
      "cni-2026-11-30T00-00-00.000.log", // past the count and the age
      "other-2026-11-01T00-00-00.000.log",
      "cni-not-a-time.log",
    ];
    expect(rotatedToRemove("cni.log", names, limits, now).sort()).toEqual([
      "cni-2026-11-30T00-00-00.000.log",
      "cni-2026-12-03T17-00-00.000.log",
    ]);
    expect(
      rotatedToRemove("cni.log", names, { maxBytes: 1, maxAgeDays: 1, maxCount: 0 }, now).sort(),
    ).toEqual([
      "cni-2026-11-30T00-00-00.000.log",
      "cni-2026-12-03T17-00-00.000.log",
      "cni-2026-12-03T18-00-00.000.log",
    ]);
  });
});
