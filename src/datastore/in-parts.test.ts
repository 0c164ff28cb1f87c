import { describe, expect, it } from "vitest";
import { inParts } from "./in-parts.js";

describe("inParts()", () => {
  it("runs every part once, at most inFlight at a time, and keeps the parts' order", async () => {
    let running = 0;
    let most = 0;
    const results = await inParts([...Array(10).keys()], 3, 2, async (part) => {
      running += 1;
      most = Math.max(most, running);
      await new Promise((resolve) => setTimeout(resolve, 5 * (3 - part.length)));
      running -= 1;
      return part.join("");
    });
    expect(results).toEqual(["012", "345", "678", "9"]);
    expect(most).toBe(2);
  });

  it("rejects with the first failure and starts no part after it", async () => {
    const started: number[] = [];
    await expect(
      inParts([1, 2, 3, 4, 5], 1, 1, async ([item]) => {
        started.push(item as number);
        if (item === 2) throw new Error("refused");
        return item;
      }),
    ).rejects.toThrow("refused");
    expect(started).toEqual([1, 2]);
  });

  it("resolves to nothing for nothing", async () => {
    expect(await inParts([], 128, 4, async () => 1)).toEqual([]);
  });
});
