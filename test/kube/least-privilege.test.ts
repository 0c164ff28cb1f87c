// Issue 13 item 5 against a real kube-apiserver v1.20.2, with the manifests'
// RBAC and the tokens each party really holds: the plugin's (from the
// kubeconfig install-cni wrote), the agent's (buoy-node), and a tenant's
// static token that may edit pods, and write Leases, in its own namespace
// only. The plugin changes pods only through pods/status; the nodes' status
// Leases live in buoy-system, where only buoy-node writes, and a Lease a
// tenant writes elsewhere is never read; an Event names no pod of another
// namespace.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseKubeconfig } from "../../src/kube/kubeconfig.js";
import {
  addNetns,
  CNI_DIR,
  deleteNetns,
  execConflist,
  readNftMap,
  runPrefix,
  sh,
  startAgent,
  waitFor,
  type AgentProcess,
  type Conflist,
} from "../support/harness.js";
import { startKubeApiserver, type KubeApiserver, type KubeClient } from "../support/kube.js";
import {
  applyManifests,
  createKubePools,
  installCniFromConfigMap,
  waitForBuoyCrds,
} from "../support/buoy-install.js";
import { grantTenant } from "../support/tenant.js";

const NODE = "node-1";
const FLOATING = "cni.projectcalico.org/floatingIPs";
const LEASES = (namespace: string) => `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`;
const prefix = runPrefix();
const victimNs = `${prefix}-a`;
const tenantNs = `${prefix}-b`;
const TENANT = "tenant-b";
const MERGE = { contentType: "application/merge-patch+json" };

let kube: KubeApiserver;
let tenant: KubeClient;
let plugin: KubeClient;
let node: KubeClient;
let work: string;
let conflist: Conflist;
let agent: AgentProcess;
const netnses: string[] = [];

beforeAll(async () => {
  kube = await startKubeApiserver({ users: [{ name: TENANT }] });
  work = mkdtempSync(join(tmpdir(), `${prefix}-privilege-`));
  applyManifests(kube, ["crds.yaml", "rbac.yaml", "calico-config.yaml"]);
  await waitForBuoyCrds(kube);
  const conflistPath = await installCniFromConfigMap(kube, work, NODE, join(CNI_DIR, "buoy"));
  conflist = JSON.parse(readFileSync(conflistPath, "utf8")) as Conflist;
  const pluginConfig = join(work, "net.d", "calico-kubeconfig");
  const pluginToken = parseKubeconfig(readFileSync(pluginConfig, "utf8"), pluginConfig, (path) =>
    readFileSync(path, "utf8"),
  ).token;
  plugin = kube.client({ token: pluginToken ?? "" });
  await createKubePools(kube, {
    pods: { cidr: "10.244.0.0/16" },
    floating: { cidr: "10.96.0.0/24", disabled: true },
  });
  await kube.admin.json("POST", "/api/v1/nodes", { metadata: { name: NODE } });
  for (const name of [victimNs, tenantNs]) {
    await kube.admin.json("POST", "/api/v1/namespaces", { metadata: { name } });
  }
  // The tenant may edit its pods and write Leases in its own namespace (so a
  // refusal below is about where, not about Leases), and nothing else.
  tenant = await grantTenant(kube, {
    user: TENANT,
    namespace: tenantNs,
    role: "tenant",
    rules: [
      { apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "patch", "update"] },
      {
        apiGroups: ["coordination.k8s.io"],
        resources: ["leases"],
        verbs: ["get", "list", "create", "update", "patch"],
      },
    ],
  });
  const token = await kube.serviceAccountToken("kube-system", "buoy-node");
  node = kube.client({ token });
  const kubeconfig = kube.writeKubeconfig(join(work, "buoy-node.kubeconfig"), { token });
  // No --lease-namespace: the default, buoy-system.
  agent = await startAgent({ env: { DATASTORE_TYPE: "kubernetes", KUBECONFIG: kubeconfig } }, [
    ...["--node", NODE, "--cni-conf", conflistPath, "--resync", "1", "--status-ttl", "5"],
    ...["--log-level", "debug"],
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

const until = (what: string, check: () => boolean | Promise<boolean>, ms = 10_000) =>
  waitFor(what, check, ms, () => `agent log:\n${agent.log.slice(-30).join("\n")}`);

const translations = (): Map<string, string> => readNftMap("fip_dnat");

async function createPod(namespace: string, name: string, annotation?: string): Promise<void> {
  await kube.admin.json("POST", `/api/v1/namespaces/${namespace}/pods`, {
    metadata: {
      name,
      ...(annotation === undefined ? {} : { annotations: { [FLOATING]: annotation } }),
    },
    spec: { nodeName: NODE, containers: [{ name: "c", image: "busybox" }] },
  });
}

function sandbox(namespace: string, name: string) {
  const netns = `${prefix}-${name}`;
  netnses.push(netns);
  return {
    containerID: `${name}-${Math.random().toString(16).slice(2, 10)}`,
    netns: addNetns(netns),
    pod: { namespace, name },
  };
}

/** A pod created and set up by the plugin (ADD must succeed): its address. */
async function addPod(namespace: string, name: string, annotation?: string): Promise<string> {
  await createPod(namespace, name, annotation);
  const added = await execConflist(conflist, "ADD", sandbox(namespace, name));
  expect(added.exitCode, added.raw + added.stderr).toBe(0);
  return String((added.output.ips as { address: string }[])[0]?.address).split("/")[0] ?? "";
}

/** A status Lease as an agent writes it: `node` translates `ip`. */
function statusLease(node: string, ip: string) {
  return {
    metadata: {
      name: `buoy-node.${node}`,
      labels: { "buoy.dev/floating-ip-status": "true" },
      annotations: {
        "buoy.dev/programmed": JSON.stringify([
          {
            ip,
            node,
            internalIP: "10.244.200.9",
            programmedSince: new Date().toISOString(),
            announced: "direct",
          },
        ]),
      },
    },
    spec: {
      holderIdentity: node,
      leaseDurationSeconds: 3600,
      renewTime: new Date().toISOString().replace(/\.(\d{3})Z$/, ".$1000Z"),
    },
  };
}

async function events(namespace: string) {
  const list = await kube.admin.json<{
    items: { reason: string; message: string; type: string; involvedObject: { name: string } }[];
  }>("GET", `/api/v1/namespaces/${namespace}/events`);
  return list.items;
}

describe("the plugin's token", () => {
  it("writes a pod's annotations through pods/status, which keep, and may not patch the pod itself", async () => {
    await createPod(tenantNs, "status-only");
    const path = `/api/v1/namespaces/${tenantNs}/pods/status-only`;
    const patch = { metadata: { annotations: { "cni.projectcalico.org/podIP": "10.244.9.9/32" } } };
    expect((await plugin.request("PATCH", path, patch, MERGE)).status).toBe(403);
    const viaStatus = await plugin.request("PATCH", `${path}/status`, patch, MERGE);
    expect(viaStatus.status, viaStatus.text).toBe(200);
    const pod = await kube.admin.json<{
      metadata: { annotations?: Record<string, string> };
      spec: { activeDeadlineSeconds?: number };
    }>("GET", path);
    expect(pod.metadata.annotations).toEqual({ "cni.projectcalico.org/podIP": "10.244.9.9/32" });
    // The status subresource leaves the spec alone, whatever the patch says.
    const specPatch = { spec: { activeDeadlineSeconds: 5 } };
    expect((await plugin.request("PATCH", `${path}/status`, specPatch, MERGE)).status).toBe(200);
    expect((await kube.admin.json<typeof pod>("GET", path)).spec.activeDeadlineSeconds).toBe(
      undefined,
    );
  });

  it("may write no Lease, and no claim's status", async () => {
    for (const namespace of ["buoy-system", "kube-system", tenantNs]) {
      const created = await plugin.request(
        "POST",
        LEASES(namespace),
        statusLease("node-9", "10.96.0.99"),
      );
      expect(created.status, namespace).toBe(403);
    }
    const status = await plugin.request(
      "PATCH",
      "/apis/buoy.dev/v1/floatingipclaims/10-96-0-99/status",
      { status: {} },
      MERGE,
    );
    expect(status.status).toBe(403);
  });
});

describe("the nodes' status Leases", () => {
  it("are in buoy-system: the agent renews its own there, and no longer may in kube-system", async () => {
    await until("node-1's Lease in buoy-system", async () => {
      const lease = await kube.admin.request<{ spec?: { holderIdentity?: string } }>(
        "GET",
        `${LEASES("buoy-system")}/buoy-node.${NODE}`,
      );
      return lease.status === 200 && lease.body.spec?.holderIdentity === NODE;
    });
    const inKubeSystem = await node.request(
      "POST",
      LEASES("kube-system"),
      statusLease("x", "10.96.0.98"),
    );
    expect(inKubeSystem.status).toBe(403);
  });

  it("cannot be written by a tenant: create and update in buoy-system are forbidden", async () => {
    const created = await tenant.request(
      "POST",
      LEASES("buoy-system"),
      statusLease("node-2", "10.96.0.30"),
    );
    expect(created.status).toBe(403);
    const own = await kube.admin.json<{ metadata: { resourceVersion: string } }>(
      "GET",
      `${LEASES("buoy-system")}/buoy-node.${NODE}`,
    );
    const forged = statusLease(NODE, "10.96.0.30");
    const updated = await tenant.request("PUT", `${LEASES("buoy-system")}/buoy-node.${NODE}`, {
      ...forged,
      metadata: { ...forged.metadata, resourceVersion: own.metadata.resourceVersion },
    });
    expect(updated.status).toBe(403);
    const patched = await tenant.request(
      "PATCH",
      `${LEASES("buoy-system")}/buoy-node.${NODE}`,
      { metadata: { annotations: forged.metadata.annotations } },
      MERGE,
    );
    expect(patched.status).toBe(403);
    // Its own namespace it may write: the place is what stops it.
    const mine = await tenant.request(
      "POST",
      LEASES(tenantNs),
      statusLease("node-2", "10.96.0.30"),
    );
    expect(mine.status, mine.text).toBe(201);
  });

  it("a Lease a tenant writes in its namespace holds up nothing; one in buoy-system does", async () => {
    // The tenant's Lease (above) says node-2 still translates 10.96.0.30:
    // were it read, the agent would wait for node-2 to withdraw it. The
    // same claim for 10.96.0.31 in buoy-system is the control.
    await kube.admin.json("POST", LEASES("buoy-system"), statusLease("node-2", "10.96.0.31"));
    const free = await addPod(tenantNs, "free", '["10.96.0.30"]');
    const held = await addPod(tenantNs, "held", '["10.96.0.31"]');
    await until("10.96.0.30 translated", () => translations().get("10.96.0.30") === free);
    await until("the agent waiting for node-2 on 10.96.0.31", () =>
      agent.log.some(
        (line) =>
          line.includes('"agent.waiting"') &&
          line.includes('"10.96.0.31"') &&
          line.includes('"node":"node-2"'),
      ),
    );
    expect(translations().has("10.96.0.31")).toBe(false);
    expect(
      agent.log.some((line) => line.includes('"agent.waiting"') && line.includes("10.96.0.30")),
    ).toBe(false);
    // node-2 withdraws (its Lease goes): the control is programmed too.
    await kube.admin.json("DELETE", `${LEASES("buoy-system")}/buoy-node.node-2`);
    await until("10.96.0.31 translated", () => translations().get("10.96.0.31") === held);
  });
});

describe("Events", () => {
  let victimAddress: string;

  beforeAll(async () => {
    victimAddress = await addPod(victimNs, "victim", '["10.96.0.10"]');
  }, 30_000);

  it("an ADD refused for another namespace's floating IP: the Event and the error name no pod", async () => {
    await createPod(tenantNs, "thief", '["10.96.0.10"]');
    const refused = await execConflist(conflist, "ADD", sandbox(tenantNs, "thief"));
    expect(refused.exitCode).toBe(1);
    const words = "floating IP 10.96.0.10 is already held by a pod in another namespace";
    expect(refused.output).toMatchObject({ msg: words });
    const onThief = (await events(tenantNs)).filter((e) => e.involvedObject.name === "thief");
    expect(onThief.map((e) => [e.reason, e.message])).toEqual([["FloatingIPRefused", words]]);
  });

  it("a live edit asking for another namespace's floating IP or pod address: Events name no pod", async () => {
    await addPod(tenantNs, "editor");
    const path = `/api/v1/namespaces/${tenantNs}/pods/editor`;
    const ask = (value: string) =>
      tenant.json(
        "PATCH",
        path,
        { metadata: { annotations: { [FLOATING]: value } } },
        MERGE.contentType,
      );
    const refusals = async () =>
      (await events(tenantNs))
        .filter((e) => e.involvedObject.name === "editor" && e.reason === "FloatingIPRefused")
        .map((e) => e.message);
    await ask('["10.96.0.10"]');
    await until("the refusal of 10.96.0.10", async () =>
      (await refusals()).includes(
        "floating IP 10.96.0.10 is already held by a pod in another namespace",
      ),
    );
    // The victim's own address as a floating IP (the pod pool is not disabled).
    await ask(JSON.stringify([victimAddress]));
    await until(`the refusal of ${victimAddress}`, async () =>
      (await refusals()).includes(
        `floating IP ${victimAddress} is the address of a pod in another namespace`,
      ),
    );
    for (const event of await events(tenantNs)) {
      expect(event.message).not.toContain(victimNs);
      expect(event.message).not.toContain("victim");
    }
    expect(translations().get("10.96.0.10")).toBe(victimAddress);
  });
});
