// Which datastore the CLI talks to, chosen like calicoctl: DATASTORE_TYPE,
// ETCD_ENDPOINTS or KUBECONFIG, each also read with Calico's CALICO_ prefix;
// the --etcd-endpoints flag wins over the environment. Without
// DATASTORE_TYPE: etcdv3 when etcd endpoints are given, else kubernetes when
// there is a kubeconfig (main.ts fills in kubectl's ~/.kube/config) or the
// CLI runs in a pod, else etcdv3 at its default endpoint.
import { CliError } from "./cli-error.js";

export interface EtcdDatastoreConfig {
  type: "etcdv3";
  endpoints: string[];
}

export interface KubernetesDatastoreConfig {
  type: "kubernetes";
  /** The kubeconfig file; undefined: the in-cluster service account (a pod of the DaemonSet). */
  kubeconfig: string | undefined;
}

export type DatastoreConfig = EtcdDatastoreConfig | KubernetesDatastoreConfig;

export const DEFAULT_ETCD_ENDPOINTS = "http://127.0.0.1:2379";

/**
 * `choose`: pick a datastore from what is there when DATASTORE_TYPE is
 * unset (the CLI's commands); false for the services (agent, controller),
 * whose datastore an install names and must not change with what a host
 * happens to hold (a ~/.kube/config): etcdv3 then, as always.
 */
export function parseDatastoreConfig(
  env: Readonly<Record<string, string | undefined>>,
  endpointsFlag?: string,
  choose = true,
): DatastoreConfig {
  const type =
    (env.DATASTORE_TYPE ?? env.CALICO_DATASTORE_TYPE ?? "").trim() ||
    (choose ? defaultType(env, endpointsFlag) : "etcdv3");
  if (type === "kubernetes") {
    const kubeconfig = (env.KUBECONFIG ?? env.CALICO_KUBECONFIG ?? "").trim();
    return { type, kubeconfig: kubeconfig === "" ? undefined : kubeconfig };
  }
  if (type !== "etcdv3") {
    throw new CliError(
      `unknown datastore type "${type}" in DATASTORE_TYPE; use etcdv3 or kubernetes`,
    );
  }
  const [source, text] =
    endpointsFlag !== undefined
      ? ["--etcd-endpoints", endpointsFlag]
      : env.ETCD_ENDPOINTS !== undefined
        ? ["ETCD_ENDPOINTS", env.ETCD_ENDPOINTS]
        : env.CALICO_ETCD_ENDPOINTS !== undefined
          ? ["CALICO_ETCD_ENDPOINTS", env.CALICO_ETCD_ENDPOINTS]
          : ["the default", DEFAULT_ETCD_ENDPOINTS];
  const endpoints = text
    .split(",")
    .map((endpoint) => endpoint.trim())
    .filter((endpoint) => endpoint !== "");
  if (endpoints.length === 0) throw new CliError(`${source} lists no etcd endpoints`);
  for (const endpoint of endpoints) {
    if (!/^https?:\/\/[^/]+/.test(endpoint) || !URL.canParse(endpoint)) {
      throw new CliError(
        `etcd endpoint '${endpoint}' from ${source} is not an http:// or https:// URL`,
      );
    }
  }
  return { type, endpoints };
}

function defaultType(
  env: Readonly<Record<string, string | undefined>>,
  endpointsFlag: string | undefined,
): "etcdv3" | "kubernetes" {
  const given = (name: string) => (env[name] ?? "").trim() !== "";
  if (endpointsFlag !== undefined || given("ETCD_ENDPOINTS") || given("CALICO_ETCD_ENDPOINTS")) {
    return "etcdv3";
  }
  return given("KUBECONFIG") || given("CALICO_KUBECONFIG") || given("KUBERNETES_SERVICE_HOST")
    ? "kubernetes"
    : "etcdv3";
}
