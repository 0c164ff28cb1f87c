// buoy installed, upgraded and uninstalled with the real helm v3 client
// (issue 16 item 4) on a real node: the chart of charts/buoy with the image
// of `npm run image`, the kubelet's CNI directories and this run's socket
// directory as values, its pools from values.pools. The DaemonSet's pod
// becomes ready, a pod's floating IP answers, an upgrade adds a pool through
// the running webhook (and one the webhook refuses fails the upgrade), and
// the uninstall leaves none of the release's objects but the CRDs and the
// pools, which Helm keeps.
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, runPrefix, sleep, SYSTEM_CNI_DIR } from "../support/harness.js";
import {
  BUOY_IMAGE_ARCHIVE,
  buoyDiagnostics,
  cniServerSocketFor,
} from "../support/buoy-install.js";
import {
  busyboxPod,
  pointBuoyAtApiServer,
  startKubeNode,
  type KubeNode,
} from "../support/kube-node.js";

const prefix = runPrefix();
const FLOATING = "cni.projectcalico.org/floatingIPs";
const HELM = join(ROOT, "node_modules/.bin/helm");
const work = join(tmpdir(), `${prefix}-helm`);
const cniBin = join(work, "bin");
const cniConf = join(work, "net.d");
let node: KubeNode;

function helm(...args: string[]) {
  const run = spawnSync(
    HELM,
    [...args, "--kubeconfig", node.kube.kubeconfig, "--namespace", "kube-system"],
    {
      encoding: "utf8",
      env: {
        ...process.env,
        HELM_CACHE_HOME: join(work, "helm-cache"),
        HELM_CONFIG_HOME: join(work, "helm-config"),
        HELM_DATA_HOME: join(work, "helm-data"),
      },
    },
  );
  return { ok: run.status === 0, out: run.stdout + run.stderr };
}

/** The values this node needs: its kubelet's CNI dirs, this run's socket dir, two pools. */
const VALUES = [
  `cni.binDir=${cniBin}`,
  `cni.confDir=${cniConf}`,
  `cni.runDir=${dirname(dirname(cniServerSocketFor(cniConf)))}`,
  "pools[0].name=pods",
  "pools[0].cidr=10.244.0.0/16",
  "pools[1].name=floating",
  "pools[1].cidr=10.96.0.0/24",
  "pools[1].disabled=true",
].flatMap((value) => ["--set", value]);

beforeAll(async () => {
  if (!existsSync(BUOY_IMAGE_ARCHIVE))
    throw new Error(`${BUOY_IMAGE_ARCHIVE} missing: run npm run image`);
  mkdirSync(cniBin, { recursive: true });
  mkdirSync(cniConf, { recursive: true });
  for (const plugin of ["loopback", "portmap"]) {
    copyFileSync(join(SYSTEM_CNI_DIR, plugin), join(cniBin, plugin));
    chmodSync(join(cniBin, plugin), 0o755);
  }
  node = await startKubeNode({
    cniBinDir: cniBin,
    cniConfDir: cniConf,
    serviceAccountAdmission: true,
    // No kube-proxy: the API server reaches the webhook on its endpoint.
    apiserverArgs: ["--enable-aggregator-routing=true"],
  });
  const imported = node.ctr("images", "import", "--snapshotter", "native", BUOY_IMAGE_ARCHIVE);
  expect(imported.ok, imported.out).toBe(true);
  // No kube-proxy either for buoy's pods: the ConfigMap the chart's pods read, made first.
  const endpoint = pointBuoyAtApiServer(node);
  expect(endpoint.ok, endpoint.out).toBe(true);
}, 300_000);

afterAll(async () => {
  await node?.stop();
}, 120_000);

async function until(what: string, check: () => boolean, ms = 180_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (check()) return;
    await sleep(500);
  }
  throw new Error(`timed out waiting for ${what}\n${buoyDiagnostics(node)}`);
}

const ready = (selector: string) =>
  node.kubectl(
    "get",
    "pods",
    "-n",
    "kube-system",
    "-l",
    selector,
    "-o",
    'jsonpath={.items[*].status.conditions[?(@.type=="Ready")].status}',
  ).stdout;

describe("buoy installed with helm", () => {
  it("helm install: the release deploys, its pools exist, the node's pod and the webhook become ready", async () => {
    const installed = helm("install", "buoy", join(ROOT, "charts/buoy"), ...VALUES);
    expect(installed.ok, installed.out).toBe(true);
    expect(installed.out).toContain("buoy 0.1.0 is installed: image buoy:0.1.0, routing bgp");
    expect(node.kubectl("get", "ippools.buoy.dev", "-o", "name").stdout.split("\n").sort()).toEqual(
      ["ippool.buoy.dev/floating", "ippool.buoy.dev/pods"],
    );
    await until("the buoy-node pod ready", () => ready("k8s-app=buoy-node") === "True");
    await node.waitReady(60_000);
    await until("the webhook ready", () => ready("k8s-app=buoy-webhook") === "True");
    expect(helm("status", "buoy").out).toMatch(/STATUS: deployed/);
  }, 400_000);

  it("a pod applied with the seed's annotation runs and its floating IP answers", async () => {
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
    await until(
      "10.96.0.10 answers from the node",
      () => spawnSync("ping", ["-c", "1", "-W", "1", "10.96.0.10"]).status === 0,
      30_000,
    );
  }, 240_000);

  it("helm upgrade adds a pool through the running webhook, and one it refuses fails the upgrade", () => {
    const more = [...VALUES, "--set", "pools[2].name=more", "--set", "pools[2].cidr=10.97.0.0/24"];
    const upgraded = helm("upgrade", "buoy", join(ROOT, "charts/buoy"), ...more);
    expect(upgraded.ok, upgraded.out).toBe(true);
    expect(
      node.kubectl("get", "ippool.buoy.dev", "more", "-o", "jsonpath={.spec.cidr}").stdout,
    ).toBe("10.97.0.0/24");
    const overlap = [
      ...VALUES,
      "--set",
      "pools[2].name=more",
      "--set",
      "pools[2].cidr=10.96.0.128/25",
    ];
    const refused = helm("upgrade", "buoy", join(ROOT, "charts/buoy"), ...overlap);
    expect(refused.ok).toBe(false);
    expect(refused.out).toContain(
      'admission webhook "ippools.buoy.dev" denied the request: IP pool more (10.96.0.128/25) overlaps IP pool floating (10.96.0.0/24)',
    );
  }, 180_000);

  it("helm uninstall leaves none of the release's objects; the CRDs and the pools stay", async () => {
    expect(node.kubectl("delete", "pod", "web", "--wait=true").ok).toBe(true);
    const removed = helm("uninstall", "buoy", "--wait");
    expect(removed.ok, removed.out).toBe(true);
    const left = (kind: string) =>
      node.kubectl("get", kind, "-A", "-l", "k8s-app", "-o", "name").stdout.trim();
    await until(
      "the release's workloads gone",
      () => left("daemonsets,deployments,pods") === "",
      120_000,
    );
    for (const [kind, name] of [
      ["configmap", "calico-config"],
      ["clusterrole", "buoy-node"],
      ["validatingwebhookconfiguration", "buoy"],
    ] as const) {
      const got = node.kubectl("get", kind, name, "-n", "kube-system");
      expect(got.ok, `${kind} ${name}: ${got.out}`).toBe(false);
    }
    expect(node.kubectl("get", "crd", "ippools.buoy.dev").ok).toBe(true);
    // The pools stay too (helm.sh/resource-policy: keep): addresses may still be held in them.
    expect(node.kubectl("get", "ippool.buoy.dev", "pods").ok).toBe(true);
  }, 180_000);
});
