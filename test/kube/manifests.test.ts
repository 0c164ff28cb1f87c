// buoy's manifests against a real kube-apiserver v1.20.2: they apply cleanly
// (CRDs established, RBAC, the calico-config ConfigMap, the DaemonSets
// accepted), and install-cni, fed the ConfigMap's template as the DaemonSet
// feeds it, writes a conflist the plugin accepts and a kubeconfig whose
// service account has exactly the plugin's rights.
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateConflist } from "../../src/install/render.js";
import { parseKubeconfig } from "../../src/kube/kubeconfig.js";
import { ROOT, runPrefix, sleep } from "../support/harness.js";
import { startKubeApiserver, type KubeApiserver } from "../support/kube.js";
import { installCni, refreshPluginToken, uninstallCni } from "../../src/install/install-cni.js";
import {
  applyManifests,
  installCniFromConfigMap,
  installSettings,
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

  it("kubectl apply -k with the image named once in a kustomization: every container runs it", () => {
    // An overlay as an operator writes it: the shipped kustomization, its image renamed.
    const overlay = join(work, "overlay");
    const manifests = join(ROOT, "manifests");
    mkdirSync(overlay, { recursive: true });
    for (const file of readdirSync(manifests)) {
      copyFileSync(join(manifests, file), join(overlay, file));
    }
    const kustomization = join(overlay, "kustomization.yaml");
    writeFileSync(
      kustomization,
      readFileSync(kustomization, "utf8")
        .replace("newName: buoy", "newName: registry.example/team/buoy")
        .replace('newTag: "0.1.0"', 'newTag: "1.2.3"'),
    );
    const built = kubectl(kube.kubeconfig, "kustomize", overlay);
    expect(built.ok, built.out).toBe(true);
    const images = [...built.answer.matchAll(/^\s+image: (\S+)$/gm)].map((m) => m[1]);
    expect(images.length).toBeGreaterThanOrEqual(5);
    expect(new Set(images)).toEqual(new Set(["registry.example/team/buoy:1.2.3"]));
    const applied = kubectl(kube.kubeconfig, "apply", "-k", overlay);
    expect(applied.ok, applied.out).toBe(true);
    const running = kubectl(
      kube.kubeconfig,
      "-n",
      "kube-system",
      "get",
      "daemonset/buoy-node",
      "-o",
      "jsonpath={.spec.template.spec.containers[*].image}",
    );
    expect(
      running.answer.split(" ").every((image) => image === "registry.example/team/buoy:1.2.3"),
    ).toBe(true);
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

  it("install-cni --refresh-token gives the plugin a new token at half its lifetime, and uninstall still knows the file", async () => {
    const dir = join(work, "refresh");
    const plugin = join(work, "plugin");
    const lines: string[] = [];
    const settings = {
      ...(await installSettings(kube, dir, "node-1", plugin)),
      write: (line: string) => lines.push(line),
    };
    await installCni(settings, "test");
    const path = join(dir, "net.d", "calico-kubeconfig");
    const before = readFileSync(path, "utf8");
    expect(await refreshPluginToken(settings)).toBe(false);
    expect(lines.at(-1)).toMatch(/token valid until .*; not due yet$/);

    // Most of a year later (the default lifetime), it is due. (A second
    // later for real too: a token asked for in the same second is the same.)
    await sleep(1100);
    const later = { ...settings, now: () => new Date(Date.now() + 200 * 24 * 3600 * 1000) };
    expect(await refreshPluginToken(later)).toBe(true);
    expect(lines.at(-1)).toMatch(/^refreshed .*calico-kubeconfig: the token was due/);
    const after = readFileSync(path, "utf8");
    expect(after).not.toBe(before);
    const can = kubectl(path, "auth", "can-i", "get", "pods", "-n", "default").answer;
    expect(can).toBe("yes");

    // A kubeconfig changed by hand is not touched.
    writeFileSync(path, `${after}# edited by hand\n`, { mode: 0o600 });
    expect(await refreshPluginToken(later)).toBe(false);
    expect(lines.at(-1)).toMatch(/changed since install-cni wrote it: left alone/);
    writeFileSync(path, after, { mode: 0o600 });

    await uninstallCni(settings);
    expect(lines.some((line) => line.includes(`removed ${path}`))).toBe(true);
  });
});
