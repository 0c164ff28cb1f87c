import { describe, expect, it } from "vitest";
import { keys } from "./store.js";

describe("keys", () => {
  it("keys.endpoint() joins node, container and interface", () => {
    expect(keys.endpoint("node-1", "c1", "eth0")).toBe("/buoy/v1/workloadendpoints/node-1/c1/eth0");
  });
  const bad: { desc: string; key: () => string }[] = [
    { desc: "an interface with a slash", key: () => keys.endpoint("node-1", "c1", "../../x") },
    { desc: "an empty container ID", key: () => keys.endpoint("node-1", "", "eth0") },
    { desc: "a node with a slash", key: () => keys.nodeEndpoints("node-1/../node-2") },
    { desc: "an empty node", key: () => keys.nodeStatuses("") },
    { desc: "an affinity of a node with a slash", key: () => keys.affinity("a/b", "10.0.0.0/26") },
  ];
  for (const { desc, key } of bad) {
    it(`keys refuses ${desc} as a key segment`, () => {
      expect(key).toThrow(/cannot be part of a datastore key$/);
    });
  }
});
