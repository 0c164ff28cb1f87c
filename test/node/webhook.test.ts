// buoy's admission webhook installed by its manifest on a real node (issue 13
// item 4): the image from `npm run image` in the node's containerd,
// manifests/webhook.yaml applied with kubectl as it is, the Deployment's pod
// run by the kubelet on the host network. The webhook makes its TLS with the
// image's openssl and patches the caBundle; kube-apiserver reaches it through
// the Service, resolved to the endpoint's address (--enable-aggregator-routing,
// as install.md says for a cluster without kube-proxy). kubectl apply of an
// overlapping pool and of a pod with a floatingIPs annotation ADD would refuse
// fails at once with the webhook's words; good ones are admitted.
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { ROOT, runPrefix, sleep } from "../support/harness.js";
import { applyManifests, waitForBuoyCrds } from "../support/buoy-install.js";
import {
  busyboxPod,
  pointBuoyAtApiServer,
  startKubeNode,
  type KubeNode,
} from "../support/kube-node.js";

const FLOATING = "cni.projectcalico.org/floatingIPs";
const IMAGE = join(ROOT, "dist/buoy-image.tar");
const work = join(tmpdir(), `${runPrefix()}-webhook-cni`);
let node: KubeNode;

beforeAll(async () => {
  if (!existsSync(IMAGE)) throw new Error(`${IMAGE} missing: run npm run image`);
  // No CNI plugin is installed: the webhook runs on the host network.
  mkdirSync(join(work, "bin"), { recursive: true });
  mkdirSync(join(work, "net.d"), { recursive: true });
  node = await startKubeNode({
    cniBinDir: join(work, "bin"),
    cniConfDir: join(work, "net.d"),
    serviceAccountAdmission: true,
    apiserverArgs: ["--enable-aggregator-routing=true"],
  });
  const imported = node.ctr("images", "import", "--snapshotter", "native", IMAGE);
  expect(imported.ok, imported.out).toBe(true);
  applyManifests(node.kube, ["crds.yaml"]);
  await waitForBuoyCrds(node.kube);
  // No kube-proxy: the webhook reaches the API server directly (daemonset.test.ts does the same).
  const endpoint = pointBuoyAtApiServer(node);
  expect(endpoint.ok, endpoint.out).toBe(true);
  applyManifests(node.kube, ["webhook.yaml"]);
}, 300_000);

afterAll(async () => {
  await node?.stop();
  rmSync(work, { recursive: true, force: true });
}, 120_000);

async function until(what: string, check: () => boolean, ms = 120_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (check()) return;
    await sleep(500);
  }
  const pods = node.kubectl("get", "pods", "-A", "-o", "wide").out;
  const logs = node.kubectl("logs", "-n", "kube-system", "-l", "k8s-app=buoy-webhook", "--tail=20");
  throw new Error(`timed out waiting for ${what}\n${pods}\n${logs.out}`);
}

const pool = (name: string, cidr: string) =>
  JSON.stringify({ apiVersion: "buoy.dev/v1", kind: "IPPool", metadata: { name }, spec: { cidr } });

describe("the webhook installed by manifests/webhook.yaml", () => {
  it("runs, makes its Secret and caBundle, and admits a pool", async () => {
    // Until it is up, pool writes fail (failurePolicy Fail): wait until one is admitted.
    await until(
      "the webhook admitting a pool",
      () => node.kubectlIn(pool("floating", "10.96.0.0/24"), "apply", "-f", "-").ok,
    );
    const secret = node.kubectl(
      "get",
      "secret",
      "-n",
      "kube-system",
      "buoy-webhook-tls",
      "-o",
      "jsonpath={.type}",
    );
    expect(secret.stdout).toBe("Opaque");
    // Every webhook of the configuration, however many the manifest has, carries the bundle.
    const get = (path: string) =>
      node
        .kubectl("get", "validatingwebhookconfiguration", "buoy", "-o", `jsonpath={${path}}`)
        .stdout.split(" ");
    const names = get(".webhooks[*].name");
    const bundles = get(".webhooks[*].clientConfig.caBundle");
    expect(names).toEqual(["ippools.buoy.dev", "floatingips.buoy.dev", "pods.buoy.dev"]);
    expect(bundles).toHaveLength(names.length);
    for (const bundle of bundles) expect(bundle).toMatch(/^[A-Za-z0-9+/]{100,}={0,2}$/);
  }, 180_000);

  it("kubectl apply of an overlapping pool fails with the webhook's words", () => {
    const applied = node.kubectlIn(pool("overlap", "10.96.0.128/25"), "apply", "-f", "-");
    expect(applied.ok).toBe(false);
    expect(applied.out).toContain(
      'admission webhook "ippools.buoy.dev" denied the request: IP pool overlap (10.96.0.128/25) overlaps IP pool floating (10.96.0.0/24)',
    );
  });

  it("kubectl apply of a pod asking for a floating IP outside every pool fails with ADD's words", () => {
    const applied = node.kubectlIn(
      JSON.stringify(busyboxPod("outside", { annotations: { [FLOATING]: '["192.0.2.9"]' } })),
      "apply",
      "-f",
      "-",
    );
    expect(applied.ok).toBe(false);
    expect(applied.out).toContain(
      'admission webhook "pods.buoy.dev" denied the request: floating IP 192.0.2.9 is not within any configured IP pool',
    );
    expect(node.kubectl("get", "pod", "outside").ok).toBe(false);
  });

  it("kubectl apply of a pod whose floating IP is in a pool is admitted", () => {
    const applied = node.kubectlIn(
      JSON.stringify(busyboxPod("inside", { annotations: { [FLOATING]: '["10.96.0.9"]' } })),
      "apply",
      "-f",
      "-",
    );
    expect(applied.ok, applied.out).toBe(true);
    node.kubectl("delete", "pod", "inside", "--wait=false");
  });
});
