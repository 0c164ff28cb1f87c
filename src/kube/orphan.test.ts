import { describe, expect, it } from "vitest";
import type { FloatingIpClaim, WorkloadEndpoint } from "../model/records.js";
import { orphanReason } from "./claim-collector.js";

const claim: FloatingIpClaim = {
  ip: "10.96.0.1",
  namespace: "shop",
  pod: "web",
  containerID: "c1",
  node: "node-1",
  internalIP: "10.244.0.5",
  createdAt: "",
  podUID: "u1",
};
const pod = (uid: string, annotations: Record<string, string> = {}) => ({
  metadata: { name: "web", namespace: "shop", uid, annotations },
});
const endpoint = (containerID: string, podUID = "u1"): WorkloadEndpoint => ({
  node: "node-1",
  namespace: "shop",
  pod: "web",
  podUID,
  containerID,
  endpoint: "eth0",
  interfaceName: "cali0",
  mac: "",
  ipNetworks: ["10.244.0.5/32"],
  ipNATs: [],
  network: "k8s-pod-network",
  createdAt: "",
});

describe("orphanReason()", () => {
  it("has no reason while the pod of that uid has an endpoint object of the claim's sandbox", () => {
    expect(orphanReason(claim, pod("u1"), [endpoint("c1")])).toBeUndefined();
  });

  it("names why a claim has no holder: pod gone, replaced, in another sandbox, or none", () => {
    expect(orphanReason(claim, undefined, [endpoint("c1")])).toBe("the holder pod is gone");
    expect(orphanReason(claim, pod("u2"), [endpoint("c1")])).toBe("the holder pod was replaced");
    expect(orphanReason(claim, pod("u1"), [endpoint("c2")])).toBe(
      "the pod runs in another sandbox now",
    );
    expect(orphanReason(claim, pod("u1"), [])).toBe(
      "the pod's sandbox is not set up (or was torn down)",
    );
  });

  it("reads the sandbox from the endpoint objects, never from the pod's annotations", () => {
    const forged = (containerID: string) =>
      pod("u1", { "cni.projectcalico.org/containerID": containerID });
    // A forged container ID neither orphans the real sandbox's claim...
    expect(orphanReason(claim, forged("c9"), [endpoint("c1")])).toBeUndefined();
    // ...nor keeps a torn-down sandbox's claim alive.
    expect(orphanReason(claim, forged("c1"), [])).toBe(
      "the pod's sandbox is not set up (or was torn down)",
    );
    // Another pod's endpoint of that container (its uid) is no holder either.
    expect(orphanReason(claim, pod("u1"), [endpoint("c1", "u9")])).toBe(
      "the pod's sandbox is not set up (or was torn down)",
    );
  });
});
