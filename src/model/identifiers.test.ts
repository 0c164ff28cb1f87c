import { describe, expect, it } from "vitest";
import { containerIdProblem, interfaceNameProblem, nodeNameProblem } from "./identifiers.js";

type Case = { desc: string; value: string; problem?: RegExp };

function table(name: string, check: (value: string) => string | undefined, cases: Case[]) {
  for (const { desc, value, problem } of cases) {
    it(`${name}() ${problem ? "refuses" : "accepts"} ${desc}`, () => {
      const got = check(value);
      if (problem === undefined) expect(got).toBeUndefined();
      else expect(got).toMatch(problem);
    });
  }
}

describe("interfaceNameProblem()", () => {
  table("interfaceNameProblem", interfaceNameProblem, [
    { desc: "eth0", value: "eth0" },
    { desc: "net1", value: "net1" },
    { desc: "15 bytes", value: "a".repeat(15) },
    { desc: "a dot inside", value: "eth0.100" },
    { desc: "empty", value: "", problem: /^interface name is empty$/ },
    { desc: "16 bytes", value: "a".repeat(16), problem: /longer than 15 bytes/ },
    { desc: "8 two-byte characters (16 bytes)", value: "é".repeat(8), problem: /longer than 15/ },
    { desc: ".", value: ".", problem: /is \. or \.\.$/ },
    { desc: "..", value: "..", problem: /is \. or \.\.$/ },
    { desc: "a slash", value: "../eth0", problem: /contains \/ or : or whitespace$/ },
    { desc: "a colon", value: "eth0:1", problem: /contains \/ or : or whitespace$/ },
    { desc: "a space", value: "eth 0", problem: /contains \/ or : or whitespace$/ },
    { desc: "a newline (another ip -batch line)", value: "e\nlink", problem: /whitespace$/ },
    { desc: "'_' and '-'", value: "net_1-a" },
    { desc: "a '#' (an ip -batch comment)", value: "eth0#x", problem: /only letters, digits/ },
    { desc: "a double quote", value: 'eth"0', problem: /only letters, digits/ },
    { desc: "a backslash", value: "eth\\0", problem: /only letters, digits/ },
    { desc: "a non-ASCII letter", value: "éth0", problem: /only letters, digits/ },
  ]);
});

describe("containerIdProblem()", () => {
  table("containerIdProblem", containerIdProblem, [
    { desc: "a hex ID", value: "3f2a9c0d" },
    { desc: "'_', '.' and '-' after the first", value: "a_b.c-d" },
    { desc: "empty", value: "", problem: /^container ID is empty$/ },
    { desc: "a slash", value: "a/../b", problem: /alphanumeric/ },
    { desc: "a leading dash", value: "-a", problem: /alphanumeric/ },
    { desc: "a space", value: "a b", problem: /alphanumeric/ },
  ]);
});

describe("nodeNameProblem()", () => {
  table("nodeNameProblem", nodeNameProblem, [
    { desc: "a short name", value: "node-1" },
    { desc: "a dotted name", value: "worker-1.example.com" },
    { desc: "a digit first", value: "1node" },
    { desc: "253 characters", value: `${"a".repeat(63)}.`.repeat(3) + "a".repeat(61) },
    { desc: "empty", value: "", problem: /^node name is empty$/ },
    { desc: "254 characters", value: "a".repeat(254), problem: /longer than 253/ },
    { desc: "upper case", value: "Node-1", problem: /DNS-1123 subdomain/ },
    { desc: "a slash", value: "n1/../n2", problem: /DNS-1123 subdomain/ },
    { desc: "an underscore", value: "node_1", problem: /DNS-1123 subdomain/ },
    { desc: "a trailing dash", value: "node-", problem: /DNS-1123 subdomain/ },
    { desc: "an empty part", value: "a..b", problem: /DNS-1123 subdomain/ },
  ]);
});
