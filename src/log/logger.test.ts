import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createFileLogger } from "./logger.js";

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

describe("createFileLogger", () => {
  it("rotates by size, keeps the newest rotated files, and writes errors to stderr too", () => {
    dir = mkdtempSync(join(tmpdir(), "buoy-log-"));
    const path = join(dir, "cni.log");
    const stderrPath = join(dir, "stderr");
    const stderrFd = openSync(stderrPath, "w");
    let minute = 0;
    const clock = () => new Date(Date.UTC(2026, 11, 4, 19, minute));
    // One call's lines are about 100 bytes; the file is rotated past 250.
    const rotation = { maxBytes: 250, maxAgeDays: 30, maxCount: 2 };
    try {
      for (; minute < 8; minute++) {
        const logger = createFileLogger(
          path,
          "info",
          { containerID: "c1" },
          {
            clock,
            rotation,
            stderrFd,
          },
        );
        logger.log("info", "cni.add", { n: minute });
        logger.log("debug", "cni.add", { hidden: true });
        if (minute === 3) logger.log("error", "cni.error", { error: "boom" });
        logger.flush();
      }
    } finally {
      closeSync(stderrFd);
    }
    const files = readdirSync(dir)
      .filter((name) => name.startsWith("cni"))
      .sort();
    expect(files).toHaveLength(3);
    expect(files).toContain("cni.log");
    expect(files.filter((name) => /^cni-2026-12-04T19-0\d-00\.000\.log$/.test(name))).toHaveLength(
      2,
    );
    const current = readFileSync(path, "utf8");
    expect(current.length).toBeLessThanOrEqual(250);
    expect(current).toContain('"n":7');
    expect(current).not.toContain("hidden");
    const stderr = readFileSync(stderrPath, "utf8").trim().split("\n");
    expect(stderr).toHaveLength(1);
    expect(JSON.parse(stderr[0] ?? "")).toMatchObject({ level: "error", error: "boom" });
  });
});
