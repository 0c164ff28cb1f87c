import { describe, expect, it } from "vitest";
import type { WorkloadEndpoint } from "../model/records.js";
import { candidatesFor, type PodView } from "./candidates.js";

const endpoint = (
  pod: string,
  uid: string,
  node: string,
  extra: Partial<WorkloadEndpoint> = {},
): WorkloadEndpoint => ({
  node,
  namespace: "web",
  pod,
  podUID: uid,
  containerID: `c-${pod}`,
  endpoint: "eth0",
  interfaceName: "cali1",
  mac: "",
  ipNetworks: ["10.244.0.2/32", "fd00::2/128"],
  ipNATs: [],
  network: "k8s-pod-network",
  createdAt: "",
  ...extra,
});
const pod = (name: string, extra: Partial<PodView["metadata"]> = {}, ready = true): PodView => ({
  metadata: {
    namespace: "web",
    name,
    uid: `u-${name}`,
    labels: { app: "web" },
    creationTimestamp: "2026-12-03T10:00:00Z",
    ...extra,
  },
  spec: { nodeName: "node-1" },
  status: {
    phase: "Running",
    conditions: [
      {
        type: "Ready",
        status: ready ? "True" : "False",
        lastTransitionTime: "2026-12-03T10:00:01Z",
      },
    ],
  },
});

describe("candidatesFor", () => {
  const endpoints = new Map<string, WorkloadEndpoint[]>([
    ["u-a", [endpoint("a", "u-a", "node-1")]],
    ["u-b", [endpoint("b", "u-b", "node-1")]],
    // Recorded by node-2 for a pod bound to node-1: not this pod's.
    ["u-c", [endpoint("c", "u-c", "node-2")]],
    // Another pod's name under this uid: not this pod's either.
    ["u-d", [endpoint("x", "u-d", "node-1")]],
  ]);
  const of = (uid: string) => endpoints.get(uid) ?? [];

  it("joins each selected pod with its own endpoint, the address of the family, readiness and liveness", () => {
    const found = candidatesFor(
      "203.0.113.10",
      { matchLabels: { app: "web" } },
      "web",
      [pod("a"), pod("b", {}, false)],
      of,
      (node) => node === "node-1",
    );
    expect(
      found.map((c) => [
        c.pod,
        c.containerID,
        c.internalIP,
        c.readySince !== undefined,
        c.nodeLive,
      ]),
    ).toEqual([
      ["a", "c-a", "10.244.0.2", true, true],
      ["b", "c-b", "10.244.0.2", false, true],
    ]);
    expect(candidatesFor("2001:db8::1", {}, "web", [pod("a")], of, () => true)[0]?.internalIP).toBe(
      "fd00::2",
    );
  });

  it("leaves out pods of other namespaces, unselected, finished, without their own endpoint", () => {
    const other = pod("a", { namespace: "other" });
    const unselected = pod("a", { labels: { app: "db" } });
    const finished = { ...pod("a"), status: { phase: "Succeeded" } };
    const found = candidatesFor(
      "203.0.113.10",
      { matchLabels: { app: "web" } },
      "web",
      [other, unselected, finished, pod("c"), pod("d")],
      of,
      () => true,
    );
    expect(found).toEqual([]);
  });

  it("a pod being deleted is a candidate marked terminating", () => {
    const [found] = candidatesFor(
      "203.0.113.10",
      {},
      "web",
      [pod("a", { deletionTimestamp: "2026-12-03T10:01:00Z" })],
      of,
      () => true,
    );
    expect(found?.terminating).toBe(true);
  });
});
