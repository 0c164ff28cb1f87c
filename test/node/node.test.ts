// buoy on a real node (issue 6): kubelet v1.20.2 and containerd 1.6 call the
// plugin; pods are made and deleted with kubectl. This first step installs
// the plugin with install-cni from the cluster's calico-config ConfigMap into
// the kubelet's CNI directories, as the DaemonSet's init container does, and
// runs the agent as a process of the node (the DaemonSet itself comes next).
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installCni } from "../../src/install/install-cni.js";
import {
  CNI_DIR,
  runPrefix,
  sleep,
  startAgent,
  SYSTEM_CNI_DIR,
  type AgentProcess,
} from "../support/harness.js";
import { applyManifests, installSettings, waitForBuoyCrds } from "../support/buoy-install.js";
import { busyboxPod, startKubeNode, TEST_POOLS, type KubeNode } from "../support/kube-node.js";

const prefix = runPrefix();
const FLOATING = "cni.projectcalico.org/floatingIPs";
let node: KubeNode;
let agent: AgentProcess | undefined;
let cniBin: string;
let cniConf: string;

beforeAll(async () => {
  const work = join(tmpdir(), `${prefix}-cni`);
  cniBin = join(work, "bin");
  cniConf = join(work, "net.d");
  mkdirSync(cniBin, { recursive: true });
  mkdirSync(cniConf, { recursive: true });
  // containerd runs loopback itself, from the kubelet's CNI bin dir; portmap is in the seed's chain.
  for (const plugin of ["loopback", "portmap"]) {
    copyFileSync(join(SYSTEM_CNI_DIR, plugin), join(cniBin, plugin));
    spawnSync("chmod", ["755", join(cniBin, plugin)]);
  }
  node = await startKubeNode({ cniBinDir: cniBin, cniConfDir: cniConf });
  applyManifests(node.kube, ["crds.yaml", "rbac.yaml", "calico-config.yaml"]);
  await waitForBuoyCrds(node.kube);
  const settings = await installSettings(node.kube, work, node.nodeName, join(CNI_DIR, "buoy"));
  await installCni({ ...settings, binDir: cniBin, confDir: cniConf }, "test");
  await node.waitReady();
  const applied = node.kubectlIn(TEST_POOLS, "apply", "-f", "-");
  expect(applied.ok, applied.out).toBe(true);
  const token = await node.kube.serviceAccountToken("kube-system", "buoy-node");
  const kubeconfig = node.kube.writeKubeconfig(join(work, "buoy-node.kubeconfig"), { token });
  agent = await startAgent({ env: { DATASTORE_TYPE: "kubernetes", KUBECONFIG: kubeconfig } }, [
    ...["--node", node.nodeName, "--cni-conf", join(cniConf, "10-calico.conflist")],
    ...["--resync", "2"],
  ]);
}, 300_000);

afterAll(async () => {
  await agent?.stop();
  await node?.stop();
}, 120_000);

function podManifest(name: string, annotation?: string): string {
  return JSON.stringify(
    busyboxPod(name, annotation ? { annotations: { [FLOATING]: annotation } } : {}),
  );
}

async function until(what: string, check: () => boolean, ms = 60_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (check()) return;
    await sleep(250);
  }
  const describe = node.kubectl("describe", "pods", "-n", "default").out.split("\n").slice(-25);
  throw new Error(`timed out waiting for ${what}\n${describe.join("\n")}`);
}

const phase = (pod: string) =>
  node.kubectl("get", "pod", pod, "-o", "jsonpath={.status.phase}").stdout;
const ping = (ip: string) => spawnSync("ping", ["-c", "1", "-W", "1", ip]).status === 0;

describe("a real kubelet and containerd call buoy", () => {
  it("a pod applied with the seed's annotation runs and answers on its floating IP", async () => {
    const applied = node.kubectlIn(podManifest("web", '["10.96.0.10"]'), "apply", "-f", "-");
    expect(applied.ok, applied.out).toBe(true);
    await until("web Running", () => phase("web") === "Running");
    const podIP = node.kubectl("get", "pod", "web", "-o", "jsonpath={.status.podIP}").stdout;
    expect(podIP).toMatch(/^10\.244\./);
    const claim = node.kubectl("get", "fip", "10.96.0.10", "-o", "jsonpath={.spec.internalIP}");
    expect(claim.stdout).toBe(podIP);
    await until("10.96.0.10 answers from the node", () => ping("10.96.0.10"), 20_000);
    expect(ping(podIP)).toBe(true);
  });

  it("deleting the pod (the kubelet's DELs) leaves no claim or allocation", async () => {
    const deleted = node.kubectl("delete", "pod", "web", "--wait=true", "--timeout=60s");
    expect(deleted.ok, deleted.out).toBe(true);
    await until("the claim gone", () => !node.kubectl("get", "fip", "10.96.0.10").ok, 30_000);
    const blocks = node.kubectl(
      "get",
      "ipamblocks.buoy.dev",
      "-o",
      "jsonpath={.items[*].spec.allocations}",
    );
    expect(blocks.stdout.replace(/[{}\s]/g, "")).toBe("");
    expect(ping("10.96.0.10")).toBe(false);
  });
});
