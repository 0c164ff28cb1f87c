import { describe, expect, it } from "vitest";
import type { DatastoreState } from "../datastore/datastore-state.js";
import type { Resource } from "../cli/manifest.js";
import type { IpPool, IpamBlock, Versioned } from "../model/records.js";
import { kubeApplyPaths, planKubeApply } from "./plan-kube-apply.js";
import { planKubeDelete } from "./plan-kube-delete.js";
import type { KubeObject } from "./objects.js";

const at = <T>(value: T, revision = "7"): Versioned<T> => ({ value, revision });
const state = (parts: Partial<DatastoreState>): DatastoreState => ({
  statuses: [],
  pools: [],
  blocks: [],
  claims: [],
  endpoints: [],
  nodes: [],
  peers: [],
  ...parts,
});
const pool = (name: string, cidr: string, extra: Partial<IpPool> = {}): IpPool => ({
  name,
  cidr,
  blockSize: 26,
  disabled: false,
  nodeSelector: "all()",
  natOutgoing: false,
  disableBGPExport: false,
  ...extra,
});
const applyPool = (value: IpPool): Resource => ({ kind: "IPPool", pool: value, source: "doc 2" });
const fip = (name: string, spec: { address?: string; pool?: string }): Resource => ({
  kind: "FloatingIP",
  floatingIp: {
    namespace: "shop",
    name,
    spec: { ...spec, podSelector: { matchLabels: { app: "db" } }, egress: false },
  },
  source: "doc 1",
});
const block = (cidr: string, allocated: string[]): IpamBlock => ({
  cidr,
  affinity: "node-1",
  allocations: Object.fromEntries(allocated.map((ip) => [ip, { handle: "c1", node: "node-1" }])),
});

describe("planKubeApply()", () => {
  it("creates pools first, then the FloatingIP that names one of them", () => {
    const resources = [
      fip("db", { pool: "floating" }),
      applyPool(pool("floating", "10.96.0.0/24")),
    ];
    const writes = planKubeApply(state({}), resources, new Map());
    expect(writes.map((write) => [write.what, write.collection, write.stored])).toEqual([
      ["IPPool floating", "/apis/buoy.dev/v1/ippools", undefined],
      ["FloatingIP shop/db", "/apis/buoy.dev/v1/namespaces/shop/floatingips", undefined],
    ]);
    expect(writes[1]?.object).toEqual({
      apiVersion: "buoy.dev/v1",
      kind: "FloatingIP",
      metadata: { name: "db", namespace: "shop" },
      spec: { pool: "floating", podSelector: { matchLabels: { app: "db" } }, egress: false },
    });
  });

  it("replaces a stored object on its resourceVersion, keeping its labels and annotations", () => {
    const path = "/apis/buoy.dev/v1/ippools/floating";
    const stored: KubeObject = {
      apiVersion: "buoy.dev/v1",
      kind: "IPPool",
      metadata: { name: "floating", resourceVersion: "41", labels: { team: "net" }, uid: "u1" },
      spec: { cidr: "10.96.0.0/24" },
    };
    const resources = [applyPool(pool("floating", "10.96.0.0/24", { disabled: true }))];
    expect(kubeApplyPaths(resources)).toEqual([path]);
    const [write] = planKubeApply(
      state({ pools: [at(pool("floating", "10.96.0.0/24"), "41")] }),
      resources,
      new Map([[path, stored]]),
    );
    expect(write?.stored).toBe(stored);
    expect(write?.object.metadata).toEqual({
      name: "floating",
      resourceVersion: "41",
      labels: { team: "net" },
      uid: "u1",
    });
    expect(write?.object.spec).toMatchObject({ cidr: "10.96.0.0/24", disabled: true });
  });

  it("refuses what apply refuses on etcd: an overlap, a FloatingIP outside every pool", () => {
    const stored = state({ pools: [at(pool("pods", "10.244.0.0/16"))] });
    expect(() =>
      planKubeApply(stored, [applyPool(pool("more", "10.244.3.0/24"))], new Map()),
    ).toThrow("IP pool more (10.244.3.0/24) overlaps IP pool pods (10.244.0.0/16)");
    expect(() => planKubeApply(stored, [fip("db", { address: "192.0.2.1" })], new Map())).toThrow(
      "FloatingIP shop/db: floating IP 192.0.2.1 is not within any configured IP pool",
    );
  });

  it("refuses a geometry change that would leave the pool's old empty blocks in use", () => {
    const stored = state({
      pools: [at(pool("p", "10.0.0.0/16", { blockSize: 20 }))],
      blocks: [at(block("10.0.0.0/20", []))],
    });
    expect(() =>
      planKubeApply(stored, [applyPool(pool("p", "10.0.0.0/24", { blockSize: 26 }))], new Map()),
    ).toThrow(
      "cannot change cidr or blockSize of IP pool p on the kubernetes datastore while it has blocks (1, e.g. 10.0.0.0/20)",
    );
  });

  it("refuses the API server's own kinds, naming the kubectl command", () => {
    const node: Resource = {
      kind: "Node",
      node: { name: "node-1", addresses: ["192.0.2.1"], asNumber: 64600 },
      source: "doc 3",
    };
    expect(() => planKubeApply(state({}), [node], new Map())).toThrow(
      "doc 3: Node node-1: on the kubernetes datastore the Node is the Kubernetes Node: " +
        "its addresses are the kubelet's, its AS number the annotation projectcalico.org/ASNumber " +
        "(kubectl annotate node node-1 projectcalico.org/ASNumber=64600)",
    );
    expect(kubeApplyPaths([node])).toEqual([]);
  });
});

describe("planKubeDelete()", () => {
  const floating = pool("floating", "10.96.0.0/24");

  it("deletes a pool nothing uses on its resourceVersion, once however often it is named", () => {
    const target = { kind: "IPPool" as const, name: "floating" };
    expect(planKubeDelete(state({ pools: [at(floating, "12")] }), [target, target])).toEqual([
      {
        what: "IPPool floating",
        path: "/apis/buoy.dev/v1/ippools/floating",
        resourceVersion: "12",
      },
    ]);
  });

  it("refuses a pool with allocated addresses, a missing one, and a Kubernetes Node", () => {
    const used = state({
      pools: [at(floating)],
      blocks: [at(block("10.96.0.0/26", ["10.96.0.3"]))],
    });
    expect(() => planKubeDelete(used, [{ kind: "IPPool", name: "floating" }])).toThrow(
      "cannot delete IP pool floating (10.96.0.0/24): 1 address(es) are allocated in 1 block(s)",
    );
    expect(() => planKubeDelete(state({}), [{ kind: "IPPool", name: "x" }])).toThrow(
      "IP pool x does not exist",
    );
    expect(() => planKubeDelete(state({}), [{ kind: "Node", name: "n" }])).toThrow(
      "Node n: on the kubernetes datastore the Node is the Kubernetes Node (kubectl delete node)",
    );
  });
});
