import { describe, expect, it } from "vitest";
import { labelSelectorProblem, matchesLabels } from "./label-selector.js";

describe("labelSelectorProblem", () => {
  it.each([
    [null, "podSelector must be an object"],
    [[], "podSelector must be an object"],
    [{ matchLabels: { app: 1 } }, "podSelector.matchLabels must be an object of strings"],
    [{ matchExpressions: {} }, "podSelector.matchExpressions must be a list"],
    [
      { matchExpressions: [{ key: "", operator: "In" }] },
      "podSelector.matchExpressions[0].key must be a label key",
    ],
    [
      { matchExpressions: [{ key: "a", operator: "Has" }] },
      "podSelector.matchExpressions[0].operator must be In, NotIn, Exists or DoesNotExist",
    ],
    [
      { matchExpressions: [{ key: "a", operator: "In", values: [] }] },
      "podSelector.matchExpressions[0]: In needs at least one value",
    ],
    [
      { matchExpressions: [{ key: "a", operator: "Exists", values: ["x"] }] },
      "podSelector.matchExpressions[0]: Exists takes no values",
    ],
  ])("%j: %s", (selector, problem) => {
    expect(labelSelectorProblem(selector)).toBe(problem);
  });

  it("accepts {} and well-formed selectors", () => {
    expect(labelSelectorProblem({})).toBeUndefined();
    expect(
      labelSelectorProblem({
        matchLabels: { app: "web" },
        matchExpressions: [{ key: "tier", operator: "NotIn", values: ["canary"] }],
      }),
    ).toBeUndefined();
  });
});

describe("matchesLabels", () => {
  const labels = { app: "web", tier: "front" };
  it.each([
    [{}, true],
    [{ matchLabels: { app: "web" } }, true],
    [{ matchLabels: { app: "db" } }, false],
    [
      { matchExpressions: [{ key: "tier", operator: "In" as const, values: ["front", "x"] }] },
      true,
    ],
    [{ matchExpressions: [{ key: "tier", operator: "NotIn" as const, values: ["front"] }] }, false],
    [{ matchExpressions: [{ key: "zone", operator: "NotIn" as const, values: ["a"] }] }, true],
    [{ matchExpressions: [{ key: "app", operator: "Exists" as const }] }, true],
    [{ matchExpressions: [{ key: "app", operator: "DoesNotExist" as const }] }, false],
    [{ matchExpressions: [{ key: "zone", operator: "In" as const, values: ["a"] }] }, false],
  ])("%j: %s", (selector, expected) => {
    expect(matchesLabels(selector, labels)).toBe(expected);
  });
});
