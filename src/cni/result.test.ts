import { describe, expect, it } from "vitest";
import { parseResult, renderResult, type CniResult } from "./result.js";
import { SUPPORTED_VERSIONS } from "./versions.js";

const dualStack: CniResult = {
  interfaces: [
    { name: "cali0123456789a", mac: "ee:ee:ee:ee:ee:ee" },
    { name: "eth0", mac: "02:00:00:00:00:01", sandbox: "/var/run/netns/p" },
  ],
  ips: [
    { address: "10.244.0.5/32", interface: 1 },
    { address: "fd00::5/128", interface: 1 },
  ],
  routes: [{ dst: "0.0.0.0/0" }, { dst: "::/0" }],
  dns: {},
};

describe("renderResult()", () => {
  it("renderResult() prints 0.2.0 with ip4 and ip6 sections", () => {
    expect(renderResult(dualStack, "0.2.0")).toEqual({
      cniVersion: "0.2.0",
      ip4: { ip: "10.244.0.5/32", routes: [{ dst: "0.0.0.0/0" }] },
      ip6: { ip: "fd00::5/128", routes: [{ dst: "::/0" }] },
      dns: {},
    });
  });
  it("renderResult() prints 0.3.1 and 0.4.0 with a version per ip", () => {
    for (const version of ["0.3.1", "0.4.0"] as const) {
      const out = renderResult(dualStack, version) as { ips: { version: string }[] };
      expect(out.ips.map((ip) => ip.version)).toEqual(["4", "6"]);
    }
  });
  it("renderResult() prints 1.x without the version field", () => {
    const out = renderResult(dualStack, "1.1.0") as { cniVersion: string; ips: object[] };
    expect(out.cniVersion).toBe("1.1.0");
    expect(out.ips[0]).toEqual({ address: "10.244.0.5/32", interface: 1 });
  });
  for (const version of SUPPORTED_VERSIONS) {
    it(`parseResult() reads back what renderResult() prints for ${version}`, () => {
      const back = parseResult(renderResult(dualStack, version));
      expect(back.ips.map((ip) => ip.address)).toEqual(["10.244.0.5/32", "fd00::5/128"]);
      expect(back.routes.map((route) => route.dst)).toEqual(["0.0.0.0/0", "::/0"]);
    });
  }
  it("parseResult() reads host-local's output", () => {
    const hostLocal = {
      cniVersion: "1.0.0",
      ips: [{ address: "10.88.0.2/16", gateway: "10.88.0.1" }],
      routes: [{ dst: "0.0.0.0/0" }],
      dns: {},
    };
    expect(parseResult(hostLocal).ips).toEqual([{ address: "10.88.0.2/16", gateway: "10.88.0.1" }]);
  });
  it("parseResult() refuses a shape it cannot read", () => {
    expect(() => parseResult("nope")).toThrow();
    expect(() => parseResult({ ips: [{ gateway: "1.2.3.4" }] })).toThrow("without an address");
  });
});
