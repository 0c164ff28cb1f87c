// Floating-IP requests at ADD through the real plugin binary: every refusal of
// SPEC §4 leaves nothing behind (etcd and kernel), a held IP is refused naming
// its holder, concurrent ADDs never share an address, and two pods racing for
// one floating IP get exactly one winner.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  addNetns,
  createPool,
  deleteNetns,
  hostInterfaces,
  etcdPluginConf,
  runPlugin,
  runPrefix,
  sh,
  startEtcd,
  type Etcd,
} from "../support/harness.js";
import { keys } from "../../src/etcd/store.js";

let etcd: Etcd;
const prefix = runPrefix();
let made: string[] = [];

beforeAll(async () => {
  etcd = await startEtcd();
  await createPool(etcd.store, "pods", { cidr: "10.244.0.0/16" });
  await createPool(etcd.store, "pods6", { cidr: "fd00:244::/64" });
  await createPool(etcd.store, "floating", { cidr: "10.96.0.0/24", disabled: true });
  await createPool(etcd.store, "floating6", { cidr: "fd00:96::/120", disabled: true });
  // Pools only some namespaces may use (issue 13): "shop" has no labels.
  await createPool(etcd.store, "team-a", {
    cidr: "10.97.0.0/24",
    disabled: true,
    namespaceSelector: "team == 'a'",
  });
  await createPool(etcd.store, "pods-team-b", {
    cidr: "10.98.0.0/24",
    namespaceSelector: "team in {'b'}",
  });
});
afterEach(async () => {
  // Each test cleans its pods with DEL; this only catches what a failure left.
  for (const ns of made) deleteNetns(ns);
  made = [];
});
afterAll(async () => {
  await etcd?.stop();
});

interface PodSpec {
  name: string;
  annotation?: string;
  enabled?: boolean;
  dualStack?: boolean;
  /** buoy.dev/floating-ip-egress */
  egress?: string;
  /** ipam.ipv4_pools */
  pools?: string[];
  /** The pod's namespace (default shop). */
  namespace?: string;
  /** Keys over the plugin's config. */
  conf?: Record<string, unknown>;
  ifname?: string;
  containerID?: string;
}

function podCall(spec: PodSpec) {
  const ns = `${prefix}-${spec.name}`;
  made.push(ns);
  const path = addNetns(ns);
  const conf = etcdPluginConf(etcd, {
    ipam: {
      type: "calico-ipam",
      assign_ipv6: spec.dualStack ? "true" : "false",
      ...(spec.pools ? { ipv4_pools: spec.pools } : {}),
    },
    feature_control: { floating_ips: spec.enabled ?? true },
    capabilities: { "io.kubernetes.cri.pod-annotations": true },
    ...(spec.annotation === undefined
      ? {}
      : {
          runtimeConfig: {
            "io.kubernetes.cri.pod-annotations": {
              "cni.projectcalico.org/floatingIPs": spec.annotation,
              ...(spec.egress === undefined ? {} : { "buoy.dev/floating-ip-egress": spec.egress }),
            },
          },
        }),
    ...spec.conf,
  });
  return {
    ns,
    conf,
    containerID: spec.containerID ?? `ctr-${spec.name}`,
    ...(spec.ifname === undefined ? {} : { ifname: spec.ifname }),
    netns: path,
    pod: { namespace: spec.namespace ?? "shop", name: spec.name },
  };
}

async function state() {
  const blocks = await etcd.store.listBlocks();
  return {
    allocations: blocks.flatMap((block) => Object.keys(block.value.allocations)).sort(),
    claims: (await etcd.store.listClaims())
      .map((claim) => `${claim.value.ip}=${claim.value.pod}`)
      .sort(),
    endpoints: (await etcd.store.listEndpoints()).map((endpoint) => endpoint.value.pod).sort(),
    interfaces: hostInterfaces().length,
  };
}

const empty = { allocations: [], claims: [], endpoints: [], interfaces: 0 };

/** An annotation asking for `count` addresses of the floating pool 10.96.0.0/24. */
const floatingIps = (count: number) =>
  JSON.stringify(Array.from({ length: count }, (_, i) => `10.96.0.${i + 1}`));

describe("SPEC §4 refusals through the real plugin", () => {
  const rows: { desc: string; spec: Omit<PodSpec, "name">; msg: string; code?: number }[] = [
    {
      desc: "annotation present, feature off",
      spec: { annotation: '["10.96.0.1"]', enabled: false },
      msg: "requested feature is not enabled: floating_ips",
    },
    {
      desc: "not JSON",
      spec: { annotation: "10.96.0.1" },
      msg: "failed to parse '10.96.0.1' as JSON: ",
    },
    {
      desc: "not an array of strings",
      spec: { annotation: "[1]" },
      msg: "failed to parse '[1]' as JSON: expected an array of strings, found a number",
    },
    {
      desc: "a name",
      spec: { annotation: '["foo"]' },
      msg: "invalid floating IP 'foo': not an IP address",
    },
    {
      desc: "a CIDR",
      spec: { annotation: '["10.96.0.0/24"]' },
      msg: "invalid floating IP '10.96.0.0/24': not an IP address",
    },
    {
      desc: "an empty entry",
      spec: { annotation: '[""]' },
      msg: "invalid floating IP '': not an IP address",
    },
    {
      desc: "outside every pool",
      spec: { annotation: '["203.0.113.9"]' },
      msg: "floating IP 203.0.113.9 is not within any configured IP pool",
    },
    {
      desc: "no pod address of that family",
      spec: { annotation: '["fd00:96::9"]' },
      msg: "floating IP fd00:96::9 is IPv6 but the pod has no IPv6 address",
    },
    {
      desc: "in a pool whose namespaceSelector does not select the pod's namespace",
      spec: { annotation: '["10.97.0.1"]' },
      msg: "floating IP 10.97.0.1 is in pool team-a, which namespace shop may not use",
    },
    {
      desc: "pod addresses only from pools the namespace may not use",
      spec: { pools: ["pods-team-b"] },
      msg: "no enabled IPv4 IP pool among pods-team-b that namespace shop may use",
      code: 101, // IPAM's: no address to give
    },
    {
      desc: "an opt-in to egress that is neither true nor false",
      spec: { annotation: '["10.96.0.1"]', egress: "yes" },
      msg: `invalid buoy.dev/floating-ip-egress 'yes': expected "true" or "false"`,
    },
    {
      desc: "more than 16 floating IPs",
      spec: { annotation: floatingIps(17) },
      msg: "pod asks for 17 floating IPs; at most 16",
    },
    {
      desc: "more floating IPs than max_floating_ips_per_pod",
      spec: { annotation: floatingIps(3), conf: { max_floating_ips_per_pod: 2 } },
      msg: "pod asks for 3 floating IPs; at most 2",
    },
    {
      desc: "a max_floating_ips_per_pod that is not a number",
      spec: { annotation: floatingIps(1), conf: { max_floating_ips_per_pod: "32" } },
      msg: "invalid network config: key 'max_floating_ips_per_pod' must be number",
      code: 7,
    },
    {
      desc: "the unspecified address",
      spec: { annotation: '["0.0.0.0"]' },
      msg: "invalid floating IP '0.0.0.0': unspecified address",
    },
    {
      desc: "a loopback address",
      spec: { annotation: '["::1"]' },
      msg: "invalid floating IP '::1': loopback address",
    },
    {
      desc: "a multicast address",
      spec: { annotation: '["224.0.0.1"]' },
      msg: "invalid floating IP '224.0.0.1': multicast address",
    },
    {
      desc: "a link-local address",
      spec: { annotation: '["169.254.169.254"]' },
      msg: "invalid floating IP '169.254.169.254': link-local address",
    },
    {
      desc: "the broadcast address",
      spec: { annotation: '["255.255.255.255"]' },
      msg: "invalid floating IP '255.255.255.255': broadcast address",
    },
    {
      desc: "an IPv4-mapped IPv6 address of a pool's IPv4 address",
      spec: { annotation: '["::ffff:10.96.0.1"]' },
      msg: "invalid floating IP '::ffff:10.96.0.1': IPv4-mapped IPv6 address",
    },
    {
      desc: "::a.b.c.d, the IPv6 address it is (outside the IPv4 pool of a.b.c.d)",
      spec: { annotation: '["::10.96.0.1"]' },
      msg: "floating IP ::a60:1 is not within any configured IP pool",
    },
    {
      desc: "an annotation over 4 KiB, unread",
      spec: { annotation: `["10.96.0.1"${" ".repeat(4096)}]` },
      msg: "annotation cni.projectcalico.org/floatingIPs is 4109 bytes; at most 4096",
    },
    {
      desc: "an egress annotation over 4 KiB",
      spec: { annotation: '["10.96.0.1"]', egress: "y".repeat(5000) },
      msg: "annotation buoy.dev/floating-ip-egress is 5000 bytes; at most 4096",
    },
    {
      desc: "a long value, echoed truncated",
      spec: { annotation: "x".repeat(2000) },
      msg: `failed to parse '${"x".repeat(64)}…(truncated, 2000 characters)' as JSON: `,
    },
    {
      desc: "a CNI_IFNAME with a slash",
      spec: { annotation: '["10.96.0.1"]', ifname: "../eth0" },
      msg: "invalid CNI_IFNAME '../eth0': interface name contains / or : or whitespace",
      code: 4,
    },
    {
      desc: "a CNI_IFNAME with an ip -batch comment sign",
      spec: { annotation: '["10.96.0.1"]', ifname: "eth0#x" },
      msg: "invalid CNI_IFNAME 'eth0#x': interface name may hold only letters, digits, '_', '.' and '-'",
      code: 4,
    },
    {
      desc: "a CNI_IFNAME over 15 bytes",
      spec: { ifname: "eth0123456789abc" },
      msg: "invalid CNI_IFNAME 'eth0123456789abc': interface name is longer than 15 bytes",
      code: 4,
    },
    {
      desc: "a CNI_CONTAINERID with a slash",
      spec: { containerID: "ctr/../x" },
      msg: "invalid CNI_CONTAINERID 'ctr/../x': must be alphanumeric with '_', '.' or '-'",
      code: 4,
    },
    {
      desc: "a nodename that is no DNS-1123 subdomain",
      spec: { annotation: '["10.96.0.1"]', conf: { nodename: "node-1/../node-2" } },
      msg: `invalid network config: key 'nodename' is "node-1/../node-2": not a DNS-1123 subdomain`,
      code: 7,
    },
  ];
  for (const [index, { desc, spec, msg, code }] of rows.entries()) {
    it(`refuses ${desc}, leaving no allocation, claim, endpoint or interface`, async () => {
      const call = podCall({ name: `bad${index}`, ...spec });
      const outcome = await runPlugin({ command: "ADD", ...call });
      expect(outcome.exitCode).not.toBe(0);
      expect(outcome.output).toMatchObject({ cniVersion: "1.0.0", code: code ?? 100 });
      expect(String(outcome.output.msg)).toContain(msg);
      expect(await state()).toEqual(empty);
      expect(sh(["ip", "-n", call.ns, "link", "show", "eth0"]).status).not.toBe(0);
    });
  }

  it("gives a free floating IP from an enabled pool, and the pod another address", async () => {
    const call = podCall({ name: "fromenabled", annotation: '["10.244.0.0"]' });
    const added = await runPlugin({ command: "ADD", ...call });
    expect(added.exitCode, added.raw).toBe(0);
    expect((added.output.ips as { address: string }[])[0]!.address).not.toBe("10.244.0.0/32");
    expect((await state()).claims).toEqual(["10.244.0.0=fromenabled"]);
    expect((await runPlugin({ command: "DEL", ...call })).exitCode).toBe(0);
    expect(await state()).toEqual(empty);
  });

  it("gives a labelled namespace its pools: a floating IP and an address from them", async () => {
    await etcd.store.kv.txn(
      [],
      [
        {
          put: keys.namespace("team-b"),
          value: JSON.stringify({ name: "team-b", labels: { team: "b" } }),
        },
      ],
    );
    const call = podCall({
      name: "labelled",
      namespace: "team-b",
      pools: ["pods-team-b"],
      annotation: '["10.97.0.2"]',
    });
    const refused = await runPlugin({ command: "ADD", ...call });
    expect(refused.output.msg).toBe(
      "floating IP 10.97.0.2 is in pool team-a, which namespace team-b may not use",
    );
    expect(await state()).toEqual(empty);
    const allowed = podCall({ name: "labelled2", namespace: "team-b", pools: ["pods-team-b"] });
    const added = await runPlugin({ command: "ADD", ...allowed });
    expect(added.exitCode, added.raw).toBe(0);
    expect((added.output.ips as { address: string }[])[0]!.address).toBe("10.98.0.0/32");
    expect((await runPlugin({ command: "DEL", ...allowed })).exitCode).toBe(0);
    expect(await state()).toEqual(empty);
    await etcd.store.deleteKey(keys.namespace("team-b"));
  });

  it("accepts a repeated entry once", async () => {
    const call = podCall({ name: "dup", annotation: '["10.96.0.7","10.96.0.7"]' });
    expect((await runPlugin({ command: "ADD", ...call })).exitCode).toBe(0);
    expect((await state()).claims).toEqual(["10.96.0.7=dup"]);
    expect((await runPlugin({ command: "DEL", ...call })).exitCode).toBe(0);
    expect(await state()).toEqual(empty);
  });
});

describe("exclusive ownership", () => {
  it("refuses a held floating IP naming the holder, and a pod's own address naming that pod", async () => {
    const first = podCall({
      name: "first",
      annotation: '["10.96.0.1","fd00:96::1"]',
      dualStack: true,
    });
    const added = await runPlugin({ command: "ADD", ...first });
    expect(added.exitCode, added.raw).toBe(0);
    const firstIp = (added.output.ips as { address: string }[])[0]!.address.split("/")[0]!;
    const before = await state();

    const second = podCall({ name: "second", annotation: '["10.96.0.1"]' });
    const refused = await runPlugin({ command: "ADD", ...second });
    expect(refused.output.msg).toBe("floating IP 10.96.0.1 is already held by pod shop/first");
    const own = podCall({ name: "third", annotation: JSON.stringify([firstIp]) });
    const refusedOwn = await runPlugin({ command: "ADD", ...own });
    expect(refusedOwn.output.msg).toBe(`floating IP ${firstIp} is the address of pod shop/first`);
    // Another namespace learns nothing of shop's pods from a refusal.
    const tenant = podCall({ name: "tenant", namespace: "tenant-b", annotation: '["10.96.0.1"]' });
    expect((await runPlugin({ command: "ADD", ...tenant })).output.msg).toBe(
      "floating IP 10.96.0.1 is already held by a pod in another namespace",
    );
    const probe = podCall({
      name: "probe",
      namespace: "tenant-b",
      annotation: JSON.stringify([firstIp]),
    });
    expect((await runPlugin({ command: "ADD", ...probe })).output.msg).toBe(
      `floating IP ${firstIp} is the address of a pod in another namespace`,
    );
    expect(await state()).toEqual(before);

    expect((await runPlugin({ command: "DEL", ...first })).exitCode).toBe(0);
    const retried = await runPlugin({ command: "ADD", ...second });
    expect(retried.exitCode, retried.raw).toBe(0);
    expect((await state()).claims).toEqual(["10.96.0.1=second"]);
    expect((await runPlugin({ command: "DEL", ...second })).exitCode).toBe(0);
    expect(await state()).toEqual(empty);
  });

  it("gives exactly one of two pods racing for one floating IP the address", async () => {
    for (let round = 0; round < 5; round++) {
      const calls = [
        podCall({ name: `race${round}a`, annotation: '["10.96.0.50"]' }),
        podCall({ name: `race${round}b`, annotation: '["10.96.0.50"]' }),
      ];
      const outcomes = await Promise.all(
        calls.map((call) => runPlugin({ command: "ADD", ...call })),
      );
      const winners = outcomes.filter((outcome) => outcome.exitCode === 0);
      expect(winners).toHaveLength(1);
      const loser = outcomes.find((outcome) => outcome.exitCode !== 0)!;
      const winnerName = calls[outcomes.indexOf(winners[0]!)]!.pod.name;
      expect(loser.output.msg).toBe(
        `floating IP 10.96.0.50 is already held by pod shop/${winnerName}`,
      );
      expect((await state()).endpoints).toEqual([winnerName]);
      for (const call of calls)
        expect((await runPlugin({ command: "DEL", ...call })).exitCode).toBe(0);
      expect(await state()).toEqual(empty);
    }
  });
});

describe("as many floating IPs as the bounds allow (ADR 0012)", () => {
  it("attaches 240 floating IPs with max_floating_ips_per_pod raised, and DEL frees them all", async () => {
    const call = podCall({
      name: "many",
      annotation: floatingIps(240),
      conf: { max_floating_ips_per_pod: 240 },
    });
    const started = performance.now();
    const added = await runPlugin({ command: "ADD", ...call });
    const addMs = performance.now() - started;
    expect(added.exitCode, added.raw).toBe(0);
    const after = await state();
    expect(after.claims).toHaveLength(240);
    expect(after.claims.every((claim) => claim.endsWith("=many"))).toBe(true);
    expect(after.endpoints).toEqual(["many"]);
    const deleting = performance.now();
    expect((await runPlugin({ command: "DEL", ...call })).exitCode).toBe(0);
    const delMs = performance.now() - deleting;
    expect(await state()).toEqual(empty);
    console.info(
      `real plugin and etcd: ADD of 240 floating IPs in ${addMs.toFixed(0)} ms, DEL in ${delMs.toFixed(0)} ms`,
    );
  }, 60_000);

  it("refuses 200 floating IPs when one is held, naming the holder and leaving nothing", async () => {
    const holder = podCall({ name: "holder", annotation: '["10.96.0.150"]' });
    expect((await runPlugin({ command: "ADD", ...holder })).exitCode).toBe(0);
    const before = await state();
    const call = podCall({
      name: "refused",
      annotation: floatingIps(200),
      conf: { max_floating_ips_per_pod: 240 },
    });
    const refused = await runPlugin({ command: "ADD", ...call });
    expect(refused.output.msg).toBe("floating IP 10.96.0.150 is already held by pod shop/holder");
    expect(await state()).toEqual(before);
    expect((await runPlugin({ command: "DEL", ...holder })).exitCode).toBe(0);
    expect(await state()).toEqual(empty);
  }, 60_000);
});

describe("concurrency and idempotent DEL", () => {
  it("gives 20 concurrent ADDs on one node 20 distinct addresses, and DEL frees them all", async () => {
    const calls = Array.from({ length: 20 }, (_, i) => podCall({ name: `c${i}` }));
    const outcomes = await Promise.all(calls.map((call) => runPlugin({ command: "ADD", ...call })));
    for (const outcome of outcomes) expect(outcome.exitCode, outcome.raw).toBe(0);
    const ips = outcomes.map(
      (outcome) => (outcome.output.ips as { address: string }[])[0]!.address,
    );
    expect(new Set(ips).size).toBe(20);
    expect(hostInterfaces()).toHaveLength(20);
    await Promise.all(calls.map((call) => runPlugin({ command: "DEL", ...call })));
    expect(await state()).toEqual(empty);
  });

  it("DEL succeeds twice, and again with an empty CNI_NETNS and with the namespace gone", async () => {
    const call = podCall({ name: "deltwice", annotation: '["10.96.0.9"]' });
    expect((await runPlugin({ command: "ADD", ...call })).exitCode).toBe(0);
    expect((await runPlugin({ command: "DEL", ...call })).exitCode).toBe(0);
    expect((await runPlugin({ command: "DEL", ...call })).exitCode).toBe(0);
    expect((await runPlugin({ command: "DEL", ...call, netns: "" })).exitCode).toBe(0);
    deleteNetns(call.ns);
    expect((await runPlugin({ command: "DEL", ...call })).exitCode).toBe(0);
    expect(await state()).toEqual(empty);
  });

  it("DEL succeeds when CNI_NETNS names a file that is no longer a namespace", async () => {
    const call = podCall({ name: "delstale" });
    expect((await runPlugin({ command: "ADD", ...call })).exitCode).toBe(0);
    const stale = `/tmp/${prefix}-stale-netns`;
    sh(["touch", stale]);
    const deleted = await runPlugin({ command: "DEL", ...call, netns: stale });
    expect(deleted.exitCode, deleted.raw).toBe(0);
    deleteNetns(call.ns);
    expect(await state()).toEqual(empty);
  });

  it("DEL with an empty CNI_NETNS first still frees the address and claim", async () => {
    const call = podCall({ name: "delnons", annotation: '["10.96.0.10"]' });
    expect((await runPlugin({ command: "ADD", ...call })).exitCode).toBe(0);
    deleteNetns(call.ns);
    expect((await runPlugin({ command: "DEL", ...call, netns: "" })).exitCode).toBe(0);
    expect(await state()).toEqual(empty);
  });
});

describe("CNI 1.1 STATUS and GC", () => {
  it("GC releases the allocation, claim and endpoint of attachments the runtime no longer has", async () => {
    const keep = podCall({ name: "gckeep", annotation: '["10.96.0.20"]' });
    const gone = podCall({ name: "gcgone", annotation: '["10.96.0.21"]' });
    for (const call of [keep, gone])
      expect((await runPlugin({ command: "ADD", ...call })).exitCode).toBe(0);
    const gc = await runPlugin({
      command: "GC",
      conf: {
        ...keep.conf,
        cniVersion: "1.1.0",
        "cni.dev/valid-attachments": [{ containerID: keep.containerID, ifname: "eth0" }],
      },
    });
    expect(gc.exitCode, gc.raw).toBe(0);
    const after = await state();
    expect(after.claims).toEqual(["10.96.0.20=gckeep"]);
    expect(after.endpoints).toEqual(["gckeep"]);
    expect(after.allocations).toHaveLength(1);
    for (const call of [keep, gone])
      expect((await runPlugin({ command: "DEL", ...call })).exitCode).toBe(0);
    expect(await state()).toEqual(empty);
  });

  it("STATUS answers 0 with etcd up and code 50 when it cannot be reached", async () => {
    const base = { ...podCall({ name: "status" }).conf, cniVersion: "1.1.0" };
    expect((await runPlugin({ command: "STATUS", conf: base })).exitCode).toBe(0);
    const down = await runPlugin({
      command: "STATUS",
      conf: { ...base, etcd_endpoints: "http://127.0.0.1:9" },
    });
    expect(down.exitCode).not.toBe(0);
    expect(down.output).toMatchObject({ code: 50 });
    expect(String(down.output.msg)).toMatch(/^datastore is unreachable: cannot reach etcd/);
  });
});
