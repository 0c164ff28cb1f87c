import { describe, expect, it } from "vitest";
import { parseSelector, selects, type Labels } from "./selector.js";

const team = { team: "a", tier: "web" };
const other = { team: "b" };
const none: Labels = {};

describe("selects()", () => {
  const cases: { desc: string; selector: string; selected: Labels[]; not: Labels[] }[] = [
    { desc: "all() selects everything", selector: "all()", selected: [team, none], not: [] },
    { desc: "an empty selector is all()", selector: "  ", selected: [team, none], not: [] },
    { desc: "== needs the label", selector: "team == 'a'", selected: [team], not: [other, none] },
    { desc: "double quotes too", selector: 'team=="a"', selected: [team], not: [other] },
    {
      desc: "!= selects a missing label",
      selector: "team != 'a'",
      selected: [other, none],
      not: [team],
    },
    { desc: "has()", selector: "has(tier)", selected: [team], not: [other, none] },
    { desc: "!has()", selector: "!has(tier)", selected: [other, none], not: [team] },
    { desc: "in", selector: "team in {'a', 'c'}", selected: [team], not: [other, none] },
    { desc: "an empty set", selector: "team in {}", selected: [], not: [team, none] },
    { desc: "not in", selector: "team not in {'a'}", selected: [other, none], not: [team] },
    { desc: "&&", selector: "team == 'a' && tier == 'web'", selected: [team], not: [other] },
    { desc: "||", selector: "team == 'b' || has(tier)", selected: [team, other], not: [none] },
    {
      desc: "&& binds tighter than ||",
      selector: "team == 'b' || team == 'a' && tier == 'db'",
      selected: [other],
      not: [team, none],
    },
    {
      desc: "parentheses group",
      selector: "(team == 'b' || team == 'a') && tier == 'web'",
      selected: [team],
      not: [other, none],
    },
    {
      desc: "! negates a group",
      selector: "!(team == 'a' || team == 'b')",
      selected: [none],
      not: [team, other],
    },
    {
      desc: "keys with a prefix",
      selector: "kubernetes.io/metadata.name == 'prod'",
      selected: [{ "kubernetes.io/metadata.name": "prod" }],
      not: [none],
    },
    { desc: "contains", selector: "tier contains 'e'", selected: [team], not: [other] },
    { desc: "starts with", selector: "tier starts with 'we'", selected: [team], not: [other] },
    { desc: "ends with", selector: "tier ends with 'eb'", selected: [team], not: [other] },
    {
      desc: "a key that looks like a keyword",
      selector: "has == 'x' && all != 'y'",
      selected: [{ has: "x" }],
      not: [none],
    },
  ];
  for (const { desc, selector, selected, not } of cases) {
    it(`selects() ${desc}: ${selector}`, () => {
      const parsed = parseSelector(selector);
      for (const labels of selected)
        expect(selects(parsed, labels), JSON.stringify(labels)).toBe(true);
      for (const labels of not) expect(selects(parsed, labels), JSON.stringify(labels)).toBe(false);
    });
  }
});

describe("parseSelector()", () => {
  const malformed: { desc: string; selector: string; error: string }[] = [
    {
      desc: "a bare label",
      selector: "team",
      error:
        "expected '==', '!=', 'in', 'not in', 'contains', 'starts with' or 'ends with' after 'team' at character 5, found the end",
    },
    {
      desc: "an unquoted value",
      selector: "team == a",
      error: "expected a quoted value after '==' at character 9, found 'a'",
    },
    {
      desc: "an unclosed quote",
      selector: "team == 'a",
      error: "expected a closing ' at character 9, found ''a'",
    },
    {
      desc: "a single =",
      selector: "team = 'a'",
      error:
        "expected '==', '!=', 'in', 'not in', 'contains', 'starts with' or 'ends with' after 'team' at character 6, found '= 'a''",
    },
    {
      desc: "an unclosed parenthesis",
      selector: "(has(a)",
      error: "expected ')' at character 8, found the end",
    },
    {
      desc: "has() without its parenthesis",
      selector: "has(a",
      error: "expected ')' after the label in has( at character 6, found the end",
    },
    {
      desc: "a dangling &&",
      selector: "has(a) &&",
      error: "expected a label, all(), has(label), '!' or '(' at character 10, found the end",
    },
    {
      desc: "a single &",
      selector: "has(a) & has(b)",
      error: "expected '&&', '||' or the end at character 8, found '& has(b)'",
    },
    {
      desc: "a set without braces",
      selector: "team in ('a')",
      error: "expected '{' after 'in' at character 9, found '('a')'",
    },
    {
      desc: "a set without commas",
      selector: "team in {'a' 'b'}",
      error: "expected ',' or '}' at character 14, found ''b'}'",
    },
    {
      desc: "a trailing comma",
      selector: "team in {'a',}",
      error: "expected a quoted value after ',' at character 14, found '}'",
    },
    {
      desc: "Kubernetes' set syntax",
      selector: "team in (a, b)",
      error: "expected '{' after 'in' at character 9, found '(a, b)'",
    },
    {
      desc: "'!' nested 65 deep",
      selector: "!".repeat(65) + "has(a)",
      error: "nested deeper than 64 ('!' and parentheses) at character 66",
    },
    {
      desc: "parentheses nested 65 deep",
      selector: "(".repeat(65) + "has(a)" + ")".repeat(65),
      error: "nested deeper than 64 ('!' and parentheses) at character 66",
    },
    {
      desc: "200000 '!' (a stack overflow before the bound)",
      selector: "!".repeat(200_000),
      error: "selector is 200000 characters; at most 4096",
    },
  ];
  for (const { desc, selector, error } of malformed) {
    it(`parseSelector() refuses ${desc}: ${selector.slice(0, 40)}`, () => {
      expect(() => parseSelector(selector)).toThrow(error);
    });
  }
  it("parseSelector() takes '!' and parentheses 64 deep", () => {
    expect(() => parseSelector("!".repeat(64) + "has(a)")).not.toThrow();
    expect(() => parseSelector("(".repeat(64) + "has(a)" + ")".repeat(64))).not.toThrow();
  });
  it("parseSelector() gives the tree", () => {
    expect(parseSelector("!has(a) && b in {'x'}")).toEqual({
      op: "&&",
      left: { op: "!", selector: { op: "has", key: "a" } },
      right: { op: "in", key: "b", values: ["x"] },
    });
  });
});
