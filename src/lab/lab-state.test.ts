import { mkdtemp, readdir, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { withStateLock } from "./lab-state.js";

describe("lab state lock", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "buoy-lab-state-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it("withStateLock() runs changes one at a time and removes the lock after each", async () => {
    const events: string[] = [];
    const change = (name: string) =>
      withStateLock(dir, async () => {
        events.push(`${name} in`);
        await pause(20);
        events.push(`${name} out`);
        return name;
      });
    expect(await Promise.all([change("a"), change("b"), change("c")])).toEqual(["a", "b", "c"]);
    for (let i = 0; i < events.length; i += 2) {
      expect(events[i + 1]).toBe(events[i]?.replace(" in", " out"));
    }
    expect(await readdir(dir)).toEqual([]);
  });

  it("withStateLock() releases the lock when the change throws", async () => {
    await expect(withStateLock(dir, () => Promise.reject(new Error("taken")))).rejects.toThrow(
      "taken",
    );
    expect(await withStateLock(dir, () => Promise.resolve("next"))).toBe("next");
  });

  it.each([
    { desc: "whose process is gone", pid: "2147483647\n", ageMs: 0 },
    { desc: "older than 10 s", pid: `${process.pid}\n`, ageMs: 60_000 },
  ])("withStateLock() takes over a lock $desc", async ({ pid, ageMs }) => {
    const lock = join(dir, "state.lock");
    await writeFile(lock, pid);
    const then = new Date(Date.now() - ageMs);
    await utimes(lock, then, then);
    expect(await withStateLock(dir, () => Promise.resolve("ran"))).toBe("ran");
  });
});
