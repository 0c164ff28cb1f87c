// buoy's manifests against a real kube-apiserver v1.20.2: they apply cleanly
// (CRDs established, RBAC, the calico-config ConfigMap, the DaemonSets
// accepted), and install-cni, fed the ConfigMap's template as the DaemonSet
// feeds it, writes a conflist the plugin accepts and a kubeconfig whose
// service account has exactly the plugin's rights.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installCni } from "../../src/install/install-cni.js";
import { validateConflist } from "../../src/install/render.js";
import { parseKubeconfig } from "../../src/kube/kubeconfig.js";
import { ROOT, runPrefix, sleep } from "../support/harness.js";
import { KUBE_BIN, startKubeApiserver, type KubeApiserver } from "../support/kube.js";

const MANIFESTS = ["crds.yaml", "rbac.yaml", "calico-config.yaml", "daemonset.yaml"];

let kube: KubeApiserver;
let work: string;

const kubectl = (kubeconfig: string, ...args: string[]) => {
  const result = spawnSync(join(KUBE_BIN, "kubectl"), ["--kubeconfig", kubeconfig, ...args], {
    encoding: "utf8",
  });
  return {
    ok: result.status === 0,
    out: `${result.stdout}${result.stderr}`.trim(),
    answer: result.stdout.trim(),
  };
};

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
    for (const file of MANIFESTS) {
      const applied = kubectl(kube.kubeconfig, "apply", "-f", join(ROOT, "manifests", file));
      expect(applied.ok, `${file}: ${applied.out}`).toBe(true);
    }
    const crds = (await kube.admin.json(
      "GET",
      "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
    )) as {
      items: {
        metadata: { name: string };
        status?: { conditions?: { type: string; status: string }[] };
      }[];
    };
    const buoy = crds.items.filter((crd) => crd.metadata.name.endsWith(".buoy.dev"));
    expect(buoy.length).toBeGreaterThanOrEqual(5);
    const deadline = Date.now() + 20_000;
    for (const crd of buoy) {
      let established = false;
      while (!established && Date.now() < deadline) {
        const current = (await kube.admin.json(
          "GET",
          `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`,
        )) as { status?: { conditions?: { type: string; status: string }[] } };
        established = (current.status?.conditions ?? []).some(
          (condition) => condition.type === "Established" && condition.status === "True",
        );
        if (!established) await sleep(100);
      }
      expect(established, `${crd.metadata.name} established`).toBe(true);
    }
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
    const configMap = (await kube.admin.json(
      "GET",
      "/api/v1/namespaces/kube-system/configmaps/calico-config",
    )) as { data: Record<string, string> };
    const template = configMap.data.cni_network_config;
    expect(template).toBeDefined();

    // The DaemonSet pod's service account, as the kubelet mounts it.
    const serviceAccountDir = join(work, "serviceaccount");
    mkdirSync(serviceAccountDir, { recursive: true });
    writeFileSync(
      join(serviceAccountDir, "token"),
      await kube.serviceAccountToken("kube-system", "buoy-node"),
    );
    writeFileSync(join(serviceAccountDir, "ca.crt"), kube.ca);
    writeFileSync(join(serviceAccountDir, "namespace"), "kube-system");
    const plugin = join(work, "plugin");
    writeFileSync(plugin, "#!/bin/sh\n");
    const url = new URL(kube.server);
    const confDir = join(work, "net.d");
    const lines: string[] = [];
    await installCni(
      {
        pluginPath: plugin,
        binDir: join(work, "bin"),
        confDir,
        serviceAccountDir,
        procNetRoute: "/nonexistent",
        sysClassNet: "/nonexistent",
        hostname: "node-1",
        env: {
          CNI_NETWORK_CONFIG: template,
          KUBERNETES_NODE_NAME: "node-1",
          KUBERNETES_SERVICE_HOST: url.hostname,
          KUBERNETES_SERVICE_PORT: url.port,
          CNI_MTU: configMap.data.veth_mtu,
          CNI_NET_DIR: confDir,
          CNI_SERVICE_ACCOUNT: "buoy-cni-plugin",
        },
        write: (line) => lines.push(line),
      },
      "test",
    );

    const conflist = readFileSync(join(confDir, "10-calico.conflist"), "utf8");
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
    expect(kubeconfigPath).toBe(join(confDir, "calico-kubeconfig"));
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
