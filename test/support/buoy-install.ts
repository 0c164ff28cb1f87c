// buoy installed on a test API server the way a cluster gets it: the
// manifests applied with kubectl (CRDs waited for until established), and
// install-cni run as the DaemonSet's init container runs it, fed the
// ConfigMap's template, with the buoy-node service account's token.
import { spawnSync } from "node:child_process";
import {
  copyFileSync,
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { parseAllDocuments } from "yaml";
import { installCni, type InstallSettings } from "../../src/install/install-cni.js";
import { parseNetConf, type NetConf } from "../../src/cni/netconf.js";
import { createKubeHttp, type KubeHttp } from "../../src/kube/http.js";
import { parseKubeconfig } from "../../src/kube/kubeconfig.js";
import { CNI_DIR, ROOT, sleep, SYSTEM_CNI_DIR, type Conflist } from "./harness.js";
import { KUBE_BIN, type KubeApiserver } from "./kube.js";
import {
  pointBuoyAtApiServer,
  startKubeNode,
  type KubeNode,
  type KubeNodeOptions,
} from "./kube-node.js";

export const MANIFESTS = ["crds.yaml", "rbac.yaml", "calico-config.yaml", "daemonset.yaml"];

export function kubectl(kubeconfig: string, ...args: string[]) {
  const result = spawnSync(join(KUBE_BIN, "kubectl"), ["--kubeconfig", kubeconfig, ...args], {
    encoding: "utf8",
  });
  return {
    ok: result.status === 0,
    out: `${result.stdout}${result.stderr}`.trim(),
    answer: result.stdout.trim(),
  };
}

type Json = Record<string, unknown>;

/** Where daemonSetFor puts the CNI server's socket, beside a node's CNI directories. */
export function cniServerSocketFor(cniConf: string): string {
  return join(dirname(cniConf), "buoy-run", "cni", "cni.sock");
}

/**
 * A DaemonSet as a file of manifests/ has it, as JSON for `kubectl apply -f -`,
 * its CNI host paths (and the conflist's kubeconfig path) set to a node's
 * kubelet CNI directories, and the CNI server's socket directory to one of
 * this run's (cniServerSocketFor: a conflist finds it there only when told,
 * calicoConfigWithServer).
 */
export function daemonSetFor(
  cniBin: string,
  cniConf: string,
  file = "daemonset.yaml",
  name = "buoy-node",
): string {
  const text = readFileSync(join(ROOT, "manifests", file), "utf8");
  const objects = parseAllDocuments(text).map((doc) => doc.toJSON() as Json);
  const set = objects.find(
    (object) => object.kind === "DaemonSet" && (object.metadata as Json | undefined)?.name === name,
  ) as Json;
  const spec = ((set.spec as Json).template as Json).spec as Json;
  const socket = cniServerSocketFor(cniConf);
  const runDir = dirname(dirname(socket));
  for (const volume of spec.volumes as Json[]) {
    const hostPath = volume.hostPath as Json | undefined;
    if (volume.name === "cni-bin-dir" && hostPath) hostPath.path = cniBin;
    if (volume.name === "cni-net-dir" && hostPath) hostPath.path = cniConf;
    if (volume.name === "buoy-run" && hostPath) hostPath.path = runDir;
  }
  for (const container of spec.containers as Json[]) {
    if (container.name !== "buoy-cni") continue;
    // The server sees the conflist's paths where the host has them.
    for (const mount of container.volumeMounts as Json[]) {
      if (mount.name === "cni-net-dir") mount.mountPath = cniConf;
      if (mount.name === "buoy-run") mount.mountPath = runDir;
    }
    const resocket = (words: string[]) =>
      words.map((word) => (word.startsWith("--socket=") ? `--socket=${socket}` : word));
    container.command = resocket(container.command as string[]);
    const probe = (container.livenessProbe as Json | undefined)?.exec as Json | undefined;
    if (probe) probe.command = resocket(probe.command as string[]);
  }
  for (const container of spec.initContainers as Json[]) {
    for (const variable of (container.env as Json[] | undefined) ?? []) {
      if (variable.name === "CNI_NET_DIR") variable.value = cniConf;
    }
  }
  return JSON.stringify(set);
}

/** manifests/calico-config.yaml with its conflist naming `socket` as agent_socket, as JSON. */
export function calicoConfigWithServer(socket: string): string {
  const text = readFileSync(join(ROOT, "manifests", "calico-config.yaml"), "utf8");
  const config = parseAllDocuments(text)
    .map((doc) => doc.toJSON() as Json)
    .find((object) => object.kind === "ConfigMap") as Json;
  const data = config.data as Record<string, string>;
  data.cni_network_config = (data.cni_network_config ?? "").replace(
    '"type": "calico",',
    `"type": "calico",\n          "agent_socket": ${JSON.stringify(socket)},`,
  );
  return JSON.stringify(config);
}

/** Applies `files` from manifests/; throws with kubectl's words when one fails. */
export function applyManifests(kube: KubeApiserver, files: readonly string[] = MANIFESTS): void {
  for (const file of files) {
    const applied = kubectl(kube.kubeconfig, "apply", "-f", join(ROOT, "manifests", file));
    if (!applied.ok) throw new Error(`kubectl apply ${file}: ${applied.out}`);
  }
}

type Crd = {
  metadata: { name: string };
  status?: { conditions?: { type: string; status: string }[] };
};

/** Waits until every buoy.dev CRD is Established; resolves to their names. */
export async function waitForBuoyCrds(kube: KubeApiserver, timeoutMs = 20_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const list = await kube.admin.json<{ items: Crd[] }>(
      "GET",
      "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
    );
    const buoy = list.items.filter((crd) => crd.metadata.name.endsWith(".buoy.dev"));
    const pending = buoy.filter(
      (crd) =>
        !(crd.status?.conditions ?? []).some(
          (condition) => condition.type === "Established" && condition.status === "True",
        ),
    );
    if (buoy.length > 0 && pending.length === 0) return buoy.map((crd) => crd.metadata.name);
    if (Date.now() > deadline) {
      throw new Error(
        `CRDs not established: ${pending.map((crd) => crd.metadata.name).join(", ")}`,
      );
    }
    await sleep(100);
  }
}

/** Creates buoy IPPool objects, by name and spec (Calico's fields). */
export async function createKubePools(
  kube: KubeApiserver,
  pools: Record<
    string,
    { cidr: string; disabled?: boolean; natOutgoing?: boolean; namespaceSelector?: string }
  >,
): Promise<void> {
  for (const [name, spec] of Object.entries(pools)) {
    await kube.admin.json("POST", "/apis/buoy.dev/v1/ippools", {
      apiVersion: "buoy.dev/v1",
      kind: "IPPool",
      metadata: { name },
      spec,
    });
  }
}

/**
 * Runs install-cni for `node` into `work` (bin/, net.d/) from the cluster's
 * calico-config ConfigMap; resolves to the conflist's path.
 */
export async function installCniFromConfigMap(
  kube: KubeApiserver,
  work: string,
  node: string,
  pluginPath: string,
): Promise<string> {
  const settings = await installSettings(kube, work, node, pluginPath);
  await installCni(settings, "test");
  return join(settings.confDir, "10-calico.conflist");
}

/**
 * Applies buoy's CRDs, RBAC and ConfigMap, installs the CNI for `node` into
 * `work` as install-cni does, and resolves to the plugin's config as the
 * runtime hands it over: the conflist's first plugin, with the list's name
 * and version (its kubeconfig holds the plugin's own token).
 */
export async function installPluginConf(
  kube: KubeApiserver,
  work: string,
  node: string,
): Promise<NetConf> {
  applyManifests(kube, ["crds.yaml", "rbac.yaml", "calico-config.yaml"]);
  await waitForBuoyCrds(kube);
  const path = await installCniFromConfigMap(kube, work, node, join(CNI_DIR, "buoy"));
  const conflist = JSON.parse(readFileSync(path, "utf8")) as Conflist;
  return parseNetConf({
    ...conflist.plugins[0],
    name: conflist.name,
    cniVersion: conflist.cniVersion,
  });
}

/** The plugin's own HTTPS client, from the kubeconfig (its token) of installPluginConf()'s `conf`. */
export function pluginKubeHttp(conf: NetConf): KubeHttp {
  const kubeconfig = conf.kubeconfig ?? "";
  return createKubeHttp(
    parseKubeconfig(readFileSync(kubeconfig, "utf8"), kubeconfig, (file) =>
      readFileSync(file, "utf8"),
    ),
  );
}

/**
 * install-cni's settings as the DaemonSet gives them on `node`: the cluster's
 * ConfigMap template, the buoy-node account's files under `work`.
 */
export async function installSettings(
  kube: KubeApiserver,
  work: string,
  node: string,
  pluginPath: string,
): Promise<InstallSettings> {
  const configMap = await kube.admin.json<{ data: Record<string, string> }>(
    "GET",
    "/api/v1/namespaces/kube-system/configmaps/calico-config",
  );
  const template = configMap.data.cni_network_config;
  if (!template) throw new Error("calico-config has no cni_network_config");
  // The DaemonSet pod's service account, as the kubelet mounts it.
  const serviceAccountDir = join(work, "serviceaccount");
  mkdirSync(serviceAccountDir, { recursive: true });
  writeFileSync(
    join(serviceAccountDir, "token"),
    await kube.serviceAccountToken("kube-system", "buoy-node"),
  );
  writeFileSync(join(serviceAccountDir, "ca.crt"), kube.ca);
  writeFileSync(join(serviceAccountDir, "namespace"), "kube-system");
  const url = new URL(kube.server);
  const confDir = join(work, "net.d");
  return {
    pluginPath,
    binDir: join(work, "bin"),
    confDir,
    serviceAccountDir,
    procNetRoute: "/nonexistent",
    sysClassNet: "/nonexistent",
    hostname: node,
    env: {
      CNI_NETWORK_CONFIG: template,
      KUBERNETES_NODE_NAME: node,
      KUBERNETES_SERVICE_HOST: url.hostname,
      KUBERNETES_SERVICE_PORT: url.port,
      ...(configMap.data.veth_mtu ? { CNI_MTU: configMap.data.veth_mtu } : {}),
      CNI_NET_DIR: confDir,
      CNI_SERVICE_ACCOUNT: "buoy-cni-plugin",
    },
    write: () => {},
  };
}

/** The image `npm run image` builds, as the node tests import it. */
export const BUOY_IMAGE_ARCHIVE = join(ROOT, "dist/buoy-image.tar");

export interface NodeWithBuoy {
  node: KubeNode;
  /** The kubelet's CNI directories, the DaemonSet's host paths. */
  cniBin: string;
  cniConf: string;
}

/**
 * A real node (startKubeNode) with buoy installed the way a cluster gets it
 * (issue 6): the image of `npm run image` imported into its containerd, the
 * CRDs and RBAC applied with kubectl, calico-config naming this run's CNI
 * server socket, the kubernetes-services-endpoint ConfigMap (no kube-proxy
 * here), and the buoy-node DaemonSet with its CNI host paths set to the
 * kubelet's directories under `work` (loopback and portmap copied in).
 * Resolves once all is applied; the DaemonSet's pod is not waited for.
 */
export async function startNodeWithBuoy(
  work: string,
  options: Omit<KubeNodeOptions, "cniBinDir" | "cniConfDir"> = {},
): Promise<NodeWithBuoy> {
  if (!existsSync(BUOY_IMAGE_ARCHIVE)) {
    throw new Error(`${BUOY_IMAGE_ARCHIVE} missing: run npm run image`);
  }
  const cniBin = join(work, "bin");
  const cniConf = join(work, "net.d");
  mkdirSync(cniBin, { recursive: true });
  mkdirSync(cniConf, { recursive: true });
  for (const plugin of ["loopback", "portmap"]) {
    copyFileSync(join(SYSTEM_CNI_DIR, plugin), join(cniBin, plugin));
    chmodSync(join(cniBin, plugin), 0o755);
  }
  // Service-account tokens in pods, as in any cluster (the API-server tests turn that off).
  const node = await startKubeNode({
    serviceAccountAdmission: true,
    ...options,
    cniBinDir: cniBin,
    cniConfDir: cniConf,
  });
  const fail = (what: string, out: string): never => {
    throw new Error(`${what}: ${out}`);
  };
  try {
    const imported = node.ctr("images", "import", "--snapshotter", "native", BUOY_IMAGE_ARCHIVE);
    if (!imported.ok) fail("ctr images import", imported.out);
    applyManifests(node.kube, ["crds.yaml", "rbac.yaml"]);
    // The seed's conflist, told where this run's CNI server listens (ADR 0013).
    const config = node.kubectlIn(
      calicoConfigWithServer(cniServerSocketFor(cniConf)),
      "apply",
      "-f",
      "-",
    );
    if (!config.ok) fail("kubectl apply calico-config", config.out);
    await waitForBuoyCrds(node.kube);
    // No kube-proxy on this node: buoy's pods reach the API server directly,
    // the way Calico's manifests allow (the ConfigMap the DaemonSet reads).
    const endpoint = pointBuoyAtApiServer(node);
    if (!endpoint.ok) fail("kubectl apply kubernetes-services-endpoint", endpoint.out);
    const applied = node.kubectlIn(daemonSetFor(cniBin, cniConf), "apply", "-f", "-");
    if (!applied.ok) fail("kubectl apply the buoy-node DaemonSet", applied.out);
  } catch (error) {
    await node.stop();
    throw error;
  }
  return { node, cniBin, cniConf };
}

/**
 * What a node test prints when something does not happen: every pod, the
 * last events, and the last lines of each buoy-node container (and its
 * previous run), then of `extra` (label selector in kube-system, container).
 */
export function buoyDiagnostics(
  node: KubeNode,
  extra: { selector: string; container: string }[] = [],
): string {
  const pods = node.kubectl("get", "pods", "-A", "-o", "wide").out;
  const events = node.kubectl("get", "events", "-A").out.split("\n").slice(-25).join("\n");
  const logs = [
    ...["install-cni", "buoy-agent", "cni-token", "bird", "buoy-cni"].map((container) => ({
      selector: "k8s-app=buoy-node",
      container,
    })),
    ...extra,
  ]
    .map(({ selector, container }) => {
      const args = ["logs", "-n", "kube-system", "-l", selector, "-c", container];
      const now = node.kubectl(...args, "--tail=15").out;
      const before = node.kubectl(...args, "--previous", "--tail=15").out;
      return `--- ${container}:\n${now}\n--- ${container} (previous):\n${before}`;
    })
    .join("\n");
  return `${pods}\n${events}\n${logs}`;
}
