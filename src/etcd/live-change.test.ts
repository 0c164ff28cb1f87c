import { beforeEach, describe, expect, it } from "vitest";
import { MemoryKv } from "./memory-kv.js";
import { keys, Store } from "./store.js";
import type { FloatingIpClaim, WorkloadEndpoint } from "../model/records.js";
import { validatePool } from "../ipam/pool.js";
import {
  findEndpoint,
  planFloatingIpEgress,
  planFloatingIpMove,
  planFloatingIpSet,
  type ChangePlan,
} from "./live-change.js";
import { commitLiveChange } from "./commit-live-change.js";

let store: Store;

function endpoint(pod: string, ips: string[], node = "n1"): WorkloadEndpoint {
  return {
    node,
    namespace: "shop",
    pod,
    containerID: `c-${pod}`,
    endpoint: "eth0",
    interfaceName: `cali${pod}`,
    mac: "02:00:00:00:00:01",
    ipNetworks: ips.map((ip) => `${ip}/${ip.includes(":") ? 128 : 32}`),
    ipNATs: [],
    network: "k8s-pod-network",
    createdAt: "",
  };
}

async function put(key: string, value: object): Promise<void> {
  await store.kv.txn([], [{ put: key, value: JSON.stringify(value) }]);
}

async function commit(plan: (state: Awaited<ReturnType<Store["readLiveState"]>>) => ChangePlan) {
  const change = plan(await store.readLiveState());
  expect(await store.kv.txn(change.compares, change.ops)).toBe(true);
  return change;
}

async function held(): Promise<Record<string, string[]>> {
  const state = await store.readLiveState();
  const claims = Object.fromEntries(state.claims.map((c) => [c.value.ip, c.value.pod]));
  const out: Record<string, string[]> = {};
  for (const { value } of state.endpoints) {
    out[value.pod] = value.ipNATs.map(
      (nat) => `${nat.externalIP}>${nat.internalIP}:${claims[nat.externalIP] ?? "unclaimed"}`,
    );
  }
  return out;
}

beforeEach(async () => {
  store = new Store(new MemoryKv());
  await store.putPool(validatePool("pods", { cidr: "10.244.0.0/16" }));
  await store.putPool(validatePool("floating", { cidr: "10.96.0.0/24", disabled: true }));
  await store.putPool(validatePool("floating6", { cidr: "fd00:96::/120", disabled: true }));
  await put(keys.endpoint("n1", "c-a", "eth0"), endpoint("a", ["10.244.0.1", "fd00::1"]));
  await put(keys.endpoint("n1", "c-b", "eth0"), endpoint("b", ["10.244.0.2"]));
  await put(keys.block("10.244.0.0/26"), {
    cidr: "10.244.0.0/26",
    affinity: "n1",
    allocations: {
      "10.244.0.1": { handle: "h-a", node: "n1", namespace: "shop", pod: "a" },
      "10.244.0.2": { handle: "h-b", node: "n1", namespace: "shop", pod: "b" },
    },
  });
});

describe("planFloatingIpSet()", () => {
  it("planFloatingIpSet() claims, records and releases in one transaction", async () => {
    await commit((s) => planFloatingIpSet(s, "shop/a", ["10.96.0.1", "fd00:96::1"]));
    expect(await held()).toEqual({ a: ["10.96.0.1>10.244.0.1:a", "fd00:96::1>fd00::1:a"], b: [] });
    await commit((s) => planFloatingIpSet(s, "shop/a", ["10.96.0.2"]));
    expect(await held()).toEqual({ a: ["10.96.0.2>10.244.0.1:a"], b: [] });
    expect((await store.listClaims()).map((c) => c.value.ip)).toEqual(["10.96.0.2"]);
    await commit((s) => planFloatingIpSet(s, "shop/a", []));
    expect(await store.listClaims()).toEqual([]);
  });

  const refusals: { desc: string; ips: string[]; msg: string; pod?: string; max?: number }[] = [
    { desc: "a name", ips: ["foo"], msg: "invalid floating IP 'foo': not an IP address" },
    {
      desc: "outside every pool",
      ips: ["192.0.2.1"],
      msg: "floating IP 192.0.2.1 is not within any configured IP pool",
    },
    {
      desc: "a family the pod lacks",
      ips: ["fd00:96::5"],
      pod: "shop/b",
      msg: "floating IP fd00:96::5 is IPv6 but the pod has no IPv6 address",
    },
    {
      desc: "another pod's own address",
      ips: ["10.244.0.2"],
      msg: "floating IP 10.244.0.2 is the address of pod shop/b",
    },
    {
      desc: "an unknown pod",
      ips: ["10.96.0.1"],
      pod: "shop/nope",
      msg: "no workload endpoint for pod shop/nope",
    },
  ];
  const many = (count: number) => Array.from({ length: count }, (_, i) => `10.96.0.${i + 1}`);
  refusals.push(
    {
      desc: "a loopback address",
      ips: ["127.0.0.1"],
      msg: "invalid floating IP '127.0.0.1': loopback address",
    },
    {
      desc: "an IPv4-mapped IPv6 address",
      ips: ["::ffff:10.96.0.1"],
      msg: "invalid floating IP '::ffff:10.96.0.1': IPv4-mapped IPv6 address",
    },
    {
      desc: "more than 16 floating IPs by default",
      ips: many(17),
      msg: "pod asks for 17 floating IPs; at most 16",
    },
    {
      desc: "more than the conflist's bound",
      ips: many(3),
      max: 2,
      msg: "pod asks for 3 floating IPs; at most 2",
    },
  );
  for (const { desc, ips, msg, pod, max } of refusals) {
    it(`planFloatingIpSet() refuses ${desc} and changes nothing`, async () => {
      const before = await held();
      const state = await store.readLiveState();
      expect(() => planFloatingIpSet(state, pod ?? "shop/a", ips, max)).toThrow(msg);
      expect(await held()).toEqual(before);
    });
  }

  it("planFloatingIpSet() and planFloatingIpMove() refuse a pool the pod's namespace may not use", async () => {
    await store.putPool(
      validatePool("team-a", {
        cidr: "10.97.0.0/24",
        disabled: true,
        namespaceSelector: "team == 'a'",
      }),
    );
    const before = await held();
    const state = await store.readLiveState();
    expect(() => planFloatingIpSet(state, "shop/a", ["10.97.0.1"])).toThrow(
      "floating IP 10.97.0.1 is in pool team-a, which namespace shop may not use",
    );
    expect(await held()).toEqual(before);
    await put(keys.namespace("shop"), { name: "shop", labels: { team: "a" } });
    await commit((s) => planFloatingIpSet(s, "shop/a", ["10.97.0.1"]));
    await put(keys.endpoint("n1", "c-c", "eth0"), {
      ...endpoint("c", ["10.244.0.3"]),
      namespace: "lab",
    });
    const moving = await store.readLiveState();
    expect(() => planFloatingIpMove(moving, "10.97.0.1", "lab/c")).toThrow(
      "floating IP 10.97.0.1 is in pool team-a, which namespace lab may not use",
    );
  });

  it("planFloatingIpSet() accepts as many as a raised bound allows", async () => {
    const ips = Array.from({ length: 20 }, (_, i) => `10.96.0.${i + 1}`);
    await commit((s) => planFloatingIpSet(s, "shop/a", ips, 20));
    expect((await held()).a).toHaveLength(20);
  });

  it("planFloatingIpSet() refuses an IP held by another pod, naming it", async () => {
    await commit((s) => planFloatingIpSet(s, "shop/b", ["10.96.0.1"]));
    const state = await store.readLiveState();
    expect(() => planFloatingIpSet(state, "shop/a", ["10.96.0.1"])).toThrow(
      "floating IP 10.96.0.1 is already held by pod shop/b",
    );
  });

  it("planFloatingIpSet() loses a race cleanly: a plan made on stale data does not commit", async () => {
    const stale = await store.readLiveState();
    await commit((s) => planFloatingIpSet(s, "shop/b", ["10.96.0.1"]));
    const change = planFloatingIpSet(stale, "shop/a", ["10.96.0.1"]);
    expect(await store.kv.txn(change.compares, change.ops)).toBe(false);
    expect((await held()).b).toEqual(["10.96.0.1>10.244.0.2:b"]);
  });
});

describe("findEndpoint()", () => {
  it("findEndpoint() takes the newest endpoint when an older sandbox of the pod is still recorded", async () => {
    await put(keys.endpoint("n1", "c-a-old", "eth0"), {
      ...endpoint("a", ["10.244.0.9"]),
      containerID: "c-a-old",
      createdAt: "2026-01-01T00:00:00Z",
    });
    await put(keys.endpoint("n1", "c-a", "eth0"), {
      ...endpoint("a", ["10.244.0.1"]),
      createdAt: "2026-01-02T00:00:00Z",
    });
    expect(findEndpoint(await store.readLiveState(), "shop/a").value.containerID).toBe("c-a");
  });
});

describe("planFloatingIpMove()", () => {
  it("planFloatingIpMove() moves the claim and both endpoints' ipNATs together", async () => {
    await commit((s) => planFloatingIpSet(s, "shop/a", ["10.96.0.1", "10.96.0.3"]));
    await commit((s) => planFloatingIpMove(s, "10.96.0.1", "shop/b"));
    expect(await held()).toEqual({ a: ["10.96.0.3>10.244.0.1:a"], b: ["10.96.0.1>10.244.0.2:b"] });
    const claim = (await store.getClaim("10.96.0.1"))?.value as FloatingIpClaim;
    expect(claim).toMatchObject({ pod: "b", containerID: "c-b", internalIP: "10.244.0.2" });
  });
  it("planFloatingIpMove() refuses a move that takes the target over the bound", async () => {
    await commit((s) => planFloatingIpSet(s, "shop/a", ["10.96.0.1"]));
    await commit((s) => planFloatingIpSet(s, "shop/b", ["10.96.0.2", "10.96.0.3"]));
    const before = await held();
    const state = await store.readLiveState();
    expect(() => planFloatingIpMove(state, "10.96.0.1", "shop/b", 2)).toThrow(
      "pod asks for 3 floating IPs; at most 2",
    );
    expect(await held()).toEqual(before);
  });

  it("planFloatingIpMove() refuses an IP nobody holds and a target without the family", async () => {
    const state = await store.readLiveState();
    expect(() => planFloatingIpMove(state, "10.96.0.9", "shop/b")).toThrow(
      "floating IP 10.96.0.9 is not held by any pod",
    );
    await commit((s) => planFloatingIpSet(s, "shop/a", ["fd00:96::1"]));
    const later = await store.readLiveState();
    expect(() => planFloatingIpMove(later, "fd00:96::1", "shop/b")).toThrow(
      "is IPv6 but the pod has no IPv6 address",
    );
  });
});

describe("planFloatingIpEgress()", () => {
  it("planFloatingIpEgress() switches the endpoint's egress, keeping its floating IPs", async () => {
    await commit((s) => planFloatingIpSet(s, "shop/a", ["10.96.0.1"]));
    const egress = async () =>
      (await store.readLiveState()).endpoints.find((e) => e.value.pod === "a")?.value.egress;
    await commit((s) => planFloatingIpEgress(s, "shop/a", true));
    expect(await egress()).toBe(true);
    // A later change of its floating IPs keeps the opt-in.
    await commit((s) => planFloatingIpSet(s, "shop/a", ["10.96.0.2"]));
    expect(await egress()).toBe(true);
    expect((await held()).a).toEqual(["10.96.0.2>10.244.0.1:a"]);
    await commit((s) => planFloatingIpEgress(s, "shop/a", false));
    expect(await egress()).toBeUndefined();
  });

  it("planFloatingIpEgress() does not commit on a stale read, and names a missing pod", async () => {
    const stale = await store.readLiveState();
    await commit((s) => planFloatingIpSet(s, "shop/a", ["10.96.0.1"]));
    const change = planFloatingIpEgress(stale, "shop/a", true);
    expect(await store.kv.txn(change.compares, change.ops)).toBe(false);
    expect(() => planFloatingIpEgress(stale, "shop/nobody", true)).toThrow(
      "no workload endpoint for pod shop/nobody",
    );
  });
});

describe("a live change past one transaction (ADR 0012)", () => {
  const range = (first: number, count: number) =>
    Array.from({ length: count }, (_, i) => `10.96.0.${first + i}`);
  const change = async (pod: string, ips: string[]) =>
    commitLiveChange(
      store.kv,
      planFloatingIpSet(await store.readLiveState(), `shop/${pod}`, ips, 240),
    );

  it("commitLiveChange() grows a pod from 1 to 200 floating IPs and back, claims and endpoint together", async () => {
    expect(await change("a", range(1, 1))).toBe(true);
    expect(await change("a", range(1, 200))).toBe(true);
    const grown = (await held()).a ?? [];
    expect(grown).toHaveLength(200);
    expect(grown.every((entry) => entry.endsWith(":a"))).toBe(true);
    expect(await change("a", range(200, 1))).toBe(true);
    expect((await held()).a).toEqual(["10.96.0.200>10.244.0.1:a"]);
    expect((await store.readLiveState()).claims.map((claim) => claim.value.ip)).toEqual([
      "10.96.0.200",
    ]);
  });

  it("commitLiveChange() refuses a growth whose addresses another pod takes meanwhile, and leaves nothing of it", async () => {
    expect(await change("a", range(1, 1))).toBe(true);
    const plan = planFloatingIpSet(await store.readLiveState(), "shop/a", range(1, 200), 240);
    // b takes the 150th after a's read: a's part holding it loses its compares.
    expect(await change("b", ["10.96.0.150"])).toBe(true);
    expect(await commitLiveChange(store.kv, plan)).toBe(false);
    const claims = (await store.readLiveState()).claims.map((claim) => [
      claim.value.ip,
      claim.value.pod,
    ]);
    expect(claims.sort()).toEqual([
      ["10.96.0.1", "a"],
      ["10.96.0.150", "b"],
    ]);
    expect((await held()).a).toEqual(["10.96.0.1>10.244.0.1:a"]);
    // Read again, the plan names the holder.
    await expect(change("a", range(1, 200))).rejects.toThrow(
      "floating IP 10.96.0.150 is already held by pod shop/b",
    );
  });
});
