import { describe, expect, it } from "vitest";
import { JsonPathError, renderJsonPath } from "./jsonpath.js";

const list = {
  apiVersion: "buoy.dev/v1",
  kind: "IPPoolList",
  items: [
    { metadata: { name: "pods" }, spec: { cidr: "10.244.0.0/16", blockSize: 26, disabled: false } },
    {
      metadata: { name: "floating" },
      spec: { cidr: "10.96.0.0/24", blockSize: 28, disabled: true },
    },
    { metadata: { name: "v6", "a.b": "dotted" }, spec: { cidr: "fd00::/64", blockSize: 122 } },
  ],
};

describe("renderJsonPath()", () => {
  const cases: [string, string][] = [
    ["{.kind}", "IPPoolList"],
    ["{.items[*].metadata.name}", "pods floating v6"],
    ["{.items[0].spec.cidr}", "10.244.0.0/16"],
    ["{.items[-1].metadata.name}", "v6"],
    ["{.items[1:].metadata.name}", "floating v6"],
    ["{.items[2].metadata['a.b']}", "dotted"],
    ["{.items[?(@.spec.disabled==true)].metadata.name}", "floating"],
    ["{.items[?(@.spec.blockSize > 26)].metadata.name}", "floating v6"],
    ["{.items[?(@.spec.disabled)].metadata.name}", "floating"],
    ["{.items[?(@.metadata.name!='pods')].spec.cidr}", "10.96.0.0/24 fd00::/64"],
    ["{..cidr}", "10.244.0.0/16 10.96.0.0/24 fd00::/64"],
    ["{.items[0].spec}", '{"cidr":"10.244.0.0/16","blockSize":26,"disabled":false}'],
    [
      '{range .items[*]}{.metadata.name}{"\\t"}{.spec.cidr}{"\\n"}{end}',
      "pods\t10.244.0.0/16\nfloating\t10.96.0.0/24\nv6\tfd00::/64\n",
    ],
    ["name: {$.items[0].metadata.name}!", "name: pods!"],
    [
      "{range .items[0:2]}[{.}]{end}",
      '[{"metadata":{"name":"pods"},"spec":{"cidr":"10.244.0.0/16","blockSize":26,"disabled":false}}][{"metadata":{"name":"floating"},"spec":{"cidr":"10.96.0.0/24","blockSize":28,"disabled":true}}]',
    ],
  ];
  for (const [template, want] of cases) {
    it(`renders ${template}`, () => {
      expect(renderJsonPath(template, list)).toBe(want);
    });
  }

  it("prints nothing for a path that finds nothing, as kubectl; refuses a template that does not parse", () => {
    expect(renderJsonPath("[{.items[0].status}]", list)).toBe("[]");
    expect(() => renderJsonPath("{.items", list)).toThrow(
      new JsonPathError("unclosed { at position 1"),
    );
    expect(() => renderJsonPath("{range .items[*]}{.kind}", list)).toThrow("{range} without {end}");
    expect(() => renderJsonPath("{items}", list)).toThrow("a path starts with '.'");
  });

  it("stays linear on hostile templates and deep data, and refuses nesting past its bound", () => {
    const started = performance.now();
    expect(
      renderJsonPath(`{.items[?(@${" ".repeat(20_000)}.spec.disabled)].metadata.name}`, list),
    ).toBe("floating");
    expect(performance.now() - started).toBeLessThan(2000);
    const wide = { items: Array.from({ length: 200_000 }, (_, index) => ({ name: index })) };
    expect(renderJsonPath("{..name}", wide).split(" ")).toHaveLength(200_000);
    const nested = `{.a${"[?(@.b".repeat(40)}${")]".repeat(40)}}`;
    expect(() => renderJsonPath(nested, list)).toThrow("filters nested deeper than 16");
  });
});
