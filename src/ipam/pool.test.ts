import { describe, expect, it } from "vitest";
import {
  namespaceSelectorProblem,
  poolRestrictsNamespaces,
  poolSelectsNamespace,
  storedPool,
  validatePool,
} from "./pool.js";

describe("validatePool()", () => {
  it("validatePool() fills Calico's defaults", () => {
    expect(validatePool("pods", { cidr: "10.244.0.0/16" })).toEqual({
      name: "pods",
      cidr: "10.244.0.0/16",
      blockSize: 26,
      disabled: false,
      nodeSelector: "all()",
      natOutgoing: false,
      disableBGPExport: false,
    });
    expect(validatePool("v6", { cidr: "fd00::/64" }).blockSize).toBe(122);
  });
  it("validatePool() accepts all() and refuses a selector it would ignore", () => {
    expect(validatePool("a", { cidr: "10.0.0.0/24", nodeSelector: "all()" }).nodeSelector).toBe(
      "all()",
    );
    expect(() =>
      validatePool("rack-a", { cidr: "10.0.0.0/24", nodeSelector: 'rack == "a"' }),
    ).toThrow(
      `IP pool rack-a: nodeSelector 'rack == "a"' is not supported yet; buoy assigns from every pool on every node (use all())`,
    );
  });
  it("validatePool() refuses a nodeSelector that does not parse", () => {
    expect(() => validatePool("p", { cidr: "10.0.0.0/24", nodeSelector: "rack ==" })).toThrow(
      "IP pool p: nodeSelector 'rack ==' is not a valid selector: expected a quoted value after '==' at character 8, found the end",
    );
  });
  it("validatePool() keeps a namespaceSelector, and leaves it out when absent or empty", () => {
    const spec = { cidr: "10.0.0.0/24", namespaceSelector: " team == 'a' " };
    expect(validatePool("p", spec).namespaceSelector).toBe("team == 'a'");
    expect(validatePool("p", { cidr: "10.0.0.0/24" })).not.toHaveProperty("namespaceSelector");
    expect(validatePool("p", { cidr: "10.0.0.0/24", namespaceSelector: "" })).not.toHaveProperty(
      "namespaceSelector",
    );
  });
  it("validatePool() refuses a namespaceSelector that does not parse or is no string", () => {
    expect(() =>
      validatePool("p", { cidr: "10.0.0.0/24", namespaceSelector: "team in ('a')" }),
    ).toThrow(
      "IP pool p: namespaceSelector 'team in ('a')' is not a valid selector: expected '{' after 'in' at character 9, found '('a')'",
    );
    expect(() => validatePool("p", { cidr: "10.0.0.0/24", namespaceSelector: 7 })).toThrow(
      "IP pool p: spec.namespaceSelector must be a string",
    );
  });
  it("validatePool() keeps Calico's vxlanMode, leaves it out when absent, and refuses another", () => {
    for (const vxlanMode of ["Never", "Always", "CrossSubnet"]) {
      expect(validatePool("p", { cidr: "10.0.0.0/24", vxlanMode }).vxlanMode).toBe(vxlanMode);
    }
    expect(validatePool("p", { cidr: "10.0.0.0/24", vxlanMode: "" })).not.toHaveProperty(
      "vxlanMode",
    );
    expect(() => validatePool("p", { cidr: "10.0.0.0/24", vxlanMode: "always" })).toThrow(
      "IP pool p: vxlanMode must be one of Never, Always, CrossSubnet",
    );
  });
  it("validatePool() keeps blockSize within Calico's bounds, 20..32 and 116..128", () => {
    expect(() => validatePool("p", { cidr: "10.0.0.0/8", blockSize: 19 })).toThrow(
      "IP pool p: blockSize must be an integer between 20 and 32",
    );
    expect(() => validatePool("p", { cidr: "fd00::/48", blockSize: 64 })).toThrow(
      "IP pool p: blockSize must be an integer between 116 and 128",
    );
    expect(validatePool("p", { cidr: "10.0.0.0/8", blockSize: 20 }).blockSize).toBe(20);
  });
  it("validatePool() refuses a block size outside the pool", () => {
    expect(() => validatePool("p", { cidr: "10.0.0.0/24", blockSize: 20 })).toThrow(
      "blockSize must be an integer between 24 and 32",
    );
  });
});

describe("poolSelectsNamespace()", () => {
  const pool = (namespaceSelector?: string) =>
    storedPool("p", { cidr: "10.0.0.0/24", ...(namespaceSelector ? { namespaceSelector } : {}) });
  const cases = [
    {
      desc: "no selector selects every namespace",
      selector: undefined,
      labels: {},
      selected: true,
    },
    { desc: "a matching selector", selector: "team == 'a'", labels: { team: "a" }, selected: true },
    {
      desc: "another namespace's labels",
      selector: "team == 'a'",
      labels: { team: "b" },
      selected: false,
    },
    { desc: "a namespace without labels", selector: "has(team)", labels: {}, selected: false },
    { desc: "!has() and no labels", selector: "!has(team)", labels: {}, selected: true },
    {
      desc: "a selector that does not parse selects none",
      selector: "team ==",
      labels: { team: "a" },
      selected: false,
    },
  ];
  for (const { desc, selector, labels, selected } of cases) {
    it(`poolSelectsNamespace() ${desc}`, () => {
      expect(poolSelectsNamespace(pool(selector), labels)).toBe(selected);
    });
  }
  it("poolRestrictsNamespaces() is false for no selector and all() only", () => {
    expect(poolRestrictsNamespaces(pool())).toBe(false);
    expect(poolRestrictsNamespaces(pool("all()"))).toBe(false);
    expect(poolRestrictsNamespaces(pool("has(a)"))).toBe(true);
    expect(poolRestrictsNamespaces(pool("has("))).toBe(true);
  });
  it("storedPool() keeps a selector validatePool() refuses, and namespaceSelectorProblem() says why", () => {
    expect(namespaceSelectorProblem(pool("has(a)"))).toBeUndefined();
    expect(namespaceSelectorProblem(pool("has(a"))).toBe(
      "IP pool p: namespaceSelector 'has(a' is not a valid selector: expected ')' after the label in has( at character 6, found the end; no namespace may use the pool",
    );
  });
});
