import { describe, expect, it } from "vitest";
import { ECHO_MAX_CHARS, truncateEcho } from "./truncate-echo.js";

describe("truncateEcho()", () => {
  const cases: { desc: string; value: string; maxChars?: number; want: string }[] = [
    { desc: "keeps an empty value", value: "", want: "" },
    { desc: "keeps a short value whole", value: '["10.0.0.1"]', want: '["10.0.0.1"]' },
    {
      desc: "keeps a value of exactly the limit whole",
      value: "x".repeat(ECHO_MAX_CHARS),
      want: "x".repeat(ECHO_MAX_CHARS),
    },
    {
      desc: "cuts a longer value and says how long it was",
      value: "x".repeat(ECHO_MAX_CHARS + 1),
      want: `${"x".repeat(ECHO_MAX_CHARS)}…(truncated, ${ECHO_MAX_CHARS + 1} characters)`,
    },
    {
      desc: "counts code points, never splitting a surrogate pair",
      value: "😀😀😀",
      maxChars: 2,
      want: "😀😀…(truncated, 3 characters)",
    },
  ];
  for (const { desc, value, maxChars, want } of cases) {
    it(`truncateEcho() ${desc}`, () => {
      expect(truncateEcho(value, maxChars)).toBe(want);
    });
  }
});
