import { beforeEach, describe, expect, it } from "vitest";
import { CniError } from "./errors.js";
import { MemoryKv } from "../etcd/memory-kv.js";
import type { Kv } from "../datastore/kv.js";
import { DatastoreUnavailableError } from "../datastore/unavailable-error.js";
import { keys, Store } from "../etcd/store.js";
import { EtcdDatastore } from "../etcd/etcd-datastore.js";
import { openDatastore } from "./open-datastore.js";
import { LinkExistsError, type PodNetwork } from "../dataplane/shell/linux-pod-network.js";
import type { PodLinkPlan, PodNetworkPlan } from "../dataplane/pod-network.js";
import { silentLogger } from "../log/logger.js";
import { validatePool } from "../ipam/pool.js";
import { runCni, type CniDeps, type CniRole } from "./plugin.js";

/** Pod networking in memory: which host interfaces exist and for which plan. */
class FakePodNetwork implements PodNetwork {
  readonly interfaces = new Map<string, PodNetworkPlan>();
  failNextCreate = false;
  failNextConfigure = false;
  async createLink(plan: PodLinkPlan, options: { replace?: boolean } = {}): Promise<void> {
    if (this.failNextCreate) {
      this.failNextCreate = false;
      throw new Error("ip: RTNETLINK answers: Operation not permitted");
    }
    if (options.replace === false && this.interfaces.has(plan.hostIfname)) {
      throw new LinkExistsError(`${plan.hostIfname} exists`);
    }
    this.interfaces.set(plan.hostIfname, { ...plan, addresses: [] });
  }
  async configure(plan: PodNetworkPlan): Promise<void> {
    if (!this.interfaces.has(plan.hostIfname)) throw new Error(`no pair ${plan.hostIfname}`);
    if (this.failNextConfigure) {
      this.failNextConfigure = false;
      throw new Error("ip: RTNETLINK answers: File exists");
    }
    this.interfaces.set(plan.hostIfname, plan);
  }
  async deletePodInterface(netns: string, ifname: string): Promise<void> {
    for (const [name, plan] of this.interfaces) {
      if (plan.netns === netns && plan.ifname === ifname) this.interfaces.delete(name);
    }
  }
  async deleteHostInterface(hostIfname: string): Promise<void> {
    this.interfaces.delete(hostIfname);
  }
  async check(plan: PodNetworkPlan): Promise<string[]> {
    return this.interfaces.has(plan.hostIfname)
      ? []
      : [`host interface ${plan.hostIfname} is missing`];
  }
}

let kv: MemoryKv;
let store: Store;
let net: FakePodNetwork;
let deps: CniDeps;

beforeEach(async () => {
  kv = new MemoryKv();
  store = new Store(kv);
  net = new FakePodNetwork();
  deps = {
    openDatastore: () => new EtcdDatastore(new Store(kv)),
    podNetwork: net,
    execPlugin: async () => {
      throw new Error("no delegation expected");
    },
    hostname: () => "node-1",
    now: () => new Date("2026-01-01T00:00:00Z"),
    logger: silentLogger,
  };
  for (const [name, spec] of [
    ["pods", { cidr: "10.244.0.0/16" }],
    ["pods6", { cidr: "fd00:244::/64" }],
    ["floating", { cidr: "10.0.0.0/24", disabled: true }],
    ["floating6", { cidr: "fd00:f::/120", disabled: true }],
  ] as const) {
    await store.putPool(validatePool(name, spec));
  }
});

interface Call {
  command: string;
  containerID?: string;
  pod?: string;
  annotation?: string;
  conf?: Record<string, unknown>;
  netns?: string;
  role?: CniRole;
}

function conf(call: Call): Record<string, unknown> {
  return {
    cniVersion: "1.0.0",
    name: "k8s-pod-network",
    type: "calico",
    nodename: "node-1",
    ipam: { type: "calico-ipam" },
    feature_control: { floating_ips: true },
    ...(call.annotation === undefined
      ? {}
      : {
          runtimeConfig: {
            "io.kubernetes.cri.pod-annotations": {
              "cni.projectcalico.org/floatingIPs": call.annotation,
            },
          },
        }),
    ...call.conf,
  };
}

async function cni(call: Call): Promise<{ exitCode: number; out: Record<string, unknown> }> {
  const containerID = call.containerID ?? "c1";
  const response = await runCni(
    {
      role: call.role ?? "plugin",
      env: {
        CNI_COMMAND: call.command,
        CNI_CONTAINERID: containerID,
        CNI_NETNS: call.netns ?? `/var/run/netns/${containerID}`,
        CNI_IFNAME: "eth0",
        CNI_ARGS: `K8S_POD_NAMESPACE=shop;K8S_POD_NAME=${call.pod ?? containerID}`,
      },
      stdin: JSON.stringify(conf(call)),
    },
    deps,
  );
  return { exitCode: response.exitCode, out: response.stdout ? JSON.parse(response.stdout) : {} };
}

/** The annotation asking for `count` addresses of the floating pool 10.0.0.0/24. */
function manyFloatingIps(count: number): string {
  return JSON.stringify(Array.from({ length: count }, (_, i) => `10.0.0.${i + 1}`));
}

async function leftovers() {
  const blocks = await store.listBlocks();
  return {
    allocations: blocks.flatMap((block) => Object.keys(block.value.allocations)),
    claims: (await store.listClaims()).map((claim) => claim.value.ip),
    endpoints: (await store.listEndpoints()).length,
    interfaces: net.interfaces.size,
  };
}
const nothing = { allocations: [], claims: [], endpoints: 0, interfaces: 0 };

describe("runCni() ADD", () => {
  it("runCni() ADD gives the pod an address, claims its floating IP and records ipNATs", async () => {
    const { exitCode, out } = await cni({ command: "ADD", annotation: '["10.0.0.1"]' });
    expect(exitCode).toBe(0);
    expect(out).toMatchObject({
      cniVersion: "1.0.0",
      ips: [{ address: "10.244.0.0/32", interface: 1 }],
    });
    const [claim] = await store.listClaims();
    expect(claim?.value).toMatchObject({
      ip: "10.0.0.1",
      namespace: "shop",
      pod: "c1",
      containerID: "c1",
      node: "node-1",
      internalIP: "10.244.0.0",
    });
    const [endpoint] = await store.listEndpoints("node-1");
    expect(endpoint?.value.ipNATs).toEqual([{ internalIP: "10.244.0.0", externalIP: "10.0.0.1" }]);
  });

  it("runCni() ADD accepts as many floating IPs as max_floating_ips_per_pod allows", async () => {
    const { exitCode } = await cni({
      command: "ADD",
      annotation: manyFloatingIps(20),
      conf: { max_floating_ips_per_pod: 20 },
    });
    expect(exitCode).toBe(0);
    expect((await leftovers()).claims).toHaveLength(20);
  });

  it("runCni() ADD answers a bad CNI_IFNAME with code 4 in the config's version", async () => {
    const response = await runCni(
      {
        role: "plugin",
        env: {
          CNI_COMMAND: "ADD",
          CNI_CONTAINERID: "c1",
          CNI_NETNS: "/var/run/netns/c1",
          CNI_IFNAME: "e\nlink",
        },
        stdin: JSON.stringify(conf({ command: "ADD", conf: { cniVersion: "0.4.0" } })),
      },
      deps,
    );
    expect(response.exitCode).toBe(1);
    expect(JSON.parse(response.stdout)).toMatchObject({
      cniVersion: "0.4.0",
      code: 4,
      msg: "invalid CNI_IFNAME 'e\nlink': interface name contains / or : or whitespace",
    });
    expect(await leftovers()).toEqual(nothing);
  });

  it("runCni() ADD refuses a hostname that is no node name when the config names none", async () => {
    deps.hostname = () => "Build_Host";
    const { exitCode, out } = await cni({ command: "ADD", conf: { nodename: undefined } });
    expect(exitCode).not.toBe(0);
    expect(out.code).toBe(7);
    expect(out.msg).toBe(
      `invalid network config: no key 'nodename', and the hostname "Build_Host" is no node name: ` +
        "not a DNS-1123 subdomain (lower-case letters, digits, '-' and '.', starting and ending with a letter or digit)",
    );
    expect(await leftovers()).toEqual(nothing);
  });

  it("runCni() ADD takes an upper-case hostname lower-cased, as Calico and the kubelet do", async () => {
    deps.hostname = () => "Node-1\n";
    const { exitCode } = await cni({ command: "ADD", conf: { nodename: undefined } });
    expect(exitCode).toBe(0);
    expect((await cni({ command: "DEL", conf: { nodename: "node-1" } })).exitCode).toBe(0);
    expect(await leftovers()).toEqual(nothing);
  });

  it("runCni() ADD deduplicates a repeated entry", async () => {
    expect((await cni({ command: "ADD", annotation: '["10.0.0.1","10.0.0.1"]' })).exitCode).toBe(0);
    expect((await leftovers()).claims).toEqual(["10.0.0.1"]);
  });

  it("runCni() ADD of a dual-stack pod binds both families", async () => {
    const dual = { ipam: { type: "calico-ipam", assign_ipv6: "true" } };
    const { exitCode, out } = await cni({
      command: "ADD",
      annotation: '["10.0.0.1","fd00:f::1"]',
      conf: dual,
    });
    expect(exitCode).toBe(0);
    expect((out.ips as { address: string }[]).map((ip) => ip.address)).toEqual([
      "10.244.0.0/32",
      "fd00:244::/128",
    ]);
    const [endpoint] = await store.listEndpoints();
    expect(endpoint?.value.ipNATs).toEqual([
      { internalIP: "10.244.0.0", externalIP: "10.0.0.1" },
      { internalIP: "fd00:244::", externalIP: "fd00:f::1" },
    ]);
  });

  it("runCni() ADD without the annotation works with the feature off", async () => {
    const { exitCode } = await cni({
      command: "ADD",
      conf: { feature_control: { floating_ips: false } },
    });
    expect(exitCode).toBe(0);
    expect((await leftovers()).claims).toEqual([]);
  });

  const refusals: {
    desc: string;
    annotation: string;
    conf?: Record<string, unknown>;
    code: number;
    msg: string;
    setup?: () => Promise<void>;
  }[] = [
    {
      desc: "annotation present, feature off",
      annotation: '["10.0.0.1"]',
      conf: { feature_control: { floating_ips: false } },
      code: 100,
      msg: "requested feature is not enabled: floating_ips",
    },
    {
      desc: "feature_control absent",
      annotation: "[]",
      conf: { feature_control: undefined },
      code: 100,
      msg: "requested feature is not enabled: floating_ips",
    },
    {
      desc: "not JSON",
      annotation: "10.0.0.1",
      code: 100,
      msg: "failed to parse '10.0.0.1' as JSON: ",
    },
    {
      desc: "not an array of strings",
      annotation: '{"a":1}',
      code: 100,
      msg: `failed to parse '{"a":1}' as JSON: expected an array of strings, got an object`,
    },
    {
      desc: "a name",
      annotation: '["foo"]',
      code: 100,
      msg: "invalid floating IP 'foo': not an IP address",
    },
    {
      desc: "a CIDR",
      annotation: '["10.0.0.0/24"]',
      code: 100,
      msg: "invalid floating IP '10.0.0.0/24': not an IP address",
    },
    {
      desc: "an empty string",
      annotation: '[""]',
      code: 100,
      msg: "invalid floating IP '': not an IP address",
    },
    {
      desc: "outside every pool",
      annotation: '["192.168.7.7"]',
      code: 100,
      msg: "floating IP 192.168.7.7 is not within any configured IP pool",
    },
    {
      desc: "IPv6 for an IPv4-only pod",
      annotation: '["fd00:f::1"]',
      code: 100,
      msg: "floating IP fd00:f::1 is IPv6 but the pod has no IPv6 address",
    },
    {
      desc: "IPv4 for an IPv6-only pod",
      annotation: '["10.0.0.1"]',
      conf: { ipam: { type: "calico-ipam", assign_ipv4: "false", assign_ipv6: "true" } },
      code: 100,
      msg: "floating IP 10.0.0.1 is IPv4 but the pod has no IPv4 address",
    },
    {
      desc: "more than 16 floating IPs by default",
      annotation: manyFloatingIps(17),
      code: 100,
      msg: "pod asks for 17 floating IPs; at most 16",
    },
    {
      desc: "more floating IPs than max_floating_ips_per_pod",
      annotation: manyFloatingIps(3),
      conf: { max_floating_ips_per_pod: 2 },
      code: 100,
      msg: "pod asks for 3 floating IPs; at most 2",
    },
    {
      desc: "a bound of the wrong type, as a config error",
      annotation: '["10.0.0.1"]',
      conf: { max_floating_ips_per_pod: "32" },
      code: 7,
      msg: "invalid network config: key 'max_floating_ips_per_pod' must be number",
    },
    {
      desc: "a loopback address",
      annotation: '["127.0.0.1"]',
      code: 100,
      msg: "invalid floating IP '127.0.0.1': loopback address",
    },
    {
      desc: "an IPv4-mapped IPv6 address",
      annotation: '["::ffff:10.0.0.1"]',
      code: 100,
      msg: "invalid floating IP '::ffff:10.0.0.1': IPv4-mapped IPv6 address",
    },
    {
      desc: "an annotation over 4 KiB",
      annotation: `["10.0.0.1"${" ".repeat(5000)}]`,
      code: 100,
      msg: "annotation cni.projectcalico.org/floatingIPs is 5012 bytes; at most 4096",
    },
    {
      desc: "a long bad value, echoed truncated",
      annotation: "x".repeat(3000),
      code: 100,
      msg: `failed to parse '${"x".repeat(64)}…(truncated, 3000 characters)' as JSON: `,
    },
  ];
  for (const { desc, annotation, conf: patch, code, msg } of refusals) {
    it(`runCni() ADD refuses ${desc} and leaves nothing behind`, async () => {
      const { exitCode, out } = await cni({ command: "ADD", annotation, conf: patch ?? {} });
      expect(exitCode).not.toBe(0);
      expect(out.code).toBe(code);
      expect(String(out.msg)).toContain(msg);
      expect(await leftovers()).toEqual(nothing);
    });
  }

  it("runCni() ADD refuses a floating IP held by another pod, naming it, and leaves nothing of the second pod", async () => {
    expect(
      (await cni({ command: "ADD", containerID: "a", pod: "first", annotation: '["10.0.0.1"]' }))
        .exitCode,
    ).toBe(0);
    const before = await leftovers();
    const { exitCode, out } = await cni({
      command: "ADD",
      containerID: "b",
      pod: "second",
      annotation: '["10.0.0.1"]',
    });
    expect(exitCode).not.toBe(0);
    expect(out.msg).toBe("floating IP 10.0.0.1 is already held by pod shop/first");
    expect(await leftovers()).toEqual(before);
  });

  it("runCni() ADD refuses another pod's own address as a floating IP", async () => {
    expect((await cni({ command: "ADD", containerID: "a", pod: "first" })).exitCode).toBe(0);
    const before = await leftovers();
    const { out } = await cni({
      command: "ADD",
      containerID: "b",
      pod: "second",
      annotation: '["10.244.0.0"]',
    });
    expect(out.msg).toBe("floating IP 10.244.0.0 is the address of pod shop/first");
    expect(await leftovers()).toEqual(before);
  });

  it("runCni() ADD refuses a floating IP from a pool the pod's namespace may not use, and leaves nothing behind", async () => {
    await store.putPool(
      validatePool("team-a", {
        cidr: "10.9.0.0/24",
        disabled: true,
        namespaceSelector: "team == 'a'",
      }),
    );
    const { exitCode, out } = await cni({ command: "ADD", annotation: '["10.9.0.1"]' });
    expect(exitCode).not.toBe(0);
    expect(out.msg).toBe(
      "floating IP 10.9.0.1 is in pool team-a, which namespace shop may not use",
    );
    expect(await leftovers()).toEqual(nothing);
    // Labelled (buoy apply's Namespace record), the namespace may.
    await kv.txn(
      [],
      [
        {
          put: keys.namespace("shop"),
          value: JSON.stringify({ name: "shop", labels: { team: "a" } }),
        },
      ],
    );
    expect((await cni({ command: "ADD", annotation: '["10.9.0.1"]' })).exitCode).toBe(0);
  });

  it("runCni() ADD gives the pod an address from a pool its namespace may use", async () => {
    await store.putPool(
      validatePool("pods", { cidr: "10.244.0.0/16", namespaceSelector: "team == 'b'" }),
    );
    await store.putPool(
      validatePool("shop", { cidr: "10.8.0.0/24", namespaceSelector: "!has(team)" }),
    );
    const { exitCode, out } = await cni({ command: "ADD" });
    expect(exitCode).toBe(0);
    expect(out.ips).toEqual([{ address: "10.8.0.0/32", interface: 1 }]);
  });

  it("runCni() ADD never gives the pod the free floating IP it asks for from an enabled pool", async () => {
    // Found in review: IPAM picked the requested IP as the pod's own address,
    // and the claim then failed naming the pod itself, on every retry.
    const { exitCode } = await cni({
      command: "ADD",
      containerID: "a",
      pod: "first",
      annotation: '["10.244.0.0"]',
    });
    expect(exitCode).toBe(0);
    const left = await leftovers();
    expect(left.claims).toEqual(["10.244.0.0"]);
    expect(left.allocations).toEqual(["10.244.0.1"]);
  });

  it("runCni() ADD refused while an earlier sandbox's host side is there leaves that side alone", async () => {
    expect((await cni({ command: "ADD", containerID: "old", pod: "web" })).exitCode).toBe(0);
    const before = [...net.interfaces];
    const { exitCode } = await cni({
      command: "ADD",
      containerID: "new",
      pod: "web",
      annotation: '["192.0.2.1"]',
    });
    expect(exitCode).toBe(1);
    expect(before).toHaveLength(1);
    expect([...net.interfaces]).toEqual(before);
  });

  it("runCni() ADD replaces an earlier sandbox's host side once it goes ahead", async () => {
    expect((await cni({ command: "ADD", containerID: "old", pod: "web" })).exitCode).toBe(0);
    expect((await cni({ command: "ADD", containerID: "new", pod: "web" })).exitCode).toBe(0);
    const plans = [...net.interfaces.values()];
    expect(plans).toHaveLength(1);
    expect(plans[0]?.netns).toBe("/var/run/netns/new");
  });

  it("runCni() ADD undoes the allocation when the interface cannot be made", async () => {
    net.failNextCreate = true;
    const { out } = await cni({ command: "ADD", annotation: '["10.0.0.1"]' });
    expect(out.code).toBe(999);
    expect(await leftovers()).toEqual(nothing);
  });

  it("runCni() ADD undoes the pair, claims, endpoint and allocation when configuring fails", async () => {
    net.failNextConfigure = true;
    const { out } = await cni({ command: "ADD", annotation: '["10.0.0.1"]' });
    expect(out).toMatchObject({ code: 999, msg: "ip: RTNETLINK answers: File exists" });
    expect(await leftovers()).toEqual(nothing);
  });

  it("runCni() ADD reports an unreachable datastore as try-again-later (code 11)", async () => {
    const refuse = async () =>
      Promise.reject(new DatastoreUnavailableError("cannot reach etcd (ECONNREFUSED)"));
    const down: Kv = {
      get: refuse,
      list: refuse,
      listPage: refuse,
      txn: refuse,
      ping: refuse,
      readMany: refuse,
      watch: () => ({ [Symbol.asyncIterator]: () => ({ next: refuse }) }),
      grantLease: refuse,
      keepAliveLease: refuse,
      revokeLease: refuse,
    };

    deps.openDatastore = () => new EtcdDatastore(new Store(down));
    const { out } = await cni({ command: "ADD" });
    expect(out).toMatchObject({ code: 11, msg: "cannot reach etcd (ECONNREFUSED)" });
    expect(net.interfaces.size).toBe(0);
  });

  it("runCni() ADD with the kubernetes datastore and no kubeconfig names the missing key", async () => {
    deps.openDatastore = openDatastore;
    const { out } = await cni({ command: "ADD", conf: { datastore_type: "kubernetes" } });
    expect(out).toMatchObject({
      code: 7,
      msg: 'invalid network config: datastore_type "kubernetes" needs kubernetes.kubeconfig',
    });
    expect(net.interfaces.size).toBe(0);
  });

  it("runCni() ADD with an unreadable kubeconfig says which file and why", async () => {
    deps.openDatastore = openDatastore;
    const { out } = await cni({
      command: "ADD",
      conf: { datastore_type: "kubernetes", kubernetes: { kubeconfig: "/nonexistent/kubeconfig" } },
    });
    expect(out.code).toBe(7);
    expect(String(out.msg)).toMatch(/^cannot read kubeconfig \/nonexistent\/kubeconfig: ENOENT/);
    expect(net.interfaces.size).toBe(0);
  });

  it("runCni() ADD delegates to another IPAM plugin and passes DEL on", async () => {
    const calls: string[] = [];
    deps.execPlugin = async (type, env) => {
      calls.push(`${type} ${env.CNI_COMMAND}`);
      return {
        cniVersion: "1.0.0",
        ips: [{ address: "10.88.0.7/16", gateway: "10.88.0.1" }],
        dns: {},
      };
    };
    const { exitCode, out } = await cni({
      command: "ADD",
      conf: { ipam: { type: "host-local", subnet: "10.88.0.0/16" } },
    });
    expect(exitCode).toBe(0);
    expect(out.ips).toEqual([{ address: "10.88.0.7/32", interface: 1 }]);
    await cni({ command: "DEL", conf: { ipam: { type: "host-local", subnet: "10.88.0.0/16" } } });
    expect(calls).toEqual(["host-local ADD", "host-local DEL"]);
  });
});

describe("runCni() DEL, CHECK, GC, STATUS, VERSION", () => {
  it("runCni() DEL frees everything and succeeds again when all is gone, also with no netns", async () => {
    await cni({ command: "ADD", annotation: '["10.0.0.1"]' });
    expect((await cni({ command: "DEL" })).exitCode).toBe(0);
    expect(await leftovers()).toEqual(nothing);
    expect((await cni({ command: "DEL" })).exitCode).toBe(0);
    expect((await cni({ command: "DEL", netns: "" })).exitCode).toBe(0);
  });

  it("runCni() DEL of one pod leaves the other pod's claim alone", async () => {
    await cni({ command: "ADD", containerID: "a", annotation: '["10.0.0.1"]' });
    await cni({ command: "ADD", containerID: "b", annotation: '["10.0.0.2"]' });
    await cni({ command: "DEL", containerID: "a" });
    expect((await leftovers()).claims).toEqual(["10.0.0.2"]);
  });

  it("runCni() CHECK passes for a healthy pod and fails when its interface is gone", async () => {
    const { out } = await cni({ command: "ADD", conf: { cniVersion: "0.4.0" } });
    const prevResult = out;
    expect(
      (await cni({ command: "CHECK", conf: { cniVersion: "0.4.0", prevResult } })).exitCode,
    ).toBe(0);
    net.interfaces.clear();
    const failed = await cni({ command: "CHECK", conf: { cniVersion: "0.4.0", prevResult } });
    expect(failed.out.code).toBe(102);
  });

  it("runCni() refuses CHECK before 0.4.0 and GC/STATUS before 1.1.0", async () => {
    expect((await cni({ command: "CHECK", conf: { cniVersion: "0.3.1" } })).out.code).toBe(1);
    expect((await cni({ command: "GC", conf: { cniVersion: "1.0.0" } })).out.code).toBe(1);
    expect((await cni({ command: "STATUS", conf: { cniVersion: "1.0.0" } })).out.code).toBe(1);
  });

  it("runCni() GC releases what is not in valid-attachments", async () => {
    await cni({ command: "ADD", containerID: "keep", annotation: '["10.0.0.1"]' });
    await cni({ command: "ADD", containerID: "gone", annotation: '["10.0.0.2"]' });
    const gc = await cni({
      command: "GC",
      conf: {
        cniVersion: "1.1.0",
        "cni.dev/valid-attachments": [{ containerID: "keep", ifname: "eth0" }],
      },
    });
    expect(gc.exitCode).toBe(0);
    const left = await leftovers();
    expect(left.claims).toEqual(["10.0.0.1"]);
    expect(left.allocations).toEqual(["10.244.0.0"]);
    expect(left.endpoints).toBe(1);
  });

  it("runCni() GC leaves another network's allocations alone, even when its name extends this one's", async () => {
    await cni({ command: "ADD", containerID: "mine" });
    await cni({ command: "ADD", containerID: "theirs", conf: { name: "k8s-pod-network.v2" } });
    const gc = await cni({
      command: "GC",
      conf: { cniVersion: "1.1.0", "cni.dev/valid-attachments": [] },
    });
    expect(gc.exitCode).toBe(0);
    expect((await leftovers()).allocations).toEqual(["10.244.0.1"]);
  });

  it("runCni() GC refuses without valid-attachments, and reads null as none", async () => {
    await cni({ command: "ADD", containerID: "a" });
    const refused = await cni({ command: "GC", conf: { cniVersion: "1.1.0" } });
    expect(refused.out).toMatchObject({
      code: 7,
      msg: "invalid network config: GC needs cni.dev/valid-attachments",
    });
    expect((await leftovers()).allocations).toHaveLength(1);
    const gcNull = await cni({
      command: "GC",
      conf: { cniVersion: "1.1.0", "cni.dev/valid-attachments": null },
    });
    expect(gcNull.exitCode).toBe(0);
    // GC frees datastore records; interfaces go with their sandbox's namespace.
    expect(await leftovers()).toEqual({ ...nothing, interfaces: 1 });
  });

  it("runCni() passes STATUS and GC on to a delegated IPAM plugin, whose error is the answer", async () => {
    const calls: string[] = [];
    let answer: CniError | undefined;
    deps.execPlugin = async (type, env) => {
      calls.push(`${type} ${env.CNI_COMMAND}`);
      if (answer) throw answer;
      return undefined;
    };
    const conf = {
      cniVersion: "1.1.0",
      ipam: { type: "host-local", subnet: "10.88.0.0/16" },
      "cni.dev/valid-attachments": [],
    };
    expect((await cni({ command: "STATUS", conf })).exitCode).toBe(0);
    expect((await cni({ command: "GC", conf })).exitCode).toBe(0);
    expect(calls).toEqual(["host-local STATUS", "host-local GC"]);
    answer = new CniError(50, "host-local: no addresses left");
    const { out } = await cni({ command: "STATUS", conf });
    expect(out).toMatchObject({ code: 50, msg: "host-local: no addresses left" });
    // buoy's own IPAM runs in-process: nothing to pass on.
    calls.length = 0;
    answer = undefined;
    await cni({ command: "STATUS", conf: { cniVersion: "1.1.0" } });
    expect(calls).toEqual([]);
  });

  it("runCni() STATUS answers code 50 when the datastore is down", async () => {
    expect((await cni({ command: "STATUS", conf: { cniVersion: "1.1.0" } })).exitCode).toBe(0);
    deps.openDatastore = () =>
      new EtcdDatastore(
        new Store({
          ...kv,
          ping: async () => Promise.reject(new Error("connection refused")),
        } as Kv),
      );
    const { out } = await cni({ command: "STATUS", conf: { cniVersion: "1.1.0" } });
    expect(out).toMatchObject({ code: 50, msg: "datastore is unreachable: connection refused" });
  });

  it("runCni() VERSION lists every supported version, with or without a config", async () => {
    const response = await runCni(
      { role: "plugin", env: { CNI_COMMAND: "VERSION" }, stdin: "" },
      deps,
    );
    expect(JSON.parse(response.stdout)).toEqual({
      cniVersion: "1.1.0",
      supportedVersions: ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"],
    });
  });

  it("runCni() answers a missing CNI_COMMAND with code 4 and bad JSON with code 6", async () => {
    const noCommand = await runCni({ role: "plugin", env: {}, stdin: "{}" }, deps);
    expect(JSON.parse(noCommand.stdout)).toMatchObject({ code: 4 });
    const badJson = await runCni(
      {
        role: "plugin",
        env: { CNI_COMMAND: "ADD", CNI_CONTAINERID: "x", CNI_NETNS: "/x", CNI_IFNAME: "eth0" },
        stdin: "{",
      },
      deps,
    );
    expect(JSON.parse(badJson.stdout)).toMatchObject({ code: 6 });
  });

  it("runCni() as calico-ipam assigns and releases by handle", async () => {
    const { out } = await cni({ command: "ADD", role: "ipam" });
    expect(out.ips).toEqual([{ address: "10.244.0.0/32" }]);
    expect(net.interfaces.size).toBe(0);
    await cni({ command: "DEL", role: "ipam" });
    expect(await leftovers()).toEqual(nothing);
  });
});
