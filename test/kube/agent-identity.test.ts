// Issue 13's attack, against a real kube-apiserver v1.20.2 and the real
// kernel of this run's namespace: a tenant whose own static token may only
// edit pods in its namespace forges Calico's annotations on its pod (the
// address of another namespace's pod, loopback, that pod's container ID) and
// asks for a floating IP. The agent takes a pod's addresses and sandbox from
// the endpoint objects the plugin recorded with the node's credentials
// (ADR 0008): the binding goes to the tenant's own address, the forgery gets
// a Warning Event, and the other namespace's floating IP, claim and traffic
// are untouched.
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
  runPrefix,
  sh,
  sleep,
  startAgent,
  type AgentProcess,
  type Conflist,
  readNftMap,
  waitFor,
} from "../support/harness.js";
import {
  startKubeApiserver,
  type KubeApiserver,
  type KubeClient,
  type KubeObject,
} from "../support/kube.js";
import {
  applyManifests,
  installCniFromConfigMap,
  waitForBuoyCrds,
  createKubePools,
} from "../support/buoy-install.js";
import { grantTenant } from "../support/tenant.js";

const NODE = "node-1";
const FLOATING = "cni.projectcalico.org/floatingIPs";
const POD_IP = "cni.projectcalico.org/podIP";
const POD_IPS = "cni.projectcalico.org/podIPs";
const CONTAINER_ID = "cni.projectcalico.org/containerID";
const BUOY = "/apis/buoy.dev/v1";
const prefix = runPrefix();
const victimNs = `${prefix}-a`;
const tenantNs = `${prefix}-b`;
const TENANT = "tenant-b";

let kube: KubeApiserver;
let tenant: KubeClient;
let work: string;
let conflist: Conflist;
let agent: AgentProcess;
const netnses: string[] = [];

type Claim = KubeObject & { spec: Record<string, string> };
interface Pod {
  call: { containerID: string; netns: string; pod: { namespace: string; name: string } };
  address: string;
}

beforeAll(async () => {
  kube = await startKubeApiserver({ users: [{ name: TENANT }] });
  work = mkdtempSync(join(tmpdir(), `${prefix}-identity-`));
  applyManifests(kube, ["crds.yaml", "rbac.yaml", "calico-config.yaml"]);
  await waitForBuoyCrds(kube);
  const conflistPath = await installCniFromConfigMap(kube, work, NODE, join(CNI_DIR, "buoy"));
  conflist = JSON.parse(readFileSync(conflistPath, "utf8")) as Conflist;
  await createKubePools(kube, {
    pods: { cidr: "10.244.0.0/16" },
    floating: { cidr: "10.96.0.0/24", disabled: true },
  });
  await kube.admin.json("POST", "/api/v1/nodes", { metadata: { name: NODE } });
  for (const name of [victimNs, tenantNs]) {
    await kube.admin.json("POST", "/api/v1/namespaces", { metadata: { name } });
  }
  // The tenant may edit the pods of its own namespace, and nothing else.
  tenant = await grantTenant(kube, {
    user: TENANT,
    namespace: tenantNs,
    role: "pod-editor",
    rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "patch", "update"] }],
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
    "--log-level",
    "debug",
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

async function addPod(namespace: string, name: string, annotation?: string): Promise<Pod> {
  await kube.admin.json("POST", `/api/v1/namespaces/${namespace}/pods`, {
    metadata: {
      name,
      ...(annotation === undefined ? {} : { annotations: { [FLOATING]: annotation } }),
    },
    spec: { nodeName: NODE, containers: [{ name: "c", image: "busybox" }] },
  });
  const netns = `${prefix}-${name}`;
  netnses.push(netns);
  const call = {
    containerID: `${name}-${Math.random().toString(16).slice(2, 10)}`,
    netns: addNetns(netns),
    pod: { namespace, name },
  };
  const added = await execConflist(conflist, "ADD", call);
  expect(added.exitCode, added.raw).toBe(0);
  const address = String((added.output.ips as { address: string }[])[0]?.address).split("/")[0];
  return { call, address: address ?? "" };
}

/** The tenant's own edit of its pod, with its own token. */
async function forge(name: string, annotations: Record<string, string>) {
  await tenant.json(
    "PATCH",
    `/api/v1/namespaces/${tenantNs}/pods/${name}`,
    { metadata: { annotations } },
    "application/merge-patch+json",
  );
}

async function claims(): Promise<Claim[]> {
  return (await kube.admin.json<{ items: Claim[] }>("GET", `${BUOY}/floatingipclaims`)).items;
}

async function warnings(namespace: string, pod: string) {
  const list = await kube.admin.json<{
    items: {
      reason: string;
      message: string;
      type: string;
      count?: number;
      involvedObject: { name: string };
    }[];
  }>("GET", `/api/v1/namespaces/${namespace}/events`);
  return list.items.filter(
    (event) => event.involvedObject.name === pod && event.type === "Warning",
  );
}

/** Packets received by the pod's own interfaces (not loopback). */
function received(pod: Pod): number {
  const netns = pod.call.netns.split("/").at(-1) ?? "";
  const listing = sh(["ip", "-n", netns, "-s", "-j", "link", "show"]);
  const links = JSON.parse(listing.stdout || "[]") as {
    ifname: string;
    stats64?: { rx?: { packets?: number } };
  }[];
  return links
    .filter((link) => link.ifname !== "lo")
    .reduce((sum, link) => sum + (link.stats64?.rx?.packets ?? 0), 0);
}

/** `from` pings `ip` once; resolves whether it answered and whether `at` got the packets. */
function reaches(from: Pod, ip: string, at: Pod): boolean {
  const netns = from.call.netns.split("/").at(-1) ?? "";
  const before = received(at);
  const answered =
    spawnSync("ip", ["netns", "exec", netns, "ping", "-c", "2", "-W", "1", ip]).status === 0;
  return answered && received(at) >= before + 2;
}

describe("a tenant forging Calico's annotations on its own pod", () => {
  let victim: Pod;
  let own: Pod;

  beforeAll(async () => {
    victim = await addPod(victimNs, "victim", '["10.96.0.10"]');
    own = await addPod(tenantNs, "tenant");
    await until(
      "the victim's floating IP",
      () => translations().get("10.96.0.10") === victim.address,
    );
    expect(own.address).not.toBe(victim.address);
  }, 60_000);

  it("has a token that may edit its own pods only: not the victim's, not buoy's objects", async () => {
    const path = `/api/v1/namespaces/${victimNs}/pods/victim`;
    const patch = { metadata: { annotations: { [FLOATING]: "[]" } } };
    expect(
      (await tenant.request("PATCH", path, patch, { contentType: "application/merge-patch+json" }))
        .status,
    ).toBe(403);
    expect((await tenant.request("GET", `${BUOY}/workloadendpoints`)).status).toBe(403);
    expect((await tenant.request("DELETE", `${BUOY}/floatingipclaims/10.96.0.10`)).status).toBe(
      403,
    );
    expect((await tenant.request("GET", `/api/v1/namespaces/${tenantNs}/pods/tenant`)).status).toBe(
      200,
    );
  });

  it("podIP and podIPs set to the victim's address: the floating IP goes to the tenant's own address", async () => {
    await forge("tenant", {
      [POD_IP]: `${victim.address}/32`,
      [POD_IPS]: `${victim.address}/32`,
      [FLOATING]: '["10.96.0.20"]',
    });
    await until("10.96.0.20 translated", () => translations().has("10.96.0.20"));
    expect(translations().get("10.96.0.20")).toBe(own.address);
    const claim = (await claims()).find((c) => c.spec.ip === "10.96.0.20");
    expect(claim?.spec).toMatchObject({
      namespace: tenantNs,
      pod: "tenant",
      internalIP: own.address,
    });
    await until("the Warning Event on the tenant's pod", async () =>
      (await warnings(tenantNs, "tenant")).some(
        (event) =>
          event.reason === "PodAnnotationIgnored" &&
          event.message.includes(`${POD_IPS} '${victim.address}/32'`),
      ),
    );
    expect(translations().get("10.96.0.10")).toBe(victim.address);
    // Traffic: the victim's floating IP still reaches the victim, the
    // tenant's reaches the tenant.
    expect(reaches(own, "10.96.0.10", victim)).toBe(true);
    expect(reaches(victim, "10.96.0.20", own)).toBe(true);
    expect(await warnings(victimNs, "victim")).toEqual([]);
  });

  it("a forged value is reported once, not at every pass", async () => {
    await sleep(2500); // passes of the live-edit controller, resyncs
    const reported = (await warnings(tenantNs, "tenant")).filter((event) =>
      event.message.includes(`${POD_IPS} '${victim.address}/32'`),
    );
    expect(reported.map((event) => event.count ?? 1)).toEqual([1]);
  });

  it("podIP and podIPs set to loopback: no NAT to 127.0.0.1, the tenant's own address", async () => {
    await forge("tenant", {
      [POD_IP]: "127.0.0.1/32",
      [POD_IPS]: "127.0.0.1/32",
      [FLOATING]: '["10.96.0.20", "10.96.0.21"]',
    });
    await until("10.96.0.21 translated", () => translations().has("10.96.0.21"));
    const now = translations();
    expect(now.get("10.96.0.21")).toBe(own.address);
    expect(now.get("10.96.0.20")).toBe(own.address);
    expect([...now.values()]).not.toContain("127.0.0.1");
    expect([...now.values()].filter((address) => address === victim.address)).toHaveLength(1);
    await until("the Warning Event naming loopback", async () =>
      (await warnings(tenantNs, "tenant")).some(
        (event) =>
          event.reason === "PodAnnotationIgnored" && event.message.includes("'127.0.0.1/32'"),
      ),
    );
    expect(sh(["nft", "list", "table", "ip", "buoy"]).stdout).not.toContain("127.0.0.1");
  });

  it("containerID set to the victim's sandbox: neither the agent nor the collector releases the victim's claim", async () => {
    await forge("tenant", {
      [CONTAINER_ID]: victim.call.containerID,
      [FLOATING]: "[]",
    });
    await until("the tenant's floating IPs released", () => {
      const now = translations();
      return !now.has("10.96.0.20") && !now.has("10.96.0.21");
    });
    await until("the Warning Event naming the forged container", async () =>
      (await warnings(tenantNs, "tenant")).some(
        (event) =>
          event.reason === "PodAnnotationIgnored" &&
          event.message.includes(`${CONTAINER_ID} '${victim.call.containerID}'`),
      ),
    );
    await sleep(3000); // beyond --claim-gc-grace, several collector runs
    const held = (await claims()).map((claim) => `${claim.spec.ip}=${claim.spec.containerID}`);
    expect(held).toEqual([`10.96.0.10=${victim.call.containerID}`]);
    expect(translations().get("10.96.0.10")).toBe(victim.address);
    expect(translations().size).toBe(1);
    expect(reaches(own, "10.96.0.10", victim)).toBe(true);
    expect(agent.log.join("\n")).not.toMatch(/"agent.gc".*"released":"10.96.0.10"/);
  });

  it("with the annotations back as the plugin wrote them, the tenant's pod works as before", async () => {
    await forge("tenant", {
      [POD_IP]: `${own.address}/32`,
      [POD_IPS]: `${own.address}/32`,
      [CONTAINER_ID]: own.call.containerID,
      [FLOATING]: '["10.96.0.22"]',
    });
    await until("10.96.0.22 translated", () => translations().get("10.96.0.22") === own.address);
    expect(translations().get("10.96.0.10")).toBe(victim.address);
  });
});
