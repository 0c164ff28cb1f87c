import { describe, expect, it } from "vitest";
import type { AgentSource } from "../datastore/agent-source.js";
import type { Logger } from "../log/logger.js";
import { createMetrics } from "./metrics.js";
import { networkPolicyCheck } from "./network-policy-check.js";

function setup(answers: (boolean | Error)[]) {
  const lines: { level: string; event: string; fields: Record<string, unknown> }[] = [];
  const logger: Logger = {
    log: (level, event, fields = {}) => void lines.push({ level, event, fields }),
    flush: () => {},
  };
  const source = {
    networkPoliciesPresent: async () => {
      const answer = answers.shift();
      if (answer instanceof Error) throw answer;
      return answer ?? false;
    },
  } as Partial<AgentSource> as AgentSource;
  const metrics = createMetrics({ networkPolicies: true });
  const check = networkPolicyCheck(source, logger, metrics.networkPolicies);
  const gauge = async () =>
    (await metrics.registry.getSingleMetricAsString("buoy_network_policies_present"))
      .split("\n")
      .at(-1);
  return { lines, check: check as () => Promise<void>, gauge };
}

describe("networkPolicyCheck()", () => {
  it("networkPolicyCheck() warns once when NetworkPolicy objects appear, and sets the gauge every time", async () => {
    const { lines, check, gauge } = setup([false, true, true, false]);
    await check();
    expect(await gauge()).toBe("buoy_network_policies_present 0");
    expect(lines).toEqual([]);
    await check();
    await check();
    expect(await gauge()).toBe("buoy_network_policies_present 1");
    expect(
      lines.map((line) => `${line.level} ${line.event} ${String(line.fields.present)}`),
    ).toEqual(["warn agent.networkpolicy true"]);
    expect(lines[0]?.fields.reason).toMatch(/buoy enforces none/);
    await check();
    expect(await gauge()).toBe("buoy_network_policies_present 0");
    expect(lines.at(-1)).toMatchObject({ level: "info", fields: { present: false } });
  });

  it("networkPolicyCheck() logs a failed ask once per error and keeps the gauge", async () => {
    const denied = new Error("networkpolicies.networking.k8s.io is forbidden");
    const { lines, check, gauge } = setup([true, denied, denied, true]);
    await check();
    await check();
    await check();
    expect(await gauge()).toBe("buoy_network_policies_present 1");
    await check();
    expect(lines.map((line) => line.fields.error ?? line.fields.present)).toEqual([
      true,
      denied.message,
    ]);
  });

  it("networkPolicyCheck() is nothing for a datastore that cannot tell (etcd), and no gauge is exported", async () => {
    const logger: Logger = { log: () => {}, flush: () => {} };
    expect(networkPolicyCheck({} as AgentSource, logger, createMetrics().networkPolicies)).toBe(
      undefined,
    );
    expect(await createMetrics().registry.metrics()).not.toContain("buoy_network_policies_present");
  });
});
