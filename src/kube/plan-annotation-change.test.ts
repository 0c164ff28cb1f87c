import { describe, expect, it } from "vitest";
import type { DatastoreState } from "../datastore/datastore-state.js";
import type { FloatingIpClaim, IpPool, Versioned, WorkloadEndpoint } from "../model/records.js";
import {
  findPod,
  planAnnotationEgress,
  planAnnotationMove,
  planAnnotationSet,
  type PodInState,
} from "./plan-annotation-change.js";

const at = <T>(value: T, revision = "7"): Versioned<T> => ({ value, revision });
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
const endpoint = (pod: string, address: string, held: string[] = []): WorkloadEndpoint => ({
  namespace: "shop",
  pod,
  node: "node-1",
  containerID: `c-${pod}`,
  endpoint: "eth0",
  interfaceName: `cali-${pod}`,
  mac: "02:00:00:00:00:01",
  network: "k8s-pod-network",
  ipNetworks: [`${address}/32`],
  ipNATs: held.map((externalIP) => ({ internalIP: address, externalIP })),
  createdAt: "2026-12-01T00:00:00.000Z",
});
const claim = (ip: string, holder: WorkloadEndpoint, extra: Partial<FloatingIpClaim> = {}) =>
  at<FloatingIpClaim>({
    ip,
    namespace: holder.namespace,
    pod: holder.pod,
    containerID: holder.containerID,
    node: holder.node,
    internalIP: holder.ipNetworks[0]?.split("/")[0] ?? "",
    createdAt: "2026-12-01T00:00:00.000Z",
    ...extra,
  });

const db = endpoint("db", "10.244.0.5", ["10.96.0.7"]);
const web = endpoint("web", "10.244.0.6");
const state = (parts: Partial<DatastoreState> = {}): DatastoreState => ({
  statuses: [],
  pools: [
    at(pool("pods", "10.244.0.0/16")),
    at(pool("floating", "10.96.0.0/24", { disabled: true })),
    at(pool("team-a", "10.96.5.0/24", { disabled: true, namespaceSelector: "team == 'a'" })),
  ],
  blocks: [],
  claims: [claim("10.96.0.7", db)],
  endpoints: [at(db), at(web)],
  nodes: [],
  peers: [],
  ...parts,
});
const podObject = (name: string, annotations: Record<string, string> = {}) => ({
  metadata: { name, namespace: "shop", resourceVersion: `rv-${name}`, annotations },
});
const pods = new Map([
  ["shop/db", podObject("db", { "cni.projectcalico.org/floatingIPs": '["10.96.0.7"]' })],
  ["shop/web", podObject("web")],
]);
const found = (name: string): PodInState => findPod(state(), pods, `shop/${name}`);

describe("planAnnotationSet()", () => {
  it("asks for the addresses on the pod's resourceVersion, and null for none", () => {
    expect(planAnnotationSet(state(), found("web"), ["10.96.0.8"], 16)).toEqual({
      namespace: "shop",
      pod: "web",
      resourceVersion: "rv-web",
      podUID: "",
      annotations: { "cni.projectcalico.org/floatingIPs": '["10.96.0.8"]' },
      containerID: "c-web",
      holds: ["10.96.0.8"],
      heldBefore: [],
    });
    expect(planAnnotationSet(state(), found("db"), [], 16).annotations).toEqual({
      "cni.projectcalico.org/floatingIPs": null,
    });
  });

  it("refuses with ADD's words: held by another pod, outside the pools, a pool the namespace may not use, the bound", () => {
    expect(() => planAnnotationSet(state(), found("web"), ["10.96.0.7"], 16)).toThrow(
      "floating IP 10.96.0.7 is already held by pod shop/db",
    );
    expect(() => planAnnotationSet(state(), found("web"), ["192.0.2.1"], 16)).toThrow(
      "floating IP 192.0.2.1 is not within any configured IP pool",
    );
    expect(() => planAnnotationSet(state(), found("web"), ["10.96.5.1"], 16)).toThrow(
      /namespace shop/,
    );
    expect(() => planAnnotationSet(state(), found("web"), ["10.96.0.8", "10.96.0.9"], 1)).toThrow(
      "pod asks for 2 floating IPs; at most 1",
    );
  });

  it("refuses a FloatingIP's address, and a pod buoy recorded no endpoint for", () => {
    const owned = state({
      floatingIpResources: [
        at({
          namespace: "shop",
          name: "vip",
          uid: "u",
          generation: 1,
          createdAt: "",
          spec: { pool: "floating", podSelector: {}, egress: false },
        }),
      ].map((entry) => ({ ...entry, status: { address: "10.96.0.9" } })),
    });
    expect(() => planAnnotationSet(owned, found("web"), ["10.96.0.9"], 16)).toThrow(
      "floating IP 10.96.0.9 is the address of FloatingIP shop/vip",
    );
    expect(() => findPod(state(), pods, "shop/gone")).toThrow(
      "no workload endpoint for pod shop/gone",
    );
  });
});

describe("planAnnotationMove() and planAnnotationEgress()", () => {
  it("releases on the holder first, then asks on the target", () => {
    const { release, claim: asked } = planAnnotationMove(
      state(),
      pods,
      "10.96.0.7",
      "shop/web",
      16,
    );
    expect([release.pod, release.holds, asked.pod, asked.holds]).toEqual([
      "db",
      [],
      "web",
      ["10.96.0.7"],
    ]);
  });

  it("refuses to move what a FloatingIP holds, or what no pod holds", () => {
    const controlled = state({ claims: [claim("10.96.0.7", db, { floatingIP: "shop/vip" })] });
    expect(() => planAnnotationMove(controlled, pods, "10.96.0.7", "shop/web", 16)).toThrow(
      "floating IP 10.96.0.7 is FloatingIP shop/vip's: its controller chooses the holder",
    );
    expect(() => planAnnotationMove(state(), pods, "10.96.0.8", "shop/web", 16)).toThrow(
      "floating IP 10.96.0.8 is not held by any pod; use set or add",
    );
  });

  it("opts in with the annotation, out by removing it", () => {
    expect(planAnnotationEgress(state(), found("db"), true).annotations).toEqual({
      "buoy.dev/floating-ip-egress": "true",
    });
    expect(planAnnotationEgress(state(), found("db"), false).annotations).toEqual({
      "buoy.dev/floating-ip-egress": null,
    });
  });

  it("a FloatingIP's address the pod holds is the controller's: add keeps it out of the annotation", () => {
    const held = {
      ...db,
      ipNATs: [...db.ipNATs, { internalIP: "10.244.0.5", externalIP: "10.96.0.9" }],
    };
    const controlled = state({
      endpoints: [at(held), at(web)],
      claims: [claim("10.96.0.7", db), claim("10.96.0.9", db, { floatingIP: "shop/vip" })],
    });
    const pod = findPod(controlled, pods, "shop/db");
    const change = planAnnotationSet(controlled, pod, ["10.96.0.7", "10.96.0.8"], 16);
    expect(change.annotations).toEqual({
      "cni.projectcalico.org/floatingIPs": '["10.96.0.7","10.96.0.8"]',
    });
    expect(change.heldBefore).toEqual(["10.96.0.7"]);
  });

  it("a move is refused while a third pod's annotation asks for the address", () => {
    const camping = state({
      floatingIpRequests: [{ pod: "shop/camper", ips: ["10.96.0.7"] }],
    });
    expect(() => planAnnotationMove(camping, pods, "10.96.0.7", "shop/web", 16)).toThrow(
      "floating IP 10.96.0.7 is also asked for by pod shop/camper: its node would take it once shop/db lets it go",
    );
  });

  it("a move keeps what each side holds, whatever their annotations say", () => {
    const garbled = new Map([
      ["shop/db", podObject("db", { "cni.projectcalico.org/floatingIPs": "not json" })],
      ["shop/web", podObject("web", { "cni.projectcalico.org/floatingIPs": "garbage" })],
    ]);
    const both = state({
      endpoints: [
        at(endpoint("db", "10.244.0.5", ["10.96.0.7", "10.96.0.30"])),
        at(endpoint("web", "10.244.0.6", ["10.96.0.20"])),
      ],
      claims: [claim("10.96.0.7", db), claim("10.96.0.30", db), claim("10.96.0.20", web)],
    });
    const { release, claim: asked } = planAnnotationMove(
      both,
      garbled,
      "10.96.0.7",
      "shop/web",
      16,
    );
    expect(release.holds).toEqual(["10.96.0.30"]);
    expect(asked.holds).toEqual(["10.96.0.20", "10.96.0.7"]);
  });
});
