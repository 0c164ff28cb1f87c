import { describe, expect, it } from "vitest";
import { validatePool } from "./pool.js";

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
  it("validatePool() refuses a block size outside the pool", () => {
    expect(() => validatePool("p", { cidr: "10.0.0.0/24", blockSize: 20 })).toThrow(
      "blockSize must be an integer between 24 and 32",
    );
  });
});
