import { describe, expect, it } from "vitest";
import type { FloatingIpClaim, WorkloadEndpoint } from "../model/records.js";
import {
  blockFromObject,
  blockNodeLabel,
  blockNodeLabels,
  blockRoutes,
  nodeFromObject,
  blockToObject,
  claimFromObject,
  claimStatusUpdate,
  claimToObject,
  containerLabel,
  endpointFromObject,
  endpointToObject,
  forgedAnnotations,
  isPodOf,
  podAnnotationsFor,
  withRequest,
} from "./objects.js";
import { endpointObjectName } from "./names.js";

const claim = (ip: string, internalIP: string, containerID = "c1"): FloatingIpClaim => ({
  ip,
  namespace: "shop",
  pod: "web",
  containerID,
  node: "node-1",
  internalIP,
  createdAt: "2026-11-26T10:00:00Z",
  endpoint: "eth0",
  network: "k8s-pod-network",
  podUID: "u-1",
});

describe("claim objects", () => {
  it("claimToObject() names the object by the IP, owns it by the node, and keeps createdAt out of the spec", () => {
    const object = claimToObject(claim("2001:db8::7", "fd00::5"), "node-uid");
    expect(object.metadata).toEqual({
      name: "2001-0db8-0000-0000-0000-0000-0000-0007",
      labels: { "buoy.dev/container": "c1" },
      ownerReferences: [{ apiVersion: "v1", kind: "Node", name: "node-1", uid: "node-uid" }],
    });
    expect(object.spec).not.toHaveProperty("createdAt");
    expect(claimToObject(claim("10.96.0.1", "10.244.0.5"), undefined).metadata).toEqual({
      name: "10.96.0.1",
      labels: { "buoy.dev/container": "c1" },
    });
  });

  it("containerLabel() cuts a runtime's 64-digit ID to a label's 63 characters, and refuses what cannot be one", () => {
    const id = "0123456789abcdef".repeat(4);
    expect(containerLabel(id)).toBe(id.slice(0, 63));
    expect(containerLabel("ctr-a")).toBe("ctr-a");
    expect(containerLabel("ends-with-")).toBeUndefined();
    expect(containerLabel("has/slash")).toBeUndefined();
    expect(containerLabel("")).toBeUndefined();
  });

  it("claimFromObject() reads back what claimToObject() wrote, createdAt from creationTimestamp", () => {
    const original = claim("10.96.0.1", "10.244.0.5");
    const object = claimToObject(original, "node-uid");
    object.metadata.creationTimestamp = original.createdAt;
    expect(claimFromObject(object)).toEqual(original);
  });
});

describe("claim status", () => {
  const programmed = {
    ip: "10.96.0.1",
    node: "node-1",
    internalIP: "10.244.0.5",
    programmedSince: "2026-11-26T10:00:01Z",
    announced: "bgp" as const,
  };
  const object = (generation: number | undefined, status?: Record<string, unknown>) => ({
    ...claimToObject(claim("10.96.0.1", "10.244.0.5"), undefined),
    metadata: { name: "10.96.0.1", ...(generation !== undefined ? { generation } : {}) },
    ...(status ? { status } : {}),
  });

  const T0 = "2026-11-26T10:00:02.000Z";
  const T1 = "2026-11-26T10:05:00.000Z";

  it("claimStatusUpdate() writes the generation it programmed, and conditions kubectl wait reads", () => {
    expect(claimStatusUpdate(object(3), programmed, T0)).toEqual({
      programmed: true,
      since: "2026-11-26T10:00:01Z",
      announced: "bgp",
      observedGeneration: 3,
      conditions: [
        {
          type: "Programmed",
          status: "True",
          reason: "Programmed",
          message: "node node-1 translates it to 10.244.0.5",
          lastTransitionTime: T0,
          observedGeneration: 3,
        },
        {
          type: "Announced",
          status: "True",
          reason: "Announced",
          message: "node node-1 announces it (bgp)",
          lastTransitionTime: T0,
          observedGeneration: 3,
        },
      ],
    });
  });

  it("claimStatusUpdate() leaves a status that says so already, transition times kept", () => {
    const written = claimStatusUpdate(object(3), programmed, T0);
    expect(claimStatusUpdate(object(3, { ...written }), programmed, T1)).toBeUndefined();
    const pending = claimStatusUpdate(object(3), undefined, T0);
    expect(claimStatusUpdate(object(3, { ...pending }), undefined, T1)).toBeUndefined();
    // Programmed later: that condition's time moves, a status that stayed keeps its own.
    const unannounced = {
      ip: programmed.ip,
      node: programmed.node,
      internalIP: programmed.internalIP,
      programmedSince: programmed.programmedSince,
    };
    const later = claimStatusUpdate(object(3, { ...pending }), unannounced, T1);
    expect(later?.conditions.map((c) => [c.type, c.status, c.lastTransitionTime])).toEqual([
      ["Programmed", "True", T1],
      ["Announced", "False", T0],
    ]);
  });

  it("claimStatusUpdate() rewrites a status of an older generation, or one without it", () => {
    const older = { programmed: true, since: programmed.programmedSince, announced: "bgp" };
    expect(claimStatusUpdate(object(4, { ...older, observedGeneration: 3 }), programmed)).toEqual(
      expect.objectContaining({ observedGeneration: 4 }),
    );
    expect(claimStatusUpdate(object(4, older), programmed)).toEqual(
      expect.objectContaining({ observedGeneration: 4 }),
    );
  });

  it("claimStatusUpdate() says not programmed, with no generation, when the node has not", () => {
    const status = { programmed: true, since: "x", observedGeneration: 2 };
    expect(claimStatusUpdate(object(2, status), undefined)).toEqual({
      programmed: false,
      conditions: [
        expect.objectContaining({ type: "Programmed", status: "False", reason: "Pending" }),
        expect.objectContaining({ type: "Announced", status: "False", reason: "Pending" }),
      ],
    });
  });

  it("claimStatusUpdate() without a generation (an API server that sets none) writes none", () => {
    expect(claimStatusUpdate(object(undefined), programmed)).not.toHaveProperty(
      "observedGeneration",
    );
  });
});

describe("block objects", () => {
  it("blockNodeLabels() labels a block with its affine node and every node it lent an address to", () => {
    const long = `n${"x".repeat(70)}`;
    const labels = blockNodeLabels({
      cidr: "10.244.0.64/26",
      affinity: "node-1",
      allocations: {
        "10.244.0.65": { handle: "a", node: "node-1" },
        "10.244.0.66": { handle: "b", node: "node-2" },
        "10.244.0.67": { handle: "c", node: "node-2" },
        "10.244.0.68": { handle: "d", node: long },
      },
    });
    // A name too long for a label gets none (that node lists every block).
    expect(labels).toEqual({ "node.buoy.dev/node-1": "", "node.buoy.dev/node-2": "" });
    expect(blockNodeLabel(long)).toBeUndefined();
    expect(blockNodeLabels({ cidr: "10.244.0.0/26", affinity: "", allocations: {} })).toEqual({});
  });

  it("blockToObject() and blockFromObject() keep the block and carry the resourceVersion", () => {
    const block = {
      cidr: "10.244.0.64/26",
      affinity: "node-1",
      allocations: { "10.244.0.65": { handle: "net.c1", node: "node-1" } },
    };
    const object = blockToObject(block, "42");
    expect(object.metadata).toEqual({
      name: "10.244.0.64-26",
      labels: { "node.buoy.dev/node-1": "" },
      resourceVersion: "42",
    });
    expect(blockFromObject(object)).toEqual({ value: block, revision: "42" });
    expect(blockFromObject({ metadata: { name: "x", resourceVersion: "1" } }).value).toEqual({
      cidr: "",
      affinity: "",
      allocations: {},
    });
  });
});

describe("endpoint objects", () => {
  const endpoint: WorkloadEndpoint = {
    node: "node-1",
    namespace: "shop",
    pod: "web",
    containerID: "c1",
    endpoint: "eth0",
    interfaceName: "cali0123456789a",
    mac: "0e:00:00:00:00:01",
    ipNetworks: ["10.244.0.5/32", "fd00::5/128"],
    ipNATs: [{ internalIP: "10.244.0.5", externalIP: "10.96.0.1" }],
    network: "k8s-pod-network",
    createdAt: "2026-11-26T10:00:00Z",
    podUID: "u-1",
  };
  const pod = (annotations: Record<string, string>, uid = "u-1") => ({
    metadata: { name: "web", namespace: "shop", uid, annotations },
    spec: { nodeName: "node-1" },
  });
  const recorded = () => {
    const object = endpointToObject(endpoint, "name", "node-uid");
    object.metadata.creationTimestamp = endpoint.createdAt;
    return endpointFromObject(object);
  };

  it("endpointToObject() labels the node and container, owns it by the node, and leaves NATs to the claims", () => {
    const object = endpointToObject(endpoint, "name", "node-uid");
    expect(object.metadata).toEqual({
      name: "name",
      labels: { "buoy.dev/node": "node-1", "buoy.dev/container": "c1" },
      ownerReferences: [{ apiVersion: "v1", kind: "Node", name: "node-1", uid: "node-uid" }],
    });
    expect(object.spec).not.toHaveProperty("ipNATs");
    expect(object.spec).not.toHaveProperty("createdAt");
    expect(recorded()).toEqual({ ...endpoint, ipNATs: [] });
  });

  it("endpointObjectName() is one name per node, container and interface, valid as an object name", async () => {
    const name = await endpointObjectName("node-1", "C_1", "eth0");
    expect(name).toMatch(/^[0-9a-f]{40}$/);
    expect(await endpointObjectName("node-1", "C_1", "eth0")).toBe(name);
    expect(await endpointObjectName("node-1", "C_1", "eth1")).not.toBe(name);
    expect(await endpointObjectName("node-2", "C_1", "eth0")).not.toBe(name);
  });

  it("withRequest() takes the container's claims on its recorded addresses as NATs", () => {
    const found = withRequest(recorded(), pod({}), [
      claim("10.96.0.1", "10.244.0.5"),
      claim("fd00:96::1", "fd00::5"),
      claim("10.96.0.2", "10.244.0.9", "other"),
      claim("10.96.0.3", "10.244.0.77"),
    ]);
    expect(found.ipNetworks).toEqual(["10.244.0.5/32", "fd00::5/128"]);
    expect(found.ipNATs).toEqual([
      { internalIP: "10.244.0.5", externalIP: "10.96.0.1" },
      { internalIP: "fd00::5", externalIP: "fd00:96::1" },
    ]);
  });

  it("withRequest() turns egress on for a FloatingIP's claim that asks, and puts it first", () => {
    const found = withRequest(recorded(), pod({}), [
      claim("10.96.0.1", "10.244.0.5"),
      { ...claim("10.96.0.4", "10.244.0.5"), floatingIP: "shop/vip", egress: true },
    ]);
    expect(found.egress).toBe(true);
    expect(found.ipNATs.map((nat) => nat.externalIP)).toEqual(["10.96.0.4", "10.96.0.1"]);
    expect(withRequest(recorded(), pod({}), [claim("10.96.0.1", "10.244.0.5")]).egress).toBe(
      undefined,
    );
  });

  it("withRequest() ignores forged Calico annotations: the addresses are the recorded ones", () => {
    const forged = pod({
      "cni.projectcalico.org/podIP": "127.0.0.1/32",
      "cni.projectcalico.org/podIPs": "127.0.0.1/32,10.244.9.9/32",
      "cni.projectcalico.org/containerID": "victim",
    });
    const found = withRequest(recorded(), forged, [
      claim("10.96.0.1", "10.244.0.5"),
      claim("10.96.0.9", "10.244.9.9", "victim"),
      claim("10.96.0.8", "127.0.0.1"),
    ]);
    expect(found.containerID).toBe("c1");
    expect(found.ipNetworks).toEqual(["10.244.0.5/32", "fd00::5/128"]);
    expect(found.ipNATs).toEqual([{ internalIP: "10.244.0.5", externalIP: "10.96.0.1" }]);
  });

  it("withRequest() orders the NATs as the annotation does and reads the opt-in to egress", () => {
    const claims = [claim("10.96.0.1", "10.244.0.5"), claim("10.96.0.2", "10.244.0.5")];
    const annotated = (extra: Record<string, string>) =>
      withRequest(
        recorded(),
        pod({ "cni.projectcalico.org/floatingIPs": '["10.96.0.2", "10.96.0.1"]', ...extra }),
        claims,
      );
    const on = annotated({ "buoy.dev/floating-ip-egress": "true" });
    expect(on.ipNATs.map((nat) => nat.externalIP)).toEqual(["10.96.0.2", "10.96.0.1"]);
    expect(on.egress).toBe(true);
    expect(annotated({}).egress).toBeUndefined();
    expect(annotated({ "buoy.dev/floating-ip-egress": "yes" }).egress).toBeUndefined();
  });

  it("isPodOf() is the pod of that name and uid only", () => {
    expect(isPodOf(recorded(), pod({}))).toBe(true);
    expect(isPodOf(recorded(), pod({}, "u-2"))).toBe(false);
    expect(isPodOf(recorded(), { metadata: { name: "web", namespace: "other" } })).toBe(false);
  });

  it("forgedAnnotations() names each Calico annotation that differs from the record, not absent ones", () => {
    expect(forgedAnnotations(recorded(), pod(podAnnotationsFor(endpoint)))).toEqual([]);
    expect(forgedAnnotations(recorded(), pod({}))).toEqual([]);
    expect(
      forgedAnnotations(
        recorded(),
        pod({
          ...podAnnotationsFor(endpoint),
          "cni.projectcalico.org/podIP": "127.0.0.1/32",
          "cni.projectcalico.org/containerID": "victim",
        }),
      ),
    ).toEqual([
      "cni.projectcalico.org/podIP '127.0.0.1/32'",
      "cni.projectcalico.org/containerID 'victim'",
    ]);
  });
});

describe("routing records", () => {
  it("nodeFromObject() takes the InternalIP addresses and Calico's AS-number annotation", () => {
    expect(
      nodeFromObject({
        metadata: { name: "node-2", annotations: { "projectcalico.org/ASNumber": "64600" } },
        status: {
          addresses: [
            { type: "Hostname", address: "node-2" },
            { type: "InternalIP", address: "192.168.200.12" },
            { type: "InternalIP", address: "fd00:200::12" },
            { type: "ExternalIP", address: "203.0.113.12" },
          ],
        },
      }),
    ).toEqual({ name: "node-2", addresses: ["192.168.200.12", "fd00:200::12"], asNumber: 64600 });
    expect(
      nodeFromObject({
        metadata: { name: "n", annotations: { "projectcalico.org/ASNumber": "x" } },
      }),
    ).toEqual({ name: "n", addresses: [] });
  });

  it("blockRoutes() gives the block's node and the addresses borrowed by pods elsewhere", () => {
    expect(
      blockRoutes({
        cidr: "10.244.0.64/26",
        affinity: "node-1",
        allocations: {
          "10.244.0.65": { handle: "a", node: "node-1" },
          "10.244.0.66": { handle: "b", node: "node-3" },
        },
      }),
    ).toEqual({
      affinity: { cidr: "10.244.0.64/26", node: "node-1" },
      borrowed: [{ ip: "10.244.0.66", node: "node-3" }],
    });
    expect(blockRoutes({ cidr: "10.244.1.0/26", affinity: "", allocations: {} }).affinity).toBe(
      undefined,
    );
  });
});
