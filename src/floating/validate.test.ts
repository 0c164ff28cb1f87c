import { describe, expect, it } from "vitest";
import type { IpPool } from "../model/records.js";
import {
  checkClaimConflict,
  DEFAULT_MAX_FLOATING_IPS,
  findPool,
  planBindings,
  poolNamespacesMatter,
  validateFloatingIpCount,
  validateInPools,
  validatePoolNamespaces,
} from "./validate.js";

const pool = (name: string, cidr: string, disabled = false): IpPool => ({
  name,
  cidr,
  blockSize: cidr.includes(":") ? 122 : 26,
  disabled,
  nodeSelector: "all()",
  natOutgoing: false,
  disableBGPExport: false,
});
const pools = [
  pool("pods", "10.244.0.0/16"),
  pool("floating", "10.0.0.0/24", true),
  pool("v6", "fd00::/64"),
];

describe("validateFloatingIpCount()", () => {
  const ips = (count: number) => Array.from({ length: count }, (_, i) => `10.0.0.${i + 1}`);
  const cases: { desc: string; count: number; max: number; message?: string }[] = [
    { desc: "accepts none", count: 0, max: DEFAULT_MAX_FLOATING_IPS },
    { desc: "accepts the default bound, 16", count: 16, max: DEFAULT_MAX_FLOATING_IPS },
    {
      desc: "refuses one over the default bound",
      count: 17,
      max: DEFAULT_MAX_FLOATING_IPS,
      message: "pod asks for 17 floating IPs; at most 16",
    },
    { desc: "accepts more when the config raises the bound", count: 40, max: 64 },
    {
      desc: "refuses over a lowered bound",
      count: 2,
      max: 1,
      message: "pod asks for 2 floating IPs; at most 1",
    },
  ];
  for (const { desc, count, max, message } of cases) {
    it(`validateFloatingIpCount() ${desc}`, () => {
      const check = () => validateFloatingIpCount(ips(count), max);
      if (message === undefined) expect(check).not.toThrow();
      else expect(check).toThrow(message);
    });
  }
});

describe("validateInPools()", () => {
  it("validateInPools() accepts addresses in any pool, disabled ones included", () => {
    expect(() => validateInPools(["10.244.1.1", "10.0.0.1", "fd00::5"], pools)).not.toThrow();
  });
  it("validateInPools() names the first address outside every pool", () => {
    expect(() => validateInPools(["10.0.0.1", "192.168.1.1"], pools)).toThrow(
      "floating IP 192.168.1.1 is not within any configured IP pool",
    );
  });
  it("validateInPools() refuses everything when there are no pools", () => {
    expect(() => validateInPools(["10.0.0.1"], [])).toThrow("not within any configured IP pool");
  });
  it("findPool() does not match across families", () => {
    expect(findPool("::ffff:10.0.0.1", [pool("floating", "10.0.0.0/24")])).toBeUndefined();
  });
});

describe("planBindings()", () => {
  it("planBindings() pairs each floating IP with the pod address of its family", () => {
    expect(planBindings(["10.0.0.1", "fd00::9"], ["10.244.0.5", "fd00::5"])).toEqual([
      { externalIP: "10.0.0.1", internalIP: "10.244.0.5" },
      { externalIP: "fd00::9", internalIP: "fd00::5" },
    ]);
  });
  it("planBindings() refuses IPv6 for an IPv4-only pod", () => {
    expect(() => planBindings(["fd00::9"], ["10.244.0.5"])).toThrow(
      "floating IP fd00::9 is IPv6 but the pod has no IPv6 address",
    );
  });
  it("planBindings() refuses IPv4 for an IPv6-only pod", () => {
    expect(() => planBindings(["10.0.0.1"], ["fd00::5"])).toThrow(
      "floating IP 10.0.0.1 is IPv4 but the pod has no IPv4 address",
    );
  });
});

describe("checkClaimConflict()", () => {
  const claim = {
    ip: "10.0.0.1",
    namespace: "shop",
    pod: "db-0",
    containerID: "c1",
    node: "n1",
    internalIP: "10.244.0.9",
    createdAt: "",
  };
  const shop = (containerID: string) => ({ containerID, namespace: "shop" });
  const owner = { handle: "net.c9", node: "n1", namespace: "shop", pod: "web-1" };
  it("checkClaimConflict() accepts a free address", () => {
    expect(() => checkClaimConflict("10.0.0.1", shop("c2"), undefined, undefined)).not.toThrow();
  });
  it("checkClaimConflict() accepts the holder's own claim (a repeated ADD)", () => {
    expect(() => checkClaimConflict("10.0.0.1", shop("c1"), claim, undefined)).not.toThrow();
  });
  it("checkClaimConflict() names the holder of a claim in the requester's namespace", () => {
    expect(() => checkClaimConflict("10.0.0.1", shop("c2"), claim, undefined)).toThrow(
      "floating IP 10.0.0.1 is already held by pod shop/db-0",
    );
  });
  it("checkClaimConflict() names the pod whose own address it is, in the requester's namespace", () => {
    expect(() => checkClaimConflict("10.244.0.9", shop("c2"), undefined, owner)).toThrow(
      "floating IP 10.244.0.9 is the address of pod shop/web-1",
    );
  });
  it("checkClaimConflict() names no pod of another namespace", () => {
    const other = { containerID: "c2", namespace: "tenant-b" };
    expect(() => checkClaimConflict("10.0.0.1", other, claim, undefined)).toThrow(
      /^floating IP 10\.0\.0\.1 is already held by a pod in another namespace$/,
    );
    expect(() => checkClaimConflict("10.244.0.9", other, undefined, owner)).toThrow(
      /^floating IP 10\.244\.0\.9 is the address of a pod in another namespace$/,
    );
  });
});

describe("validatePoolNamespaces()", () => {
  const team: IpPool = { ...pool("team-a", "10.1.0.0/24", true), namespaceSelector: "team == 'a'" };
  const broken: IpPool = { ...pool("broken", "10.2.0.0/24", true), namespaceSelector: "team ==" };
  const all = [...pools, team, broken];
  const cases = [
    {
      desc: "a pool without selector, any namespace",
      ip: "10.0.0.1",
      labels: {},
      error: undefined,
    },
    { desc: "a selecting pool", ip: "10.1.0.1", labels: { team: "a" }, error: undefined },
    {
      desc: "a pool that does not select the namespace",
      ip: "10.1.0.1",
      labels: { team: "b" },
      error: "floating IP 10.1.0.1 is in pool team-a, which namespace prod may not use",
    },
    {
      desc: "a pool whose selector does not parse (fail closed)",
      ip: "10.2.0.1",
      labels: { team: "a" },
      error: "floating IP 10.2.0.1 is in pool broken, which namespace prod may not use",
    },
    {
      desc: "an IP in no pool (validateInPools() refuses it)",
      ip: "192.0.2.1",
      labels: {},
      error: undefined,
    },
  ];
  for (const { desc, ip, labels, error } of cases) {
    it(`validatePoolNamespaces() ${error ? "refuses" : "accepts"} ${desc}`, () => {
      const check = () => validatePoolNamespaces([ip], all, "prod", labels);
      if (error) expect(check).toThrow(error);
      else expect(check).not.toThrow();
    });
  }
  it("poolNamespacesMatter() only for IPs in pools that restrict namespaces", () => {
    expect(poolNamespacesMatter(["10.0.0.1", "192.0.2.1"], all)).toBe(false);
    expect(poolNamespacesMatter(["10.0.0.1", "10.1.0.1"], all)).toBe(true);
  });
});
