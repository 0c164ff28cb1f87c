import { describe, expect, it } from "vitest";
import { parseLeaseNamespace } from "./lease-namespace.js";

describe("parseLeaseNamespace()", () => {
  it.each([
    { desc: "nothing given: buoy's own namespace", flag: undefined, env: {}, want: "buoy-system" },
    {
      desc: "the variable",
      flag: undefined,
      env: { BUOY_LEASE_NAMESPACE: "buoy-leases" },
      want: "buoy-leases",
    },
    {
      desc: "an empty variable is unset",
      flag: undefined,
      env: { BUOY_LEASE_NAMESPACE: "" },
      want: "buoy-system",
    },
    {
      desc: "the flag over the variable",
      flag: "ops",
      env: { BUOY_LEASE_NAMESPACE: "buoy-leases" },
      want: "ops",
    },
    {
      desc: "POD_NAMESPACE no longer decides (the DaemonSet runs in kube-system)",
      flag: undefined,
      env: { POD_NAMESPACE: "kube-system" },
      want: "buoy-system",
    },
  ])("$desc", ({ flag, env, want }) => {
    expect(parseLeaseNamespace(flag, env)).toEqual({ ok: true, namespace: want });
  });

  it.each([
    { desc: "upper case", flag: "Buoy", want: "--lease-namespace 'Buoy': not a namespace name" },
    { desc: "a path", flag: "a/b", want: "--lease-namespace 'a/b': not a namespace name" },
    { desc: "empty flag", flag: "", want: "--lease-namespace '': not a namespace name" },
    { desc: "64 characters", flag: "a".repeat(64), want: `'${"a".repeat(64)}': not` },
  ])("refuses $desc", ({ flag, want }) => {
    const parsed = parseLeaseNamespace(flag, {});
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.problem).toContain(want);
  });

  it("names the variable when the variable is wrong, and cuts a long value", () => {
    const parsed = parseLeaseNamespace(undefined, { BUOY_LEASE_NAMESPACE: "x_".repeat(100) });
    expect(parsed).toEqual({
      ok: false,
      problem: `BUOY_LEASE_NAMESPACE '${"x_".repeat(32)}…(truncated, 200 characters)': not a namespace name (lower-case letters, digits and '-', at most 63)`,
    });
  });
});
