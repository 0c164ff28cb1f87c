import { describe, expect, it } from "vitest";
import type { FloatingIpClaim } from "../model/records.js";
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
const pod = (uid: string, containerID?: string) => ({
  metadata: {
    name: "web",
    namespace: "shop",
    uid,
    annotations: containerID ? { "cni.projectcalico.org/containerID": containerID } : {},
  },
});

describe("orphanReason()", () => {
  it("has no reason while the pod of that uid names the claim's sandbox", () => {
    expect(orphanReason(claim, pod("u1", "c1"))).toBeUndefined();
  });

  it("names why a claim has no holder: pod gone, replaced, in another sandbox, or none", () => {
    expect(orphanReason(claim, undefined)).toBe("the holder pod is gone");
    expect(orphanReason(claim, pod("u2", "c1"))).toBe("the holder pod was replaced");
    expect(orphanReason(claim, pod("u1", "c2"))).toBe("the pod runs in another sandbox now");
    expect(orphanReason(claim, pod("u1"))).toBe(
      "the pod's sandbox is not set up (or was torn down)",
    );
  });
});
