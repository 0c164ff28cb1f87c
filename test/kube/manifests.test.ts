// buoy's manifests against a real kube-apiserver v1.20.2: they apply cleanly
// (CRDs established, RBAC, the calico-config ConfigMap, the DaemonSets
// accepted), and install-cni, fed the ConfigMap's template as the DaemonSet
// feeds it, writes a conflist the plugin accepts and a kubeconfig whose
// service account has exactly the plugin's rights.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateConflist } from "../../src/install/render.js";
import { parseKubeconfig } from "../../src/kube/kubeconfig.js";
import { runPrefix } from "../support/harness.js";
import { startKubeApiserver, type KubeApiserver } from "../support/kube.js";
import {
  applyManifests,
  installCniFromConfigMap,
  kubectl,
  waitForBuoyCrds,
} from "../support/buoy-install.js";

let kube: KubeApiserver;
let work: string;

beforeAll(async () => {
  kube = await startKubeApiserver();
  work = mkdtempSync(join(tmpdir(), `${runPrefix()}-manifests-`));
}, 120_000);

afterAll(async () => {
  await kube?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("manifests/", () => {
  it("apply cleanly: every CRD established, RBAC, ConfigMap and DaemonSet accepted", async () => {
    applyManifests(kube);
    expect((await waitForBuoyCrds(kube)).length).toBeGreaterThanOrEqual(5);
    for (const path of [
      "/api/v1/namespaces/kube-system/configmaps/calico-config",
      "/apis/apps/v1/namespaces/kube-system/daemonsets/buoy-node",
      "/api/v1/namespaces/kube-system/serviceaccounts/buoy-cni-plugin",
      "/api/v1/namespaces/kube-system/serviceaccounts/buoy-node",
    ]) {
      expect((await kube.admin.request("GET", path)).status, path).toBe(200);
    }
  });

  it("install-cni renders the cluster's ConfigMap into the seed conflist and a kubeconfig with the plugin's rights only", async () => {
    const plugin = join(work, "plugin");
    writeFileSync(plugin, "#!/bin/sh\n");
    const conflistPath = await installCniFromConfigMap(kube, work, "node-1", plugin);
    const conflist = readFileSync(conflistPath, "utf8");
    const check = validateConflist(conflist);
    expect(check.ok, JSON.stringify(check)).toBe(true);
    if (!check.ok) return;
    expect(check.summary).toMatchObject({
      name: "k8s-pod-network",
      pluginTypes: ["calico", "portmap"],
      datastoreType: "kubernetes",
      nodename: "node-1",
      floatingIps: true,
    });

    // The kubeconfig the plugin will read: its server and credentials work,
    // and carry the plugin's service account's rights, nothing more.
    const kubeconfigPath = check.summary.kubeconfig!;
    expect(kubeconfigPath).toBe(join(work, "net.d", "calico-kubeconfig"));
    const credentials = parseKubeconfig(
      readFileSync(kubeconfigPath, "utf8"),
      kubeconfigPath,
      (path) => readFileSync(path, "utf8"),
    );
    expect(credentials.server).toBe(kube.server);
    expect(credentials.token).toBeDefined();
    const can = (verb: string, resource: string) =>
      kubectl(kubeconfigPath, "auth", "can-i", verb, resource, "-n", "default").answer;
    expect(can("get", "pods")).toBe("yes");
    expect(can("create", "floatingipclaims.buoy.dev")).toBe("yes");
    expect(can("watch", "pods")).toBe("no");
    expect(can("update", "ippools.buoy.dev")).toBe("no");
    expect(can("delete", "nodes")).toBe("no");
  });
});
