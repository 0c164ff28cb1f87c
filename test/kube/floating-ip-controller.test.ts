// Issue 15 against a real kube-apiserver v1.20.2: `buoy controller` (its own
// ServiceAccount and the manifests' RBAC) gives each FloatingIP to one Ready
// pod it selects, and moves it when the holder is deleted, turns NotReady or
// its node's status Lease lapses. node-1's real agent programs the moves in
// this namespace's nftables; node-2 is a Lease and endpoint objects only, so
// a move to or from it is checked on the claim. Tenants attack with their own
// tokens, as namespaced users: what they may not have, they do not get, and
// the victim keeps its address.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { endpointObjectName, ipObjectName } from "../../src/kube/names.js";
import { endpointToObject } from "../../src/kube/objects.js";
import {
  addNetns,
  CNI_DIR,
  deleteNetns,
  execConflist,
  readNftMap,
  ROOT,
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
  kubectl,
  installCniFromConfigMap,
  waitForBuoyCrds,
} from "../support/buoy-install.js";
import { grantTenant } from "../support/tenant.js";

const prefix = runPrefix();
const NODE = "node-1";
const WEB = `${prefix}-web`;
const OTHER = `${prefix}-other`;
const FIPS = (namespace: string) => `/apis/buoy.dev/v1/namespaces/${namespace}/floatingips`;
const CLAIMS = "/apis/buoy.dev/v1/floatingipclaims";
const LEASES = "/apis/coordination.k8s.io/v1/namespaces/buoy-system/leases";
const MERGE = "application/merge-patch+json";

let kube: KubeApiserver;
let tenant: KubeClient;
let other: KubeClient;
let work: string;
let conflist: Conflist;
let agent: AgentProcess;
let controller: { child: ChildProcess; log: string[] };
let standby: { child: ChildProcess; log: string[] } | undefined;
let controllerKubeconfig: string;
let renewNode2: NodeJS.Timeout | undefined;
const netnses: string[] = [];
/** Pod name -> its address, for the pods node-1's plugin set up. */
const addresses = new Map<string, string>();
/** Pod name -> the sandbox node-1's plugin set up for it. */
const sandboxes = new Map<
  string,
  { containerID: string; netns: string; pod: { namespace: string; name: string } }
>();

interface FloatingIpObject {
  metadata: { name: string; uid: string; generation: number };
  status?: {
    address?: string;
    holder?: { pod: string; node: string };
    ready?: boolean;
    conditions?: { type: string; status: string; reason: string; message: string }[];
  };
}
interface ClaimObject {
  metadata: { uid: string; generation?: number; labels?: Record<string, string> };
  status?: { programmed?: boolean; observedGeneration?: number };
  spec: { pod: string; node: string; namespace: string; containerID: string; floatingIP?: string };
}

beforeAll(async () => {
  kube = await startKubeApiserver({ users: [{ name: "tenant-web" }, { name: "tenant-other" }] });
  work = mkdtempSync(join(tmpdir(), `${prefix}-fipctl-`));
  applyManifests(kube, ["crds.yaml", "rbac.yaml", "calico-config.yaml", "controller.yaml"]);
  await waitForBuoyCrds(kube);
  const conflistPath = await installCniFromConfigMap(kube, work, NODE, join(CNI_DIR, "buoy"));
  conflist = JSON.parse(readFileSync(conflistPath, "utf8")) as Conflist;
  await createKubePools(kube, {
    pods: { cidr: "10.244.0.0/16" },
    floating: { cidr: "10.96.0.0/24", disabled: true },
    reserved: { cidr: "10.97.0.0/24", disabled: true, namespaceSelector: "team == 'core'" },
  });
  for (const name of [NODE, "node-2"]) {
    await kube.admin.json("POST", "/api/v1/nodes", { metadata: { name } });
  }
  for (const name of [WEB, OTHER]) {
    await kube.admin.json("POST", "/api/v1/namespaces", { metadata: { name } });
  }
  const rules = [
    { apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "create", "patch", "update"] },
    {
      apiGroups: ["buoy.dev"],
      resources: ["floatingips"],
      verbs: ["create", "delete", "get", "list", "patch", "update", "watch"],
    },
  ];
  tenant = await grantTenant(kube, { user: "tenant-web", namespace: WEB, role: "t", rules });
  other = await grantTenant(kube, { user: "tenant-other", namespace: OTHER, role: "t", rules });
  const nodeToken = await kube.serviceAccountToken("kube-system", "buoy-node");
  agent = await startAgent(
    {
      env: {
        DATASTORE_TYPE: "kubernetes",
        KUBECONFIG: kube.writeKubeconfig(join(work, "node.kubeconfig"), { token: nodeToken }),
      },
    },
    ["--node", NODE, "--cni-conf", conflistPath, "--status-ttl", "5"],
  );
  await renewLease("node-2");
  renewNode2 = setInterval(() => void renewLease("node-2"), 1000);
  const controllerToken = await kube.serviceAccountToken("kube-system", "buoy-controller");
  controllerKubeconfig = kube.writeKubeconfig(join(work, "controller.kubeconfig"), {
    token: controllerToken,
  });
  controller = startController(controllerKubeconfig);
}, 180_000);

afterAll(async () => {
  clearInterval(renewNode2);
  controller?.child.kill("SIGTERM");
  standby?.child.kill("SIGTERM");
  await agent?.stop();
  for (const ns of netnses) deleteNetns(ns);
  sh(["nft", "delete", "table", "ip", "buoy"]);
  await kube?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

function startController(kubeconfig: string) {
  const log: string[] = [];
  const child = spawn(
    "node",
    [join(ROOT, "dist/buoy"), "controller", "--listen", "127.0.0.1:0", "--log-level", "debug"],
    { env: { ...process.env, KUBECONFIG: kubeconfig }, stdio: ["ignore", "pipe", "pipe"] },
  );
  child.stdout.on("data", (chunk: Buffer) =>
    log.push(...chunk.toString().split("\n").filter(Boolean)),
  );
  child.stderr.on("data", (chunk: Buffer) => log.push(chunk.toString()));
  return { child, log };
}

const detail = () =>
  `controller log:\n${controller.log.slice(-25).join("\n")}\nagent log:\n${agent.log.slice(-10).join("\n")}`;
const until = (what: string, check: () => boolean | Promise<boolean>, ms = 10_000) =>
  waitFor(what, check, ms, detail);

/** A status Lease as node-2's agent would renew it (nothing programmed there). */
async function renewLease(node: string): Promise<void> {
  const path = `${LEASES}/buoy-node.${node}`;
  const got = await kube.admin.request<{ metadata: { resourceVersion: string } }>("GET", path);
  const body = {
    metadata: {
      name: `buoy-node.${node}`,
      labels: { "buoy.dev/floating-ip-status": "true" },
      annotations: { "buoy.dev/programmed": "[]" },
      ...(got.status === 200 ? { resourceVersion: got.body.metadata.resourceVersion } : {}),
    },
    spec: {
      holderIdentity: node,
      leaseDurationSeconds: 5,
      renewTime: new Date().toISOString().replace(/\.(\d{3})Z$/, ".$1000Z"),
    },
  };
  await kube.admin.request(
    got.status === 200 ? "PUT" : "POST",
    got.status === 200 ? path : LEASES,
    body,
  );
}

async function setReady(namespace: string, name: string, ready: boolean): Promise<void> {
  await kube.admin.json(
    "PATCH",
    `/api/v1/namespaces/${namespace}/pods/${name}/status`,
    {
      status: {
        phase: "Running",
        conditions: [
          {
            type: "Ready",
            status: ready ? "True" : "False",
            lastTransitionTime: new Date().toISOString(),
          },
        ],
      },
    },
    "application/strategic-merge-patch+json",
  );
}

/** A pod on node-1, set up by the real plugin, Ready unless told otherwise. */
async function addPod(
  namespace: string,
  name: string,
  options: { labels?: Record<string, string>; annotation?: string; ready?: boolean } = {},
): Promise<string> {
  await kube.admin.json("POST", `/api/v1/namespaces/${namespace}/pods`, {
    metadata: {
      name,
      labels: options.labels ?? { app: "web" },
      ...(options.annotation
        ? { annotations: { "cni.projectcalico.org/floatingIPs": options.annotation } }
        : {}),
    },
    spec: { nodeName: NODE, containers: [{ name: "c", image: "busybox" }] },
  });
  const netns = `${prefix}-${name}`.slice(0, 40);
  netnses.push(netns);
  const sandbox = {
    containerID: `${name}-${Math.random().toString(16).slice(2, 10)}`,
    netns: addNetns(netns),
    pod: { namespace, name },
  };
  sandboxes.set(name, sandbox);
  const added = await execConflist(conflist, "ADD", sandbox);
  expect(added.exitCode, added.raw + added.stderr).toBe(0);
  const address =
    String((added.output.ips as { address: string }[])[0]?.address).split("/")[0] ?? "";
  addresses.set(name, address);
  if (options.ready !== false) await setReady(namespace, name, true);
  return address;
}

/** A pod on node-2: its endpoint object written as node-2's plugin would have (no sandbox here). */
async function addRemotePod(namespace: string, name: string, ip: string): Promise<void> {
  const pod = await kube.admin.json<{ metadata: { uid: string } }>(
    "POST",
    `/api/v1/namespaces/${namespace}/pods`,
    {
      metadata: { name, labels: { app: "web" } },
      spec: { nodeName: "node-2", containers: [{ name: "c", image: "busybox" }] },
    },
  );
  const endpoint = {
    node: "node-2",
    namespace,
    pod: name,
    podUID: pod.metadata.uid,
    containerID: `${name}-remote`,
    endpoint: "eth0",
    interfaceName: "cali0000000002",
    mac: "ee:ee:ee:ee:ee:ee",
    ipNetworks: [`${ip}/32`],
    ipNATs: [],
    network: "k8s-pod-network",
    createdAt: new Date().toISOString(),
  };
  const object = endpointToObject(
    endpoint,
    await endpointObjectName("node-2", endpoint.containerID, "eth0"),
    undefined,
  );
  await kube.admin.json("POST", "/apis/buoy.dev/v1/workloadendpoints", object);
  await setReady(namespace, name, true);
}

async function createFip(
  client: KubeClient,
  namespace: string,
  name: string,
  address: string,
  selector: object = { matchLabels: { app: "web" } },
) {
  return client.request("POST", FIPS(namespace), {
    apiVersion: "buoy.dev/v1",
    kind: "FloatingIP",
    metadata: { name },
    spec: { address, podSelector: selector },
  });
}

const fip = (namespace: string, name: string) =>
  kube.admin.json<FloatingIpObject>("GET", `${FIPS(namespace)}/${name}`);
const claim = async (ip: string) => {
  const got = await kube.admin.request<ClaimObject>("GET", `${CLAIMS}/${ipObjectName(ip) ?? ip}`);
  return got.status === 200 ? got.body : undefined;
};
const condition = (object: FloatingIpObject, type: string) =>
  object.status?.conditions?.find((c) => c.type === type);
const holderOf = async (ip: string) => (await claim(ip))?.spec.pod;

describe("a FloatingIP follows one Ready pod", () => {
  const ADDRESS = "10.96.0.10";

  it("goes to the pod Ready longest, programmed by its node, with status and events", async () => {
    await addPod(WEB, "web-a");
    await new Promise((resolve) => setTimeout(resolve, 50));
    await addPod(WEB, "web-b");
    expect((await createFip(tenant, WEB, "vip", ADDRESS)).status).toBe(201);
    await until("the claim names web-a", async () => (await holderOf(ADDRESS)) === "web-a");
    const held = await claim(ADDRESS);
    expect(held?.spec.floatingIP).toBe(`${WEB}/vip`);
    await until(
      "node-1 translates it to web-a",
      () => readNftMap("fip_dnat").get(ADDRESS) === addresses.get("web-a"),
    );
    await until("status: Assigned, Programmed", async () => {
      const object = await fip(WEB, "vip");
      return (
        object.status?.holder?.pod === "web-a" &&
        condition(object, "Assigned")?.status === "True" &&
        condition(object, "Programmed")?.status === "True"
      );
    });
    // Both objects' conditions are what kubectl wait reads.
    for (const target of [`floatingipclaim/${ipObjectName(ADDRESS) ?? ""}`, `floatingip/vip`]) {
      const waited = kubectl(
        kube.kubeconfig,
        ...(target.startsWith("floatingip/") ? ["-n", WEB] : []),
        "wait",
        "--for=condition=Programmed",
        target,
        "--timeout=20s",
      );
      expect(waited.ok, waited.out).toBe(true);
      expect(waited.answer).toContain("condition met");
    }
  });

  it("moves to the other pod when the holder is deleted, in place (same claim uid)", async () => {
    const before = await claim(ADDRESS);
    const began = Date.now();
    await kube.admin.json("DELETE", `/api/v1/namespaces/${WEB}/pods/web-a`);
    await until("the claim names web-b", async () => (await holderOf(ADDRESS)) === "web-b", 5000);
    const moved = Date.now() - began;
    await until(
      "node-1 translates it to web-b",
      () => readNftMap("fip_dnat").get(ADDRESS) === addresses.get("web-b"),
    );
    const translated = Date.now() - began;
    console.log(`holder deleted: claim moved after ${moved} ms, kernel after ${translated} ms`);
    expect((await claim(ADDRESS))?.metadata.uid).toBe(before?.metadata.uid);
    // The old pod's DEL, as its kubelet runs it after the move, leaves the moved claim alone.
    const deleted = await execConflist(conflist, "DEL", sandboxes.get("web-a") ?? ({} as never));
    expect(deleted.exitCode, deleted.raw).toBe(0);
    expect((await claim(ADDRESS))?.spec.pod).toBe("web-b");
    // node-1 reports the move's generation programmed, and the status says so.
    await until("status: Programmed for web-b", async () => {
      const object = await fip(WEB, "vip");
      return (
        object.status?.holder?.pod === "web-b" && condition(object, "Programmed")?.status === "True"
      );
    });
    const after = await claim(ADDRESS);
    expect(after?.status?.observedGeneration).toBe(after?.metadata.generation);
    expect(after?.metadata.generation).toBeGreaterThan(before?.metadata.generation ?? Infinity);
    const events = await kube.admin.json<{
      items: { reason: string; involvedObject: { name: string } }[];
    }>("GET", `/api/v1/namespaces/${WEB}/events`);
    expect(events.items.map((e) => `${e.involvedObject.name} ${e.reason}`)).toEqual(
      expect.arrayContaining(["vip HolderChanged", "web-b FloatingIPAssigned"]),
    );
  });

  it("is sticky: a pod Ready longer that comes along does not take it", async () => {
    await addPod(WEB, "web-c");
    // web-c's Ready condition is older than web-b's.
    await kube.admin.json(
      "PATCH",
      `/api/v1/namespaces/${WEB}/pods/web-c/status`,
      {
        status: {
          conditions: [
            { type: "Ready", status: "True", lastTransitionTime: "2020-01-01T00:00:00Z" },
          ],
        },
      },
      "application/strategic-merge-patch+json",
    );
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(await holderOf(ADDRESS)).toBe("web-b");
  });

  it("moves when the holder turns NotReady", async () => {
    await setReady(WEB, "web-b", false);
    await until("the claim names web-c", async () => (await holderOf(ADDRESS)) === "web-c", 5000);
    await until(
      "node-1 translates it to web-c",
      () => readNftMap("fip_dnat").get(ADDRESS) === addresses.get("web-c"),
    );
  });

  it("moves off a node whose status Lease lapses", async () => {
    await addRemotePod(WEB, "web-remote", "10.244.200.7");
    // Only web-remote is left eligible: web-c NotReady too.
    await setReady(WEB, "web-c", false);
    await until("the claim names web-remote on node-2", async () => {
      const held = await claim(ADDRESS);
      return held?.spec.pod === "web-remote" && held.spec.node === "node-2";
    });
    await until("node-1 no longer translates it", () => !readNftMap("fip_dnat").has(ADDRESS));
    await setReady(WEB, "web-c", true);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await holderOf(ADDRESS)).toBe("web-remote"); // sticky while node-2 lives
    clearInterval(renewNode2);
    const began = Date.now();
    await until(
      "the claim names web-c again",
      async () => (await holderOf(ADDRESS)) === "web-c",
      12_000,
    );
    console.log(`node lost: claim moved ${Date.now() - began} ms after its last renewal`);
    await until(
      "node-1 translates it to web-c",
      () => readNftMap("fip_dnat").get(ADDRESS) === addresses.get("web-c"),
    );
  });
});

describe("what a tenant may not do", () => {
  it("cannot take an address another namespace's pod holds; the victim keeps it", async () => {
    await addPod(OTHER, "victim", { annotation: '["10.96.0.20"]', labels: { app: "db" } });
    await until(
      "the victim's address is translated",
      () => readNftMap("fip_dnat").get("10.96.0.20") === addresses.get("victim"),
    );
    await addPod(WEB, "thief");
    expect(
      (await createFip(tenant, WEB, "steal", "10.96.0.20", { matchLabels: { app: "web" } })).status,
    ).toBe(201);
    await until(
      "the FloatingIP is refused",
      async () => condition(await fip(WEB, "steal"), "Assigned")?.reason === "AddressInUse",
    );
    expect(condition(await fip(WEB, "steal"), "Assigned")?.message).toBe(
      "floating IP 10.96.0.20 is already held by a pod in another namespace",
    );
    expect((await claim("10.96.0.20"))?.spec.pod).toBe("victim");
    expect(readNftMap("fip_dnat").get("10.96.0.20")).toBe(addresses.get("victim"));
  });

  it("cannot select another namespace's pods, whatever their labels", async () => {
    expect(
      (await createFip(other, OTHER, "lure", "10.96.0.21", { matchLabels: { app: "web" } })).status,
    ).toBe(201);
    await until(
      "nothing selected",
      async () => condition(await fip(OTHER, "lure"), "Assigned")?.reason === "NoPodSelected",
    );
    expect(await claim("10.96.0.21")).toBeUndefined();
  });

  it("cannot use a pool its namespace may not, nor a pod's own address", async () => {
    expect((await createFip(tenant, WEB, "reserved", "10.97.0.5")).status).toBe(201);
    await until(
      "refused: the pool",
      async () => condition(await fip(WEB, "reserved"), "Assigned")?.reason === "AddressRefused",
    );
    expect(condition(await fip(WEB, "reserved"), "Assigned")?.message).toBe(
      `floating IP 10.97.0.5 is in pool reserved, which namespace ${WEB} may not use`,
    );
    const podAddress = addresses.get("victim") ?? "";
    expect((await createFip(tenant, WEB, "own", podAddress)).status).toBe(201);
    await until(
      "refused: a pod's address",
      async () => condition(await fip(WEB, "own"), "Assigned")?.reason === "AddressInUse",
    );
    expect(condition(await fip(WEB, "own"), "Assigned")?.message).toBe(
      `floating IP ${podAddress} is the address of a pod in another namespace`,
    );
    expect(await claim("10.97.0.5")).toBeUndefined();
    expect(await claim(podAddress)).toBeUndefined();
  });

  it("cannot write a FloatingIP's status, a claim, or a Lease that says who holds it", async () => {
    const object = await fip(WEB, "vip");
    const status = await tenant.request("PUT", `${FIPS(WEB)}/vip/status`, {
      ...object,
      status: { holder: { pod: "thief", node: NODE } },
    });
    expect(status.status).toBe(403);
    const claimPatch = await tenant.request(
      "PATCH",
      `${CLAIMS}/${ipObjectName("10.96.0.10") ?? ""}`,
      { spec: { pod: "thief" } },
      { contentType: MERGE },
    );
    expect(claimPatch.status).toBe(403);
    expect(
      (await tenant.request("POST", LEASES, { metadata: { name: "buoy-node.node-3" } })).status,
    ).toBe(403);
  });

  it("an annotation cannot take a FloatingIP's address: the ADD is refused and the holder keeps it", async () => {
    const holder = await holderOf("10.96.0.10");
    await kube.admin.json("POST", `/api/v1/namespaces/${OTHER}/pods`, {
      metadata: {
        name: "grab",
        annotations: { "cni.projectcalico.org/floatingIPs": '["10.96.0.10"]' },
      },
      spec: { nodeName: NODE, containers: [{ name: "c", image: "busybox" }] },
    });
    const netns = `${prefix}-grab`;
    netnses.push(netns);
    const added = await execConflist(conflist, "ADD", {
      containerID: "grab-1",
      netns: addNetns(netns),
      pod: { namespace: OTHER, name: "grab" },
    });
    expect(added.exitCode).not.toBe(0);
    expect(added.raw).toContain(
      "floating IP 10.96.0.10 is already held by a pod in another namespace",
    );
    expect(await holderOf("10.96.0.10")).toBe(holder);
  });
});

describe("a FloatingIP with spec.pool", () => {
  const fromPool = (name: string) =>
    tenant.request("POST", FIPS(WEB), {
      apiVersion: "buoy.dev/v1",
      kind: "FloatingIP",
      metadata: { name },
      spec: { pool: "tiny", podSelector: { matchLabels: { app: "pooled" } } },
    });

  it("gets the pool's free address, translated by its holder's node, named in its status", async () => {
    // tiny offers 10.96.1.1 and .2; a pod of the other namespace holds .1 by its annotation.
    await kube.admin.json("POST", "/apis/buoy.dev/v1/ippools", {
      apiVersion: "buoy.dev/v1",
      kind: "IPPool",
      metadata: { name: "tiny" },
      spec: { cidr: "10.96.1.0/30", blockSize: 30, disabled: true },
    });
    await addPod(OTHER, "pool-squatter", { labels: {}, annotation: '["10.96.1.1"]' });
    await addPod(WEB, "pool-a", { labels: { app: "pooled" } });
    expect((await fromPool("pooled")).status).toBe(201);
    await until("the claim of 10.96.1.2 names pool-a", async () => {
      const held = await claim("10.96.1.2");
      return held?.spec.pod === "pool-a" && held.spec.floatingIP === `${WEB}/pooled`;
    });
    await until(
      "node-1 translates it to pool-a",
      () => readNftMap("fip_dnat").get("10.96.1.2") === addresses.get("pool-a"),
    );
    await until("status.address", async () => {
      const object = await fip(WEB, "pooled");
      return object.status?.address === "10.96.1.2" && object.status.holder?.pod === "pool-a";
    });
    expect((await claim("10.96.1.1"))?.spec.pod).toBe("pool-squatter");
  });

  it("a second one finds the pool full and says so; it gets the address once the first is deleted", async () => {
    expect((await fromPool("second")).status).toBe(201);
    await until(
      "PoolExhausted",
      async () => condition(await fip(WEB, "second"), "Assigned")?.reason === "PoolExhausted",
    );
    expect(condition(await fip(WEB, "second"), "Assigned")?.message).toBe(
      "no free address in IP pool tiny (32 tried)",
    );
    expect((await tenant.request("DELETE", `${FIPS(WEB)}/pooled`)).status).toBe(200);
    await until(
      "the second holds 10.96.1.2",
      async () => (await claim("10.96.1.2"))?.spec.floatingIP === `${WEB}/second`,
      20_000,
    );
    expect((await tenant.request("DELETE", `${FIPS(WEB)}/second`)).status).toBe(200);
    await until("released", async () => (await claim("10.96.1.2")) === undefined);
  });
});

describe("the controller itself", () => {
  it("counts the moves in /metrics", async () => {
    const listening = controller.log
      .map((line) => {
        try {
          return JSON.parse(line) as { event?: string; port?: number };
        } catch {
          return {};
        }
      })
      .find((event) => event.event === "controller.listening");
    const text = await (await fetch(`http://127.0.0.1:${listening?.port ?? 0}/metrics`)).text();
    const failovers = (reason: string) =>
      Number(
        new RegExp(`buoy_floating_ip_failovers_total\\{reason="${reason}"\\} (\\d+)`).exec(
          text,
        )?.[1] ?? 0,
      );
    expect(failovers("Deleted")).toBe(1);
    expect(failovers("NotReady")).toBeGreaterThanOrEqual(1);
    expect(failovers("NodeLost")).toBe(1);
    expect(text).toMatch(/buoy_floating_ip_failover_seconds_count\{reason="Deleted"\} 1/);
    expect(text).toContain("buoy_controller_leader 1");
  });

  it("a standby takes over within the Lease's duration when the acting one is killed", async () => {
    standby = startController(controllerKubeconfig);
    await until("the standby is up", () =>
      (standby?.log ?? []).some((line) => line.includes('"controller.start"')),
    );
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect((standby?.log ?? []).some((line) => line.includes('"state":"acting"'))).toBe(false);
    controller.child.kill("SIGKILL");
    const began = Date.now();
    await addPod(WEB, "web-late");
    expect((await createFip(tenant, WEB, "late", "10.96.0.40")).status).toBe(201);
    await until(
      "the standby assigns it",
      async () => (await holderOf("10.96.0.40")) !== undefined,
      15_000,
    );
    console.log(
      `acting controller killed: a new FloatingIP assigned after ${Date.now() - began} ms`,
    );
    expect((standby?.log ?? []).some((line) => line.includes('"state":"acting"'))).toBe(true);
    controller = standby as { child: ChildProcess; log: string[] };
    standby = undefined;
  });
});

describe("a FloatingIP deleted", () => {
  it("releases its claim, and node-1 stops translating it", async () => {
    expect((await tenant.request("DELETE", `${FIPS(WEB)}/vip`)).status).toBe(200);
    await until("the claim is gone", async () => (await claim("10.96.0.10")) === undefined);
    await until("not translated", () => !readNftMap("fip_dnat").has("10.96.0.10"));
  });
});
