// The hostile-tenant suite (issue 13, item 11), against a real kube-apiserver
// v1.20.2 and the real kernel of this run's namespace. The attacker is a user
// whose own static token may create and edit pods in namespace `b` and
// nothing else; the victim is a pod in namespace `a` holding two floating
// IPs, one from a pool only `a` may use. Every attack is made the way the
// tenant would make it (its token, its pods, `kubectl annotate`-style merge
// patches); each one is refused with its stable words, leaves nothing behind,
// and the victim's floating IPs keep translating to it and carrying its
// traffic. Forged Calico annotations (podIP, podIPs, containerID) are in
// agent-identity.test.ts; the admission webhook's refusals in its own suite.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  addNetns,
  CNI_DIR,
  deleteNetns,
  execConflist,
  hostInterfaces,
  readNftMap,
  runPrefix,
  sh,
  sleep,
  startAgent,
  waitFor,
  type AgentProcess,
  type Conflist,
} from "../support/harness.js";
import {
  startKubeApiserver,
  type KubeApiserver,
  type KubeClient,
  type KubeObject,
} from "../support/kube.js";
import {
  applyManifests,
  createKubePools,
  installCniFromConfigMap,
  waitForBuoyCrds,
} from "../support/buoy-install.js";
import { grantTenant } from "../support/tenant.js";

const NODE = "node-1";
const FLOATING = "cni.projectcalico.org/floatingIPs";
const BUOY = "/apis/buoy.dev/v1";
const MERGE = { contentType: "application/merge-patch+json" };
const prefix = runPrefix();
const victimNs = `${prefix}-a`;
const tenantNs = `${prefix}-b`;
const TENANT = "tenant-b";
/** The victim's floating IPs: one from the shared pool, one from a pool only `a` may use. */
const SHARED = "10.96.0.10";
const RESTRICTED = "10.96.1.10";

let kube: KubeApiserver;
let tenant: KubeClient;
let work: string;
let conflist: Conflist;
let agent: AgentProcess;
const netnses: string[] = [];

interface Pod {
  call: { containerID: string; netns: string; pod: { namespace: string; name: string } };
  address: string;
}
interface Event {
  reason: string;
  message: string;
  type: string;
  involvedObject: { name: string };
}

beforeAll(async () => {
  kube = await startKubeApiserver({ users: [{ name: TENANT }] });
  work = mkdtempSync(join(tmpdir(), `${prefix}-hostile-`));
  applyManifests(kube, ["crds.yaml", "rbac.yaml", "calico-config.yaml"]);
  await waitForBuoyCrds(kube);
  const conflistPath = await installCniFromConfigMap(kube, work, NODE, join(CNI_DIR, "buoy"));
  conflist = JSON.parse(readFileSync(conflistPath, "utf8")) as Conflist;
  await createKubePools(kube, {
    pods: { cidr: "10.244.0.0/16" },
    floating: { cidr: "10.96.0.0/24", disabled: true },
    "floating-a": { cidr: "10.96.1.0/24", disabled: true, namespaceSelector: "team == 'a'" },
  });
  await kube.admin.json("POST", "/api/v1/nodes", { metadata: { name: NODE } });
  for (const [name, team] of [
    [victimNs, "a"],
    [tenantNs, "b"],
  ] as const) {
    await kube.admin.json("POST", "/api/v1/namespaces", { metadata: { name, labels: { team } } });
  }
  // The tenant may create and edit the pods of its own namespace, and nothing else.
  tenant = await grantTenant(kube, {
    user: TENANT,
    namespace: tenantNs,
    role: "pod-editor",
    rules: [
      {
        apiGroups: [""],
        resources: ["pods"],
        verbs: ["get", "list", "watch", "create", "patch", "update", "delete"],
      },
    ],
  });
  const token = await kube.serviceAccountToken("kube-system", "buoy-node");
  const kubeconfig = kube.writeKubeconfig(join(work, "buoy-node.kubeconfig"), { token });
  agent = await startAgent({ env: { DATASTORE_TYPE: "kubernetes", KUBECONFIG: kubeconfig } }, [
    "--node",
    NODE,
    "--cni-conf",
    conflistPath,
    "--resync",
    "1",
    "--status-ttl",
    "5",
    "--claim-gc-grace",
    "1",
  ]);
}, 180_000);

afterAll(async () => {
  await agent?.stop();
  for (const ns of netnses) deleteNetns(ns);
  sh(["nft", "delete", "table", "ip", "buoy"]);
  sh(["nft", "delete", "table", "ip6", "buoy"]);
  await kube?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** floating IP -> pod address, as the kernel translates now. */
const translations = (): Map<string, string> => readNftMap("fip_dnat");

const until = (what: string, check: () => boolean | Promise<boolean>, ms = 10_000) =>
  waitFor(what, check, ms, () => `agent log:\n${agent.log.slice(-30).join("\n")}`);

function sandbox(namespace: string, name: string): Pod["call"] {
  const netns = `${prefix}-${name}`;
  netnses.push(netns);
  return {
    containerID: `${name}-${Math.random().toString(16).slice(2, 10)}`,
    netns: addNetns(netns),
    pod: { namespace, name },
  };
}

function podBody(name: string, annotation?: string) {
  return {
    metadata: {
      name,
      ...(annotation === undefined ? {} : { annotations: { [FLOATING]: annotation } }),
    },
    spec: { nodeName: NODE, containers: [{ name: "c", image: "busybox" }] },
  };
}

async function startPod(client: KubeClient, namespace: string, name: string, annotation?: string) {
  await client.json("POST", `/api/v1/namespaces/${namespace}/pods`, podBody(name, annotation));
  const call = sandbox(namespace, name);
  const added = await execConflist(conflist, "ADD", call);
  expect(added.exitCode, added.raw).toBe(0);
  const address = String((added.output.ips as { address: string }[])[0]?.address).split("/")[0];
  return { call, address: address ?? "" };
}

/** The tenant's own `kubectl annotate --overwrite` of its pod. */
async function annotate(name: string, value: string) {
  const response = await tenant.request(
    "PATCH",
    `/api/v1/namespaces/${tenantNs}/pods/${name}`,
    { metadata: { annotations: { [FLOATING]: value } } },
    MERGE,
  );
  expect(response.status, response.text).toBe(200);
}

async function events(namespace: string): Promise<Event[]> {
  return (
    await kube.admin.json<{ items: Event[] }>("GET", `/api/v1/namespaces/${namespace}/events`)
  ).items;
}

async function refusals(pod: string): Promise<string[]> {
  return (await events(tenantNs))
    .filter((event) => event.involvedObject.name === pod && event.reason === "FloatingIPRefused")
    .map((event) => event.message);
}

/** Waits for a refusal Event on the tenant's pod that `match` accepts; resolves to its text. */
async function refusedWith(pod: string, match: (message: string) => boolean): Promise<string> {
  let found = "";
  await until(`a FloatingIPRefused Event on ${pod}`, async () => {
    found = (await refusals(pod)).find(match) ?? "";
    return found !== "";
  });
  return found;
}

async function claims() {
  type Claim = KubeObject & { spec: Record<string, string> };
  return (await kube.admin.json<{ items: Claim[] }>("GET", `${BUOY}/floatingipclaims`)).items;
}

/** Packets received by the pod's own interfaces (not loopback). */
function received(pod: Pod): number {
  const netns = pod.call.netns.split("/").at(-1) ?? "";
  const links = JSON.parse(sh(["ip", "-n", netns, "-s", "-j", "link", "show"]).stdout || "[]") as {
    ifname: string;
    stats64?: { rx?: { packets?: number } };
  }[];
  return links
    .filter((link) => link.ifname !== "lo")
    .reduce((sum, link) => sum + (link.stats64?.rx?.packets ?? 0), 0);
}

/** `from` pings `ip` twice: whether it answered and `at` received the packets. */
function reaches(from: Pod, ip: string, at: Pod): boolean {
  const netns = from.call.netns.split("/").at(-1) ?? "";
  const before = received(at);
  const answered =
    spawnSync("ip", ["netns", "exec", netns, "ping", "-c", "2", "-W", "1", ip]).status === 0;
  return answered && received(at) >= before + 2;
}

describe("a tenant attacking another namespace's floating IPs", () => {
  let victim: Pod;
  let own: Pod;

  /** The victim keeps both floating IPs, in the kernel, in its claims, and on the wire. */
  async function expectVictimIntact() {
    const now = translations();
    expect(now.get(SHARED)).toBe(victim.address);
    expect(now.get(RESTRICTED)).toBe(victim.address);
    const held = (await claims())
      .filter((claim) => claim.spec.namespace === victimNs)
      .map((claim) => `${claim.spec.ip}=${claim.spec.pod}`)
      .sort();
    expect(held).toEqual([`${SHARED}=victim`, `${RESTRICTED}=victim`]);
    expect(reaches(own, SHARED, victim)).toBe(true);
    expect(reaches(own, RESTRICTED, victim)).toBe(true);
  }

  beforeAll(async () => {
    victim = await startPod(kube.admin, victimNs, "victim", JSON.stringify([SHARED, RESTRICTED]));
    own = await startPod(tenant, tenantNs, "tenant");
    await until("the victim's floating IPs", () => {
      const now = translations();
      return now.get(SHARED) === victim.address && now.get(RESTRICTED) === victim.address;
    });
    // A floating IP of its own, which every refused edit below must leave working.
    await annotate("tenant", '["10.96.0.30"]');
    await until(
      "the tenant's own floating IP",
      () => translations().get("10.96.0.30") === own.address,
    );
  }, 60_000);

  it("cannot reach buoy's records, other namespaces or the node's Leases with its token", async () => {
    const forbidden: [string, string, unknown?][] = [
      ["POST", `${BUOY}/floatingipclaims`, { metadata: { name: "10.96.0.10" }, spec: {} }],
      ["DELETE", `${BUOY}/floatingipclaims/${SHARED}`],
      ["POST", `${BUOY}/workloadendpoints`, { metadata: { name: "forged" }, spec: {} }],
      ["GET", `${BUOY}/workloadendpoints`],
      ["POST", `${BUOY}/ippools`, { metadata: { name: "mine" }, spec: { cidr: "10.96.0.0/24" } }],
      ["DELETE", `${BUOY}/ippools/floating-a`],
      ["POST", `${BUOY}/ipamblocks`, { metadata: { name: "forged" }, spec: {} }],
      ["PATCH", `/api/v1/namespaces/${tenantNs}`, { metadata: { labels: { team: "a" } } }],
      ["PATCH", `/api/v1/namespaces/${victimNs}/pods/victim`, { metadata: { labels: {} } }],
      ["DELETE", `/api/v1/namespaces/${victimNs}/pods/victim`],
      ["PATCH", `/api/v1/namespaces/${tenantNs}/pods/tenant/status`, { metadata: {} }],
      ...["kube-system", "buoy-system"].map((namespace): [string, string, unknown] => [
        "POST",
        `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`,
        { metadata: { name: NODE } },
      ]),
      [
        "PUT",
        `/apis/coordination.k8s.io/v1/namespaces/buoy-system/leases/${NODE}`,
        { metadata: { name: NODE } },
      ],
      ["POST", `/api/v1/namespaces/${victimNs}/events`, { metadata: { name: "forged" } }],
    ];
    for (const [method, path, body] of forbidden) {
      const response = await tenant.request(method, path, body, MERGE);
      expect(`${method} ${path}: ${response.status}`).toBe(`${method} ${path}: 403`);
    }
    await expectVictimIntact();
  });

  it("asking for the victim's floating IP is refused without naming the victim", async () => {
    await annotate("tenant", JSON.stringify(["10.96.0.30", SHARED]));
    const message = await refusedWith("tenant", (text) => text.includes(SHARED));
    expect(message).toBe(`floating IP ${SHARED} is already held by a pod in another namespace`);
    await expectVictimIntact();
    expect(translations().get("10.96.0.30")).toBe(own.address);
  });

  it("asking for the victim pod's own address is refused without naming the victim", async () => {
    await annotate("tenant", JSON.stringify([victim.address]));
    const message = await refusedWith("tenant", (text) => text.includes(`${victim.address} `));
    expect(message).toBe(
      `floating IP ${victim.address} is the address of a pod in another namespace`,
    );
    await expectVictimIntact();
  });

  it("a floating IP from a pool its namespace may not use is refused", async () => {
    await annotate("tenant", '["10.96.1.20"]');
    const message = await refusedWith("tenant", (text) => text.includes("10.96.1.20"));
    expect(message).toBe(
      `floating IP 10.96.1.20 is in pool floating-a, which namespace ${tenantNs} may not use`,
    );
    expect(translations().has("10.96.1.20")).toBe(false);
    expect((await claims()).some((claim) => claim.spec.ip === "10.96.1.20")).toBe(false);
    await expectVictimIntact();
  });

  it("addresses that are never floating IPs are refused, none reaches the kernel", async () => {
    for (const entry of ["127.0.0.1", "0.0.0.0", "224.0.0.1", "169.254.1.1", "::ffff:10.96.0.40"]) {
      await annotate("tenant", JSON.stringify([entry]));
      await refusedWith("tenant", (text) => text.startsWith(`invalid floating IP '${entry}': `));
    }
    const table = sh(["nft", "list", "ruleset"]).stdout;
    for (const address of ["127.0.0.1", "224.0.0.1", "169.254.1.1"]) {
      expect(table).not.toContain(address);
    }
    await expectVictimIntact();
  });

  it("more floating IPs than the bound, and a value over 4 KiB, are refused, echoed short", async () => {
    const many = Array.from({ length: 17 }, (_, i) => `10.96.0.${100 + i}`);
    await annotate("tenant", JSON.stringify(many));
    await refusedWith("tenant", (text) => text === "pod asks for 17 floating IPs; at most 16");
    const huge = JSON.stringify([SHARED, "x".repeat(5000)]);
    await annotate("tenant", huge);
    const message = await refusedWith("tenant", (text) => text.includes("bytes; at most 4096"));
    expect(message.length).toBeLessThan(300);
    for (const text of await refusals("tenant")) expect(text.length).toBeLessThan(300);
    expect([...translations().keys()].some((ip) => many.includes(ip))).toBe(false);
    await expectVictimIntact();
  });

  it("a pod created asking for the victim's floating IP fails its ADD and leaves nothing", async () => {
    const interfaces = hostInterfaces();
    const before = (await claims()).map((claim) => claim.metadata?.name).sort();
    await tenant.json(
      "POST",
      `/api/v1/namespaces/${tenantNs}/pods`,
      podBody("thief", JSON.stringify([SHARED])),
    );
    const call = sandbox(tenantNs, "thief");
    const added = await execConflist(conflist, "ADD", call);
    expect(added.exitCode).not.toBe(0);
    expect(added.raw).toContain(
      `floating IP ${SHARED} is already held by a pod in another namespace`,
    );
    expect(added.raw).not.toContain("victim");
    expect(added.raw).not.toContain(victimNs);
    expect(hostInterfaces()).toEqual(interfaces);
    expect((await claims()).map((claim) => claim.metadata?.name).sort()).toEqual(before);
    type Endpoint = KubeObject & { spec: { containerID?: string } };
    const endpoints = await kube.admin.json<{ items: Endpoint[] }>(
      "GET",
      `${BUOY}/workloadendpoints`,
    );
    expect(endpoints.items.some((e) => JSON.stringify(e).includes(call.containerID))).toBe(false);
    const blocks = await kube.admin.json<{ items: KubeObject[] }>("GET", `${BUOY}/ipamblocks`);
    expect(JSON.stringify(blocks.items)).not.toContain(call.containerID);
    await expectVictimIntact();
  });

  it("a burst of edits, good and bad, never moves the victim's floating IPs", async () => {
    const values = [
      JSON.stringify([SHARED]),
      '["10.96.0.31"]',
      JSON.stringify([RESTRICTED]),
      "not json",
      JSON.stringify([victim.address]),
      '["10.96.0.32"]',
    ];
    const sampled: string[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const now = translations();
        sampled.push(`${now.get(SHARED)}|${now.get(RESTRICTED)}`);
        await sleep(20);
      }
    })();
    for (let i = 0; i < 40; i++) await annotate("tenant", values[i % values.length] ?? "[]");
    await annotate("tenant", '["10.96.0.33"]');
    await until("the tenant's last edit", () => translations().get("10.96.0.33") === own.address);
    sampling = false;
    await sampler;
    expect(sampled.length).toBeGreaterThan(0);
    expect(new Set(sampled)).toEqual(new Set([`${victim.address}|${victim.address}`]));
    await expectVictimIntact();
  });

  it("no Event or agent log line the tenant's pod caused names the victim", async () => {
    const texts = (await events(tenantNs)).map((event) => event.message).join("\n");
    expect(texts).not.toContain("victim");
    expect(texts).not.toContain(victimNs);
    expect(await events(victimNs)).toSatisfy((list: Event[]) =>
      list.every((event) => event.type !== "Warning"),
    );
    const refusedLines = agent.log.filter(
      (line) => line.includes('"agent.refused"') && line.includes(tenantNs),
    );
    expect(refusedLines.length).toBeGreaterThan(0);
    for (const line of refusedLines) {
      expect(line).not.toContain(victimNs);
      expect(line).not.toContain('"victim"');
    }
  });
});
