import { describe, expect, it } from "vitest";
import { chooseHolder, lossReason, type Candidate } from "./choose-holder.js";

const pod = (name: string, extra: Partial<Candidate> = {}): Candidate => ({
  namespace: "web",
  pod: name,
  podUID: `uid-${name}`,
  node: "node-1",
  containerID: `c-${name}`,
  endpoint: "eth0",
  network: "k8s-pod-network",
  internalIP: "10.244.0.2",
  readySince: 1000,
  createdAt: 500,
  terminating: false,
  nodeLive: true,
  ...extra,
});
const holding = (candidate: Candidate) => ({
  podUID: candidate.podUID,
  containerID: candidate.containerID,
  node: candidate.node,
});

describe("chooseHolder", () => {
  it("gives it to the pod Ready longest, then the oldest, then by name", () => {
    const a = pod("a", { readySince: 2000 });
    const b = pod("b", { readySince: 1000 });
    expect(chooseHolder([a, b], undefined)).toEqual({ holder: b, kept: false });
    const c = pod("c", { readySince: 1000, createdAt: 100 });
    expect(chooseHolder([a, b, c], undefined).holder).toBe(c);
    const d = pod("d", { readySince: 1000, createdAt: 100 });
    expect(chooseHolder([d, c], undefined).holder).toBe(c);
  });

  it("is sticky: a holder that is still eligible keeps it when an older pod is Ready again", () => {
    const old = pod("old", { readySince: 10 });
    const holder = pod("holder", { readySince: 5000 });
    expect(chooseHolder([old, holder], holding(holder))).toEqual({ holder, kept: true });
  });

  it.each([
    ["deleted", { terminating: true }, "Deleted"],
    ["NotReady", { readySince: undefined }, "NotReady"],
    ["on a lost node", { nodeLive: false }, "NodeLost"],
  ] as const)("moves it when the holder is %s", (_, change, reason) => {
    const holder = pod("holder", change);
    const standby = pod("standby", { node: "node-2" });
    expect(lossReason(holder)).toBe(reason);
    expect(chooseHolder([holder, standby], holding(holder))).toEqual({
      holder: standby,
      kept: false,
    });
  });

  it("a holder gone from the candidates (its pod deleted) loses it", () => {
    const standby = pod("standby");
    expect(lossReason(undefined)).toBe("Deleted");
    const gone = { podUID: "uid-gone", containerID: "c-gone", node: "node-1" };
    expect(chooseHolder([standby], gone)).toEqual({ holder: standby, kept: false });
  });

  it("a new sandbox of the same pod is another holder", () => {
    const holder = pod("holder");
    const recreated = { ...holding(holder), containerID: "c-earlier" };
    expect(chooseHolder([holder], recreated)).toEqual({ holder, kept: false });
  });

  it("with no eligible pod: a NotReady holder keeps it, a deleted or lost one does not", () => {
    const notReady = pod("h", { readySince: undefined });
    expect(chooseHolder([notReady], holding(notReady))).toEqual({ holder: notReady, kept: true });
    const lost = pod("h", { nodeLive: false });
    expect(chooseHolder([lost], holding(lost))).toEqual({ holder: undefined, why: "NoReadyPod" });
    const other = pod("x", { readySince: undefined });
    expect(chooseHolder([other], undefined)).toEqual({ holder: undefined, why: "NoReadyPod" });
    expect(chooseHolder([], undefined)).toEqual({ holder: undefined, why: "NoPodSelected" });
  });
});
