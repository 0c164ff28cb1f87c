// buoy installed by its own manifests on a real node (issue 6): the image
// from `npm run image` imported into the node's containerd, the CRDs, RBAC,
// calico-config and the buoy-node DaemonSet applied with kubectl, with the
// kubelet's CNI directories as the DaemonSet's host paths. The init
// container installs the plugin and the conflist, the agent runs as the
// DaemonSet's pod (host network: the node's namespace), and a pod applied
// with the seed's annotation gets its floating IP.
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { ROOT, runPrefix, sleep, SYSTEM_CNI_DIR } from "../support/harness.js";
import { applyManifests, waitForBuoyCrds } from "../support/buoy-install.js";
import { busyboxPod, startKubeNode, TEST_POOLS, type KubeNode } from "../support/kube-node.js";

const prefix = runPrefix();
const FLOATING = "cni.projectcalico.org/floatingIPs";
const IMAGE = join(ROOT, "dist/buoy-image.tar");
let node: KubeNode;
let cniBin: string;
let cniConf: string;

type Json = Record<string, unknown>;

/** The DaemonSet as manifests/daemonset.yaml has it, its host paths the kubelet's CNI dirs. */
function daemonSet(): string {
  const text = readFileSync(join(ROOT, "manifests/daemonset.yaml"), "utf8");
  const objects = parseAllDocuments(text).map((doc) => doc.toJSON() as Json);
  const set = objects.find(
    (object) =>
      object.kind === "DaemonSet" && (object.metadata as Json | undefined)?.name === "buoy-node",
  ) as Json;
  const spec = ((set.spec as Json).template as Json).spec as Json;
  for (const volume of spec.volumes as Json[]) {
    const hostPath = volume.hostPath as Json | undefined;
    if (volume.name === "cni-bin-dir" && hostPath) hostPath.path = cniBin;
    if (volume.name === "cni-net-dir" && hostPath) hostPath.path = cniConf;
  }
  // The conf dir's host path, for the conflist's kubeconfig path (as the manifest says).
  for (const container of spec.initContainers as Json[]) {
    for (const variable of (container.env as Json[] | undefined) ?? []) {
      if (variable.name === "CNI_NET_DIR") variable.value = cniConf;
    }
  }
  return JSON.stringify(set);
}

beforeAll(async () => {
  if (!existsSync(IMAGE)) throw new Error(`${IMAGE} missing: run npm run image`);
  const work = join(tmpdir(), `${prefix}-cni`);
  cniBin = join(work, "bin");
  cniConf = join(work, "net.d");
  mkdirSync(cniBin, { recursive: true });
  mkdirSync(cniConf, { recursive: true });
  for (const plugin of ["loopback", "portmap"]) {
    copyFileSync(join(SYSTEM_CNI_DIR, plugin), join(cniBin, plugin));
    spawnSync("chmod", ["755", join(cniBin, plugin)]);
  }
  // Service-account tokens in pods, as in any cluster (the API-server tests turn that off).
  node = await startKubeNode({
    cniBinDir: cniBin,
    cniConfDir: cniConf,
    serviceAccountAdmission: true,
  });
  const imported = node.ctr("images", "import", "--snapshotter", "native", IMAGE);
  expect(imported.ok, imported.out).toBe(true);
  applyManifests(node.kube, ["crds.yaml", "rbac.yaml", "calico-config.yaml"]);
  await waitForBuoyCrds(node.kube);
  // No kube-proxy on this node: the pods reach the API server directly, the
  // way Calico's manifests allow (the ConfigMap the DaemonSet reads).
  const server = new URL(node.kube.server);
  const endpoint = node.kubectlIn(
    JSON.stringify({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "kubernetes-services-endpoint", namespace: "kube-system" },
      data: { KUBERNETES_SERVICE_HOST: server.hostname, KUBERNETES_SERVICE_PORT: server.port },
    }),
    "apply",
    "-f",
    "-",
  );
  expect(endpoint.ok, endpoint.out).toBe(true);
  const applied = node.kubectlIn(daemonSet(), "apply", "-f", "-");
  expect(applied.ok, applied.out).toBe(true);
}, 300_000);

afterAll(async () => {
  await node?.stop();
}, 120_000);

async function until(what: string, check: () => boolean, ms = 120_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (check()) return;
    await sleep(500);
  }
  const pods = node.kubectl("get", "pods", "-A", "-o", "wide").out;
  const events = node.kubectl("get", "events", "-A").out.split("\n").slice(-25).join("\n");
  const logs = ["install-cni", "buoy-agent", "cni-token", "bird"]
    .map((container) => {
      const args = ["logs", "-n", "kube-system", "-l", "k8s-app=buoy-node", "-c", container];
      const now = node.kubectl(...args, "--tail=15").out;
      const before = node.kubectl(...args, "--previous", "--tail=15").out;
      return `--- ${container}:\n${now}\n--- ${container} (previous):\n${before}`;
    })
    .join("\n");
  throw new Error(`timed out waiting for ${what}\n${pods}\n${events}\n${logs}`);
}

const ping = (ip: string) => spawnSync("ping", ["-c", "1", "-W", "1", ip]).status === 0;

describe("buoy installed by its manifests", () => {
  it("the DaemonSet's pod becomes ready, and with its conflist the node", async () => {
    await until("the buoy-node pod ready", () => {
      const ready = node.kubectl(
        "get",
        "pods",
        "-n",
        "kube-system",
        "-l",
        "k8s-app=buoy-node",
        "-o",
        'jsonpath={.items[*].status.conditions[?(@.type=="Ready")].status}',
      );
      return ready.stdout === "True";
    });
    await node.waitReady(60_000);
    expect(existsSync(join(cniConf, "10-calico.conflist"))).toBe(true);
    expect(existsSync(join(cniBin, "calico"))).toBe(true);
  }, 180_000);

  it("a pod applied with the seed's annotation runs and its floating IP answers", async () => {
    const pools = node.kubectlIn(TEST_POOLS, "apply", "-f", "-");
    expect(pools.ok, pools.out).toBe(true);
    const pod = node.kubectlIn(
      JSON.stringify(busyboxPod("web", { annotations: { [FLOATING]: '["10.96.0.10"]' } })),
      "apply",
      "-f",
      "-",
    );
    expect(pod.ok, pod.out).toBe(true);
    await until(
      "web Running",
      () =>
        node.kubectl("get", "pod", "web", "-o", "jsonpath={.status.phase}").stdout === "Running",
    );
    await until("10.96.0.10 answers from the node", () => ping("10.96.0.10"), 30_000);
    const programmed = node.kubectl(
      "get",
      "fip",
      "10.96.0.10",
      "-o",
      "jsonpath={.status.programmed}",
    );
    expect(programmed.stdout).toBe("true");
  }, 180_000);

  it("kubectl annotate --overwrite moves the floating IP live; an invalid value is an Event, the binding stays", async () => {
    const annotate = (value: string) =>
      node.kubectl("annotate", "--overwrite", "pod", "web", `${FLOATING}=${value}`);
    expect(annotate('["10.96.0.11"]').ok).toBe(true);
    await until(
      "10.96.0.11 answers, 10.96.0.10 no longer",
      () => ping("10.96.0.11") && !ping("10.96.0.10"),
      30_000,
    );
    expect(annotate("not-json").ok).toBe(true);
    await until("the refusal in the pod's events", () =>
      node.kubectl("describe", "pod", "web").out.includes("FloatingIPRefused"),
    );
    expect(node.kubectl("describe", "pod", "web").out).toContain(
      "failed to parse 'not-json' as JSON",
    );
    expect(ping("10.96.0.11")).toBe(true);
  }, 120_000);

  it("a second pod asking for a held floating IP does not start, naming the holder; it starts once the holder is gone", async () => {
    const rival = node.kubectlIn(
      JSON.stringify(busyboxPod("rival", { annotations: { [FLOATING]: '["10.96.0.11"]' } })),
      "apply",
      "-f",
      "-",
    );
    expect(rival.ok, rival.out).toBe(true);
    await until("the sandbox failure naming the holder", () =>
      node
        .kubectl("describe", "pod", "rival")
        .out.includes("floating IP 10.96.0.11 is already held by pod default/web"),
    );
    expect(node.kubectl("get", "pod", "rival", "-o", "jsonpath={.status.phase}").stdout).toBe(
      "Pending",
    );
    expect(node.kubectl("delete", "pod", "web", "--wait=true", "--timeout=60s").ok).toBe(true);
    await until(
      "rival Running on its next try",
      () =>
        node.kubectl("get", "pod", "rival", "-o", "jsonpath={.status.phase}").stdout === "Running",
      120_000,
    );
    await until("10.96.0.11 answers from the rival", () => ping("10.96.0.11"), 30_000);
    const holder = node.kubectl("get", "fip", "10.96.0.11", "-o", "jsonpath={.spec.pod}");
    expect(holder.stdout).toBe("rival");
  }, 180_000);

  it("50 pods created and deleted leak nothing: no allocation, claim, interface or rule", async () => {
    const count = () => ({
      allocations:
        node
          .kubectl("get", "ipamblocks.buoy.dev", "-o", "jsonpath={.items[*].spec.allocations}")
          .stdout.split(/"handle"/).length - 1,
      claims: node.kubectl("get", "fip", "-o", "name").stdout.split("\n").filter(Boolean).length,
      interfaces: spawnSync("ip", ["-o", "link", "show"], { encoding: "utf8" })
        .stdout.split("\n")
        .filter((line) => / cali[0-9a-f]+@/.test(line)).length,
      rules: spawnSync("nft", ["list", "ruleset"], { encoding: "utf8" }).stdout.split("\n").length,
    });
    const before = count();
    const pods = Array.from({ length: 50 }, (_, i) =>
      busyboxPod(`loop-${i}`, { labels: { loop: "yes" } }),
    );
    const created = node.kubectlIn(
      JSON.stringify({ apiVersion: "v1", kind: "List", items: pods }),
      "apply",
      "-f",
      "-",
    );
    expect(created.ok, created.out).toBe(true);
    await until(
      "50 pods Running",
      () =>
        node
          .kubectl("get", "pods", "-l", "loop=yes", "-o", "jsonpath={.items[*].status.phase}")
          .stdout.split(" ")
          .filter((phase) => phase === "Running").length === 50,
      300_000,
    );
    expect(count().interfaces).toBe(before.interfaces + 50);
    const deleted = node.kubectl(
      "delete",
      "pods",
      "-l",
      "loop=yes",
      "--wait=true",
      "--timeout=300s",
    );
    expect(deleted.ok, deleted.out).toBe(true);
    await until(
      "every loop pod's interface gone",
      () => count().interfaces === before.interfaces,
      120_000,
    );
    expect(count()).toEqual(before);
  }, 600_000);
});
