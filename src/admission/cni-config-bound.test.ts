import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { parseFloatingIpBound } from "./cni-config-bound.js";

const shipped = (
  parse(readFileSync(new URL("../../manifests/calico-config.yaml", import.meta.url), "utf8")) as {
    data: { cni_network_config: string };
  }
).data.cni_network_config;

describe("parseFloatingIpBound()", () => {
  it("parseFloatingIpBound() reads the shipped template's bound: the default, 16", () => {
    expect(parseFloatingIpBound(shipped)).toEqual({ max: 16 });
  });

  it("parseFloatingIpBound() reads max_floating_ips_per_pod beside feature_control", () => {
    const raised = shipped.replace(
      '"feature_control": {',
      '"max_floating_ips_per_pod": 40,\n          "feature_control": {',
    );
    expect(raised).not.toBe(shipped);
    expect(parseFloatingIpBound(raised)).toEqual({ max: 40 });
  });

  it("parseFloatingIpBound() says why a template cannot be read", () => {
    expect(parseFloatingIpBound("{")).toMatchObject({
      error: expect.stringContaining("the rendered config is not JSON"),
    });
    expect(parseFloatingIpBound(shipped.replace("__CNI_MTU__", "__NOPE__"))).toMatchObject({
      error: expect.stringContaining("unknown placeholder __NOPE__"),
    });
    const tooMany = shipped.replace(
      '"feature_control": {',
      '"max_floating_ips_per_pod": 5000,\n          "feature_control": {',
    );
    expect(parseFloatingIpBound(tooMany)).toMatchObject({
      error: expect.stringContaining("max_floating_ips_per_pod"),
    });
  });
});
