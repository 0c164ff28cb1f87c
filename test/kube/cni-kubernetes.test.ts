// The plugin with `datastore_type: kubernetes`, run by the real executables
// from the conflist install-cni renders out of the cluster's calico-config
// ConfigMap (verbatim: the seed page's template), with the plugin's own
// service-account token, against a real kube-apiserver v1.20.2. Pods are real
// API objects in a throwaway namespace; their network namespaces are this
// run's.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  addNetns,
  CNI_DIR,
  deleteNetns,
  execConflist,
  freePort,
  hostInterfaces,
  runPlugin,
  runPrefix,
  sleep,
  type Conflist,
} from "../support/harness.js";
import { startKubeApiserver, type KubeApiserver, type KubeObject } from "../support/kube.js";
import {
  applyManifests,
  installCniFromConfigMap,
  waitForBuoyCrds,
  createKubePools,
} from "../support/buoy-install.js";

const NODE = "node-1";
const FLOATING = "cni.projectcalico.org/floatingIPs";
const BUOY = "/apis/buoy.dev/v1";
const prefix = runPrefix();
const namespace = `${prefix}-pods`;

let kube: KubeApiserver;
let work: string;
let conflist: Conflist;
let nodeUID: string;
let netnses: string[] = [];

type Claim = KubeObject & { spec: Record<string, string> };
type Block = KubeObject & { spec: { cidr: string; allocations?: Record<string, unknown> } };

beforeAll(async () => {
  // kube-controller-manager for its garbage collector: claims are owned by their Node.
  kube = await startKubeApiserver({ controllerManager: true });
  work = mkdtempSync(join(tmpdir(), `${prefix}-cni-kube-`));
  applyManifests(kube, ["crds.yaml", "rbac.yaml", "calico-config.yaml"]);
  await waitForBuoyCrds(kube);
  const path = await installCniFromConfigMap(kube, work, NODE, join(CNI_DIR, "buoy"));
  conflist = JSON.parse(readFileSync(path, "utf8")) as Conflist;
  await createKubePools(kube, {
    pods: { cidr: "10.244.0.0/16" },
    floating: { cidr: "10.96.0.0/24", disabled: true },
    floating6: { cidr: "fd00:96::/120", disabled: true },
  });
  const node = await kube.admin.json<KubeObject>("POST", "/api/v1/nodes", {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: NODE },
  });
  nodeUID = node.metadata?.uid ?? "";
  await kube.admin.json("POST", "/api/v1/namespaces", { metadata: { name: namespace } });
}, 180_000);

afterEach(() => {
  for (const ns of netnses) deleteNetns(ns);
  netnses = [];
});

afterAll(async () => {
  await kube?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function createPod(name: string, annotation?: string): Promise<KubeObject> {
  return kube.admin.json("POST", `/api/v1/namespaces/${namespace}/pods`, {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      ...(annotation === undefined ? {} : { annotations: { [FLOATING]: annotation } }),
    },
    spec: { nodeName: NODE, containers: [{ name: "c", image: "busybox" }] },
  });
}

async function getPod(name: string): Promise<KubeObject> {
  return kube.admin.json("GET", `/api/v1/namespaces/${namespace}/pods/${name}`);
}

/** A sandbox for `pod`: a fresh network namespace and container ID. */
function sandbox(pod: string) {
  const netns = `${prefix}-${pod}`;
  netnses.push(netns);
  return {
    containerID: `${pod}-${Math.random().toString(16).slice(2, 10)}`,
    netns: addNetns(netns),
    pod: { namespace, name: pod },
  };
}

async function claims(): Promise<Claim[]> {
  return (await kube.admin.json<{ items: Claim[] }>("GET", `${BUOY}/floatingipclaims`)).items;
}

async function endpoints(): Promise<Claim[]> {
  return (await kube.admin.json<{ items: Claim[] }>("GET", `${BUOY}/workloadendpoints`)).items;
}

async function allocations(): Promise<string[]> {
  const blocks = await kube.admin.json<{ items: Block[] }>("GET", `${BUOY}/ipamblocks`);
  return blocks.items.flatMap((block) => Object.keys(block.spec.allocations ?? {}));
}

async function events(pod: string): Promise<{ reason: string; message: string; type: string }[]> {
  const list = await kube.admin.json<{
    items: { reason: string; message: string; type: string; involvedObject: { name: string } }[];
  }>("GET", `/api/v1/namespaces/${namespace}/events`);
  return list.items.filter((event) => event.involvedObject.name === pod);
}

describe("the plugin on the kubernetes datastore", () => {
  it("renders a conflist that names the kubernetes datastore and the plugin's kubeconfig", () => {
    const calico = conflist.plugins[0] as Record<string, unknown>;
    expect(calico).toMatchObject({
      type: "calico",
      datastore_type: "kubernetes",
      nodename: NODE,
      feature_control: { floating_ips: true },
      kubernetes: { kubeconfig: join(work, "net.d", "calico-kubeconfig") },
    });
  });

  it("ADD gives a pod with the seed's annotation its floating IP: claim, pod annotations; DEL removes them", async () => {
    await createPod("web", '["10.96.0.10"]');
    const call = sandbox("web");
    const added = await execConflist(conflist, "ADD", call);
    expect(added.exitCode, added.raw + added.stderr).toBe(0);
    const podIP = String((added.output.ips as { address: string }[])[0]?.address);
    expect(podIP).toMatch(/^10\.244\.\d+\.\d+\/32$/);

    const annotations = (await getPod("web")).metadata?.annotations ?? {};
    expect(annotations).toMatchObject({
      [FLOATING]: '["10.96.0.10"]',
      "cni.projectcalico.org/podIP": podIP,
      "cni.projectcalico.org/podIPs": podIP,
      "cni.projectcalico.org/containerID": call.containerID,
    });
    // The record the agents trust (ADR 0008), not the annotations above.
    const [endpoint, ...moreEndpoints] = await endpoints();
    expect(moreEndpoints).toEqual([]);
    expect(endpoint?.spec).toMatchObject({
      node: NODE,
      namespace,
      pod: "web",
      podUID: (await getPod("web")).metadata?.uid,
      containerID: call.containerID,
      endpoint: "eth0",
      ipNetworks: [podIP],
      network: "k8s-pod-network",
    });
    expect(endpoint?.metadata?.labels).toEqual({
      "buoy.dev/node": NODE,
      "buoy.dev/container": call.containerID,
    });
    const [claim, ...others] = await claims();
    expect(others).toEqual([]);
    expect(claim?.metadata?.name).toBe("10.96.0.10");
    expect(claim?.spec).toMatchObject({
      ip: "10.96.0.10",
      namespace,
      pod: "web",
      podUID: (await getPod("web")).metadata?.uid,
      containerID: call.containerID,
      node: NODE,
      internalIP: podIP.split("/")[0],
      endpoint: "eth0",
      network: "k8s-pod-network",
    });
    expect(claim?.metadata?.ownerReferences).toEqual([
      { apiVersion: "v1", kind: "Node", name: NODE, uid: nodeUID },
    ]);
    // DEL finds the container's claims by this label, not by listing all.
    expect(claim?.metadata?.labels).toEqual({ "buoy.dev/container": call.containerID });
    expect(await allocations()).toContain(podIP.split("/")[0]);

    const deleted = await execConflist(conflist, "DEL", call);
    expect(deleted.exitCode, deleted.raw).toBe(0);
    expect(await claims()).toEqual([]);
    expect(await endpoints()).toEqual([]);
    expect(await allocations()).not.toContain(podIP.split("/")[0]);
    const after = (await getPod("web")).metadata?.annotations ?? {};
    expect(Object.keys(after)).toEqual([FLOATING]);
    // A second DEL (the kubelet sends several) finds nothing and succeeds.
    expect((await execConflist(conflist, "DEL", call)).exitCode).toBe(0);
  });

  it("DEL also releases a claim without the container label (an older buoy's), and no other pod's", async () => {
    await createPod("old", '["10.96.0.14"]');
    await createPod("other", '["10.96.0.15"]');
    const [old, other] = [sandbox("old"), sandbox("other")];
    for (const call of [old, other]) {
      const added = await execConflist(conflist, "ADD", call);
      expect(added.exitCode, added.raw + added.stderr).toBe(0);
    }
    // As an older buoy made it: no labels. The other pod's claim unlabelled too.
    for (const ip of ["10.96.0.14", "10.96.0.15"]) {
      await kube.admin.json(
        "PATCH",
        `${BUOY}/floatingipclaims/${ip}`,
        { metadata: { labels: null } },
        "application/merge-patch+json",
      );
    }
    expect((await execConflist(conflist, "DEL", old)).exitCode).toBe(0);
    expect((await claims()).map((claim) => claim.spec.ip)).toEqual(["10.96.0.15"]);
    expect((await execConflist(conflist, "DEL", other)).exitCode).toBe(0);
    expect(await claims()).toEqual([]);
  });

  it("a second pod asking for a held floating IP is refused naming the holder, with an Event, and leaves nothing", async () => {
    await createPod("holder", '["10.96.0.20"]');
    await createPod("rival", '["10.96.0.20"]');
    const first = sandbox("holder");
    expect((await execConflist(conflist, "ADD", first)).exitCode).toBe(0);
    const before = { claims: await claims(), allocations: await allocations() };
    const interfaces = hostInterfaces();

    const second = sandbox("rival");
    const refused = await execConflist(conflist, "ADD", second);
    expect(refused.exitCode).toBe(1);
    expect(refused.output).toMatchObject({
      code: 100,
      msg: `floating IP 10.96.0.20 is already held by pod ${namespace}/holder`,
    });
    expect(await events("rival")).toEqual([
      expect.objectContaining({
        type: "Warning",
        reason: "FloatingIPRefused",
        message: `floating IP 10.96.0.20 is already held by pod ${namespace}/holder`,
      }),
    ]);
    expect(await claims()).toEqual(before.claims);
    expect(await allocations()).toEqual(before.allocations);
    expect(hostInterfaces()).toEqual(interfaces);
    expect(Object.keys((await getPod("rival")).metadata?.annotations ?? {})).toEqual([FLOATING]);

    // Once the holder's sandbox is gone, the rival's next try gets it.
    expect((await execConflist(conflist, "DEL", first)).exitCode).toBe(0);
    const retried = await execConflist(conflist, "ADD", second);
    expect(retried.exitCode, retried.raw).toBe(0);
    expect((await claims()).map((claim) => claim.spec.pod)).toEqual(["rival"]);
    expect((await execConflist(conflist, "DEL", second)).exitCode).toBe(0);
  });

  it("two pods racing for one floating IP: exactly one gets it, the other is refused naming it", async () => {
    await createPod("racer-a", '["10.96.0.30"]');
    await createPod("racer-b", '["10.96.0.30"]');
    const calls = [sandbox("racer-a"), sandbox("racer-b")];
    const outcomes = await Promise.all(calls.map((call) => execConflist(conflist, "ADD", call)));
    const winners = outcomes.filter((outcome) => outcome.exitCode === 0);
    expect(winners).toHaveLength(1);
    const loser = outcomes.find((outcome) => outcome.exitCode !== 0);
    expect(String(loser?.output.msg)).toMatch(
      new RegExp(`^floating IP 10\\.96\\.0\\.30 is already held by pod ${namespace}/racer-[ab]$`),
    );
    const held = await claims();
    expect(held).toHaveLength(1);
    const winner = calls[outcomes.indexOf(winners[0]!)]!;
    expect(held[0]?.spec.containerID).toBe(winner.containerID);
    for (const call of calls) expect((await execConflist(conflist, "DEL", call)).exitCode).toBe(0);
    expect(await claims()).toEqual([]);
    expect(await allocations()).toEqual([]);
  });
});

describe("a node leaving the cluster", () => {
  it("frees the claims of its pods: the garbage collector follows their Node ownerReference", async () => {
    await kube.admin.json("POST", "/api/v1/nodes", { metadata: { name: "node-gone" } });
    await kube.admin.json("POST", `/api/v1/namespaces/${namespace}/pods`, {
      metadata: { name: "stranded", annotations: { [FLOATING]: '["10.96.0.60"]' } },
      spec: { nodeName: "node-gone", containers: [{ name: "c", image: "busybox" }] },
    });
    const onGone: Conflist = {
      ...conflist,
      plugins: conflist.plugins.map((plugin, i) =>
        i === 0 ? { ...plugin, nodename: "node-gone" } : plugin,
      ),
    };
    const stranded = sandbox("stranded");
    const added = await execConflist(onGone, "ADD", stranded);
    expect(added.exitCode, added.raw).toBe(0);
    expect((await claims()).map((claim) => claim.spec.node)).toEqual(["node-gone"]);

    await kube.admin.json("DELETE", "/api/v1/nodes/node-gone");
    const deadline = Date.now() + 30_000;
    while ((await claims()).length > 0 && Date.now() < deadline) await sleep(200);
    expect(await claims()).toEqual([]);
    // Its pod address is not collected (IPAM has no collector for nodes that
    // left yet): released here so that the next tests start clean.
    expect((await execConflist(onGone, "DEL", stranded)).exitCode).toBe(0);
    expect(await allocations()).toEqual([]);
  }, 40_000);
});

describe("CHECK, GC and STATUS on the kubernetes datastore", () => {
  /** The calico plugin's own entry of the conflist, as CNI 1.1 for GC and STATUS. */
  const calico = (extra: Record<string, unknown> = {}) => ({
    ...conflist.plugins[0],
    name: conflist.name,
    cniVersion: "1.1.0",
    ...extra,
  });

  it("CHECK passes for a pod as ADD left it, and names a floating IP whose claim is gone", async () => {
    await createPod("checked", '["10.96.0.50"]');
    const call = sandbox("checked");
    const added = await execConflist(conflist, "ADD", call);
    expect(added.exitCode, added.raw).toBe(0);
    const check = () =>
      runPlugin({
        command: "CHECK",
        conf: calico({ cniVersion: "1.0.0", prevResult: added.output }),
        ...call,
      });
    const passed = await check();
    expect(passed.exitCode, passed.raw).toBe(0);
    await kube.admin.json("DELETE", `${BUOY}/floatingipclaims/10.96.0.50`);
    const failed = await check();
    expect(failed.output).toMatchObject({ code: 102 });
    expect(String(failed.output.msg)).toContain(
      "floating IP 10.96.0.50 is not claimed by this container",
    );
    expect((await execConflist(conflist, "DEL", call)).exitCode).toBe(0);
  });

  it("GC releases the claims and addresses of attachments the runtime no longer has", async () => {
    await createPod("gc-keep", '["10.96.0.51"]');
    await createPod("gc-gone", '["10.96.0.52"]');
    const keep = sandbox("gc-keep");
    const gone = sandbox("gc-gone");
    for (const call of [keep, gone]) {
      expect((await execConflist(conflist, "ADD", call)).exitCode).toBe(0);
    }
    const gc = await runPlugin({
      command: "GC",
      conf: calico({
        "cni.dev/valid-attachments": [{ containerID: keep.containerID, ifname: "eth0" }],
      }),
    });
    expect(gc.exitCode, gc.raw).toBe(0);
    expect((await claims()).map((claim) => claim.spec.pod)).toEqual(["gc-keep"]);
    expect(await allocations()).toHaveLength(1);
    for (const call of [keep, gone]) {
      expect((await execConflist(conflist, "DEL", call)).exitCode).toBe(0);
    }
    expect(await claims()).toEqual([]);
    expect(await allocations()).toEqual([]);
  });

  it("STATUS answers 0 while the API server answers", async () => {
    const status = await runPlugin({ command: "STATUS", conf: calico() });
    expect(status.exitCode, status.raw).toBe(0);
  });
});

describe("SPEC §4 refusals on the kubernetes datastore", () => {
  const rows: { desc: string; annotation: string; msg: string; featureOff?: boolean }[] = [
    {
      desc: "annotation present, feature off",
      annotation: '["10.96.0.1"]',
      msg: "requested feature is not enabled: floating_ips",
      featureOff: true,
    },
    { desc: "not JSON", annotation: "10.96.0.1", msg: "failed to parse '10.96.0.1' as JSON: " },
    {
      desc: "not an array of strings",
      annotation: "[1]",
      msg: "failed to parse '[1]' as JSON: expected an array of strings, found a number",
    },
    { desc: "a name", annotation: '["foo"]', msg: "invalid floating IP 'foo': not an IP address" },
    {
      desc: "a CIDR",
      annotation: '["10.96.0.0/24"]',
      msg: "invalid floating IP '10.96.0.0/24': not an IP address",
    },
    {
      desc: "outside every pool",
      annotation: '["203.0.113.9"]',
      msg: "floating IP 203.0.113.9 is not within any configured IP pool",
    },
    {
      desc: "no pod address of that family",
      annotation: '["fd00:96::9"]',
      msg: "floating IP fd00:96::9 is IPv6 but the pod has no IPv6 address",
    },
  ];
  for (const [index, { desc, annotation, msg, featureOff }] of rows.entries()) {
    it(`refuses ${desc}: an Event on the pod, and no claim, allocation, annotation or interface`, async () => {
      const name = `bad${index}`;
      await createPod(name, annotation);
      const list: Conflist = featureOff
        ? {
            ...conflist,
            plugins: conflist.plugins.map((plugin, i) =>
              i === 0 ? { ...plugin, feature_control: { floating_ips: false } } : plugin,
            ),
          }
        : conflist;
      const interfaces = hostInterfaces();
      const outcome = await execConflist(list, "ADD", sandbox(name));
      expect(outcome.exitCode).toBe(1);
      expect(outcome.output.code).toBe(100);
      expect(String(outcome.output.msg)).toContain(msg);
      expect((await events(name)).map((event) => event.message)).toEqual([outcome.output.msg]);
      expect(await claims()).toEqual([]);
      expect(await endpoints()).toEqual([]);
      expect(await allocations()).toEqual([]);
      expect(hostInterfaces()).toEqual(interfaces);
      expect(Object.keys((await getPod(name)).metadata?.annotations ?? {})).toEqual([FLOATING]);
    });
  }

  it("an API server that does not answer is CNI code 11 (try again later), leaving nothing", async () => {
    await createPod("unreachable", '["10.96.0.40"]');
    const kubeconfig = join(work, "unreachable-kubeconfig");
    const port = await freePort();
    writeFileSync(
      kubeconfig,
      readFileSync(join(work, "net.d", "calico-kubeconfig"), "utf8").replace(
        new URL(kube.server).host,
        `127.0.0.1:${port}`,
      ),
    );
    const list: Conflist = {
      ...conflist,
      plugins: conflist.plugins.map((plugin, i) =>
        i === 0 ? { ...plugin, kubernetes: { kubeconfig } } : plugin,
      ),
    };
    const interfaces = hostInterfaces();
    const outcome = await execConflist(list, "ADD", sandbox("unreachable"));
    expect(outcome.output).toMatchObject({ code: 11 });
    expect(String(outcome.output.msg)).toMatch(/^cannot reach the Kubernetes API: .*ECONNREFUSED/);
    expect(hostInterfaces()).toEqual(interfaces);
  });
});
