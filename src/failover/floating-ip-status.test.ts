import { describe, expect, it } from "vitest";
import type { Candidate } from "./choose-holder.js";
import { parseFloatingIpSpec } from "./floating-ip.js";
import { planFloatingIpStatus, type ClaimReport } from "./floating-ip-status.js";

const holder: Candidate = {
  namespace: "web",
  pod: "web-1",
  podUID: "u1",
  node: "node-2",
  containerID: "c1",
  endpoint: "eth0",
  network: "k8s-pod-network",
  internalIP: "10.244.0.2",
  readySince: 1,
  createdAt: 1,
  terminating: false,
  nodeLive: true,
};
const report = (extra: Partial<ClaimReport> = {}): ClaimReport => ({
  node: "node-2",
  generation: 3,
  observedGeneration: 3,
  programmed: true,
  announced: "bgp",
  ...extra,
});
const T0 = "2026-12-03T10:00:00.000Z";
const T1 = "2026-12-03T10:00:05.000Z";
const conditions = (status: ReturnType<typeof planFloatingIpStatus>) =>
  Object.fromEntries((status.conditions ?? []).map((c) => [c.type, `${c.status} ${c.reason}`]));

describe("planFloatingIpStatus", () => {
  it("a holder whose node programmed this generation: Assigned, Programmed, Announced", () => {
    const status = planFloatingIpStatus({}, 1, "203.0.113.10", { holder, since: T0 }, report(), T0);
    expect(status).toMatchObject({
      address: "203.0.113.10",
      holder: { pod: "web-1", node: "node-2" },
      since: T0,
      ready: true,
      observedGeneration: 1,
    });
    expect(conditions(status)).toEqual({
      Assigned: "True Held",
      Programmed: "True Programmed",
      Announced: "True Announced",
    });
  });

  it("is Pending until the node reports the claim's current generation, on the holder's node", () => {
    for (const stale of [
      report({ observedGeneration: 2 }),
      report({ node: "node-1" }),
      report({ programmed: false }),
      undefined,
    ]) {
      const status = planFloatingIpStatus({}, 1, "203.0.113.10", { holder, since: T0 }, stale, T0);
      expect(conditions(status)).toMatchObject({
        Programmed: "False Pending",
        Announced: "False Pending",
      });
    }
  });

  it("keeps a condition's transition time while its status holds, and moves it when it changes", () => {
    const first = planFloatingIpStatus(
      {},
      1,
      "203.0.113.10",
      { holder, since: T0 },
      report({ programmed: false }),
      T0,
    );
    const second = planFloatingIpStatus(
      first,
      1,
      "203.0.113.10",
      { holder, since: T0 },
      report(),
      T1,
    );
    const time = (status: typeof first, type: string) =>
      status.conditions?.find((c) => c.type === type)?.lastTransitionTime;
    expect(time(second, "Assigned")).toBe(T0);
    expect(time(second, "Programmed")).toBe(T1);
  });

  it("no holder: Assigned False with the reason, the rest NotAssigned", () => {
    const status = planFloatingIpStatus(
      {},
      2,
      "203.0.113.10",
      {
        holder: undefined,
        reason: "AddressInUse",
        message: "floating IP 203.0.113.10 is already held by a pod in another namespace",
      },
      undefined,
      T0,
    );
    expect(status.holder).toBeUndefined();
    expect(conditions(status)).toEqual({
      Assigned: "False AddressInUse",
      Programmed: "False NotAssigned",
      Announced: "False NotAssigned",
    });
  });
});

describe("parseFloatingIpSpec", () => {
  it("canonical address and the selector", () => {
    expect(parseFloatingIpSpec({ address: "2001:DB8::0:1", podSelector: {} })).toEqual({
      address: "2001:db8::1",
      podSelector: {},
      egress: false,
    });
  });

  it("a pool instead of an address", () => {
    expect(parseFloatingIpSpec({ pool: "floating", podSelector: {} })).toEqual({
      pool: "floating",
      podSelector: {},
      egress: false,
    });
  });

  it.each([
    [
      { podSelector: {} },
      "spec.address must be an IP address, or spec.pool the name of an IP pool",
    ],
    [
      { pool: "a", address: "10.0.0.1", podSelector: {} },
      "give spec.address or spec.pool, not both",
    ],
    [{ pool: 7, podSelector: {} }, "spec.pool must be the name of an IP pool"],
    [
      { address: "10.0.0.0/24", podSelector: {} },
      "invalid floating IP '10.0.0.0/24': not an IP address",
    ],
    [
      { address: "127.0.0.1", podSelector: {} },
      "invalid floating IP '127.0.0.1': loopback address",
    ],
    [{ address: "10.0.0.1" }, "podSelector must be an object"],
    [{ address: "10.0.0.1", podSelector: {}, egress: "yes" }, "spec.egress must be true or false"],
  ])("%j: %s", (spec, problem) => {
    expect(parseFloatingIpSpec(spec)).toEqual({ problem });
  });
});
