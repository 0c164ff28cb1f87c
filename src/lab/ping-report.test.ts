import { describe, expect, it } from "vitest";
import {
  parsePingSamples,
  summarizePing,
  summarizeUdpPing,
  type PingSamples,
} from "./ping-report.js";

/** n requests every 10 ms; answers to the given ones 1 ms after they went out. */
function samples(n: number, answered: (seq: number) => boolean): PingSamples {
  const sentAtMs = Array.from({ length: n }, (_, i) => i * 10);
  const replies: [number, number][] = sentAtMs
    .map((at, i): [number, number] => [i + 1, at + 1])
    .filter(([seq]) => answered(seq));
  return { intervalMs: 10, sentAtMs, replies };
}

describe("ping reports", () => {
  it.each([
    {
      desc: "nothing lost: the longest gap is about one interval",
      input: samples(100, () => true),
      expected: { sent: 100, received: 100, lost: 0, longestGapMs: 10, lostRanges: [] },
    },
    {
      desc: "an interruption in the middle: from the answer before to the one after",
      input: samples(100, (seq) => seq < 40 || seq > 52),
      expected: { sent: 100, received: 87, lost: 13, longestGapMs: 140, lostRanges: ["40-52"] },
    },
    {
      desc: "lost at the start: from the first request to the first answer",
      input: samples(10, (seq) => seq > 3),
      expected: { sent: 10, received: 7, lost: 3, longestGapMs: 31, lostRanges: ["1-3"] },
    },
    {
      desc: "lost at the end: from the last answer to one interval after the last request",
      input: samples(10, (seq) => seq < 9),
      expected: { sent: 10, received: 8, lost: 2, longestGapMs: 29, lostRanges: ["9-10"] },
    },
    {
      desc: "single losses in several places",
      input: samples(10, (seq) => seq !== 3 && seq !== 7),
      expected: { sent: 10, received: 8, lost: 2, longestGapMs: 20, lostRanges: ["3", "7"] },
    },
    {
      desc: "nothing answered",
      input: samples(5, () => false),
      expected: { sent: 5, received: 0, lost: 5, longestGapMs: 50, lostRanges: ["1-5"] },
    },
    {
      desc: "nothing sent",
      input: samples(0, () => true),
      expected: { sent: 0, received: 0, lost: 0, longestGapMs: 0, lostRanges: [] },
    },
  ])("summarizePing() $desc", ({ input, expected }) => {
    expect(summarizePing(input)).toEqual({ intervalMs: 10, ...expected });
  });

  it("summarizePing() counts a duplicate answer once", () => {
    const input = samples(3, () => true);
    input.replies.push([2, 25]);
    expect(summarizePing(input)).toMatchObject({ received: 3, lost: 0 });
  });

  it("parsePingSamples() reads the probe's last line and refuses anything else", () => {
    const line = JSON.stringify({ intervalMs: 10, sentAtMs: [0, 10], replies: [[1, 0.5]] });
    expect(parsePingSamples(`noise\n${line}\n`)).toEqual({
      intervalMs: 10,
      sentAtMs: [0, 10],
      replies: [[1, 0.5]],
    });
    expect(() => parsePingSamples('{"ok": false}')).toThrow(/not a ping probe's output/);
  });
});

describe("summarizeUdpPing()", () => {
  it("counts requests two pods answered, and names the pods in the order they answered", () => {
    const line = JSON.stringify({
      intervalMs: 5,
      sentAtMs: [0, 5, 10, 15],
      replies: [
        [1, 1, "web-a"],
        [2, 6, "web-a"],
        [2, 7, "web-b"],
        [4, 16, "web-b"],
      ],
    });
    expect(summarizeUdpPing(line)).toMatchObject({
      sent: 4,
      received: 3,
      lost: 1,
      lostRanges: ["3"],
      answeredByTwo: 1,
      pods: ["web-a", "web-b"],
      longestGapMs: 10,
    });
  });
});
