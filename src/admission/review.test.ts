import { describe, expect, it } from "vitest";
import type { IpPool, IpamBlock } from "../model/records.js";
import {
  AdmissionReviewError,
  floatingIpsToReview,
  namespaceLabelsNeeded,
  parseAdmissionReview,
  parseFloatingIpToReview,
  parsePodFloatingIps,
  renderAdmissionReview,
  reviewPod,
  reviewPool,
  type AdmissionRequest,
} from "./review.js";

const ANNOTATION = "cni.projectcalico.org/floatingIPs";
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
const poolObject = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: "buoy.dev/v1",
  kind: "IPPool",
  metadata: { name },
  spec,
});
const block = (cidr: string, allocated: string[]): IpamBlock => ({
  cidr,
  affinity: "node-1",
  allocations: Object.fromEntries(allocated.map((ip) => [ip, { handle: "h", node: "node-1" }])),
});
const pod = (annotations?: Record<string, string>) => ({
  metadata: { name: "web", namespace: "b", ...(annotations ? { annotations } : {}) },
});

describe("parseAdmissionReview()", () => {
  it("parseAdmissionReview() returns the request of a v1 AdmissionReview", () => {
    const request = { uid: "u1", operation: "CREATE" };
    expect(
      parseAdmissionReview({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request }),
    ).toEqual(request);
  });

  const bad: { desc: string; body: unknown; message: string }[] = [
    {
      desc: "refuses v1beta1",
      body: { apiVersion: "admission.k8s.io/v1beta1", kind: "AdmissionReview", request: {} },
      message: "expected an AdmissionReview of admission.k8s.io/v1",
    },
    { desc: "refuses a non-object", body: [], message: "expected an AdmissionReview" },
    {
      desc: "refuses a request without uid",
      body: { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request: {} },
      message: "the AdmissionReview has no request with a uid",
    },
  ];
  for (const { desc, body, message } of bad) {
    it(`parseAdmissionReview() ${desc}`, () => {
      expect(() => parseAdmissionReview(body)).toThrow(AdmissionReviewError);
      expect(() => parseAdmissionReview(body)).toThrow(message);
    });
  }

  it("renderAdmissionReview() wraps the response with the request's uid", () => {
    expect(renderAdmissionReview({ uid: "u1", allowed: true })).toEqual({
      apiVersion: "admission.k8s.io/v1",
      kind: "AdmissionReview",
      response: { uid: "u1", allowed: true },
    });
  });
});

describe("reviewPool()", () => {
  const stored = [pool("pods", "10.244.0.0/16"), pool("floating", "198.51.100.0/24")];
  const blocks = [block("198.51.100.0/26", ["198.51.100.1"]), block("10.244.0.0/26", [])];
  const cases: {
    desc: string;
    request: Omit<AdmissionRequest, "uid">;
    message: string | undefined;
  }[] = [
    {
      desc: "admits a new pool that overlaps none",
      request: { operation: "CREATE", object: poolObject("more", { cidr: "203.0.113.0/24" }) },
      message: undefined,
    },
    {
      desc: "refuses a new pool overlapping a stored one",
      request: { operation: "CREATE", object: poolObject("more", { cidr: "10.244.3.0/24" }) },
      message: "IP pool more (10.244.3.0/24) overlaps IP pool pods (10.244.0.0/16)",
    },
    {
      desc: "refuses a blockSize change of a pool with allocations",
      request: {
        operation: "UPDATE",
        oldObject: poolObject("floating", { cidr: "198.51.100.0/24", blockSize: 26 }),
        object: poolObject("floating", { cidr: "198.51.100.0/24", blockSize: 28 }),
      },
      message:
        "cannot change blockSize 26 -> 28 of IP pool floating: 1 address(es) are allocated in 1 of its block(s)",
    },
    {
      desc: "refuses a cidr change of a pool with allocations",
      request: {
        operation: "UPDATE",
        oldObject: poolObject("floating", { cidr: "198.51.100.0/24" }),
        object: poolObject("floating", { cidr: "198.51.100.0/25" }),
      },
      message:
        "cannot change cidr 198.51.100.0/24 -> 198.51.100.0/25 of IP pool floating: 1 address(es) are allocated in 1 of its block(s)",
    },
    {
      desc: "admits a blockSize change of a pool whose blocks are empty",
      request: {
        operation: "UPDATE",
        oldObject: poolObject("pods", { cidr: "10.244.0.0/16" }),
        object: poolObject("pods", { cidr: "10.244.0.0/16", blockSize: 24 }),
      },
      message: undefined,
    },
    {
      desc: "admits another change of a pool with allocations",
      request: {
        operation: "UPDATE",
        oldObject: poolObject("floating", { cidr: "198.51.100.0/24" }),
        object: poolObject("floating", { cidr: "198.51.100.0/24", natOutgoing: true }),
      },
      message: undefined,
    },
    {
      desc: "refuses what buoy apply refuses: a selector that does not parse",
      request: {
        operation: "CREATE",
        object: poolObject("more", { cidr: "203.0.113.0/24", namespaceSelector: "team ==" }),
      },
      message: "IP pool more: namespaceSelector 'team ==' is not a valid selector",
    },
    {
      desc: "refuses a cidr that is none",
      request: { operation: "CREATE", object: poolObject("more", { cidr: "10.0.0.0/33" }) },
      message: "IP pool more: '10.0.0.0/33' is not a CIDR",
    },
    {
      desc: "refuses a pool without a name",
      request: { operation: "CREATE", object: { spec: { cidr: "203.0.113.0/24" } } },
      message: "the IPPool has no metadata.name",
    },
    {
      desc: "admits a delete",
      request: { operation: "DELETE", oldObject: poolObject("pods", { cidr: "10.244.0.0/16" }) },
      message: undefined,
    },
  ];
  for (const { desc, request, message } of cases) {
    it(`reviewPool() ${desc}`, () => {
      const response = reviewPool({ uid: "u", ...request }, { pools: stored, blocks });
      expect(response.uid).toBe("u");
      expect(response.allowed).toBe(message === undefined);
      if (message !== undefined) {
        expect(response.status?.code).toBe(403);
        expect(response.status?.message).toContain(message);
      }
    });
  }
});

describe("floatingIpsToReview()", () => {
  const cases: {
    desc: string;
    request: Omit<AdmissionRequest, "uid">;
    value: string | undefined;
  }[] = [
    {
      desc: "skips a pod without the annotation",
      request: { operation: "CREATE", object: pod() },
      value: undefined,
    },
    {
      desc: "reviews the annotation at create",
      request: { operation: "CREATE", object: pod({ [ANNOTATION]: "[]" }) },
      value: "[]",
    },
    {
      desc: "skips an update that leaves the annotation as it was",
      request: {
        operation: "UPDATE",
        object: pod({ [ANNOTATION]: '["x"]', other: "1" }),
        oldObject: pod({ [ANNOTATION]: '["x"]' }),
      },
      value: undefined,
    },
    {
      desc: "reviews an update that changes it",
      request: {
        operation: "UPDATE",
        object: pod({ [ANNOTATION]: '["x"]' }),
        oldObject: pod({ [ANNOTATION]: "[]" }),
      },
      value: '["x"]',
    },
    {
      desc: "reviews an update that adds it",
      request: { operation: "UPDATE", object: pod({ [ANNOTATION]: "[]" }), oldObject: pod() },
      value: "[]",
    },
  ];
  for (const { desc, request, value } of cases) {
    it(`floatingIpsToReview() ${desc}`, () => {
      expect(floatingIpsToReview({ uid: "u", ...request })).toBe(value);
    });
  }
});

describe("parsePodFloatingIps() and reviewPod()", () => {
  const pools = [
    pool("open", "198.51.100.0/24"),
    pool("team-a", "203.0.113.0/24", { namespaceSelector: "team == 'a'" }),
  ];
  const cases: {
    desc: string;
    value: string;
    labels?: Record<string, string>;
    message?: string;
  }[] = [
    { desc: "admits a floating IP of a pool every namespace may use", value: '["198.51.100.7"]' },
    {
      desc: "admits one of a pool that selects the namespace",
      value: '["203.0.113.7"]',
      labels: { team: "a" },
    },
    {
      desc: "refuses JSON that does not parse, with ADD's words",
      value: "[198.51.100.7",
      message: "failed to parse '[198.51.100.7' as JSON: ",
    },
    {
      desc: "refuses an entry that is no IP",
      value: '["not-an-ip"]',
      message: "invalid floating IP 'not-an-ip': not an IP address",
    },
    {
      desc: "refuses an address that never floats",
      value: '["127.0.0.1"]',
      message: "invalid floating IP '127.0.0.1': loopback address",
    },
    {
      desc: "refuses more than the bound",
      value: JSON.stringify(["198.51.100.1", "198.51.100.2", "198.51.100.3"]),
      message: "pod asks for 3 floating IPs; at most 2",
    },
    {
      desc: "refuses a value over 4 KiB unread",
      value: `["${"1".repeat(5000)}"]`,
      message: "annotation cni.projectcalico.org/floatingIPs is 5004 bytes; at most 4096",
    },
    {
      desc: "refuses an address outside every pool",
      value: '["192.0.2.9"]',
      message: "floating IP 192.0.2.9 is not within any configured IP pool",
    },
    {
      desc: "refuses a pool the namespace may not use",
      value: '["203.0.113.7"]',
      labels: { team: "b" },
      message: "floating IP 203.0.113.7 is in pool team-a, which namespace b may not use",
    },
  ];
  for (const { desc, value, labels, message } of cases) {
    it(`reviewPod() ${desc}`, () => {
      const request: AdmissionRequest = {
        uid: "u",
        operation: "CREATE",
        namespace: "b",
        object: pod({ [ANNOTATION]: value }),
      };
      const parsed = parsePodFloatingIps(value, 2);
      const response =
        "refusal" in parsed
          ? { allowed: false, status: { message: parsed.refusal } }
          : reviewPod(request, parsed.ips, {
              maxFloatingIps: 2,
              pools,
              ...(labels ? { labels } : {}),
            });
      expect(response.allowed).toBe(message === undefined);
      if (message !== undefined) expect(response.status?.message).toContain(message);
    });
  }

  it("namespaceLabelsNeeded() asks for labels only when a pool of the IPs restricts namespaces", () => {
    expect(namespaceLabelsNeeded(["198.51.100.7"], pools)).toBe(false);
    expect(namespaceLabelsNeeded(["203.0.113.7"], pools)).toBe(true);
    expect(namespaceLabelsNeeded(["192.0.2.9"], pools)).toBe(false);
  });
});

describe("parseFloatingIpToReview", () => {
  const request = (operation: string, spec: unknown) =>
    ({ uid: "u", operation, namespace: "web", object: { spec } }) as AdmissionRequest;
  it("reads the address of a create or update, refuses a bad spec, skips deletes", () => {
    expect(
      parseFloatingIpToReview(request("CREATE", { address: "10.96.0.1", podSelector: {} })),
    ).toEqual({
      address: "10.96.0.1",
    });
    expect(parseFloatingIpToReview(request("UPDATE", { address: "::1", podSelector: {} }))).toEqual(
      {
        refusal: "invalid floating IP '::1': loopback address",
      },
    );
    expect(parseFloatingIpToReview(request("DELETE", {}))).toBeUndefined();
  });
});
