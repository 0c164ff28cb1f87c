// The datastore a CNI config names: etcd (`etcd_endpoints`) or the Kubernetes
// API (`kubernetes.kubeconfig`, as Calico's conflist writes it). The
// Kubernetes modules (a YAML parser, node:https) are imported only when the
// config names them: loaded always, they cost every call about 4 ms of start-up
// (ADR 0001; measured with VERSION, 6.7 against 11.2 ms).
import { readFileSync } from "node:fs";
import type { Datastore } from "../datastore/datastore.js";
import { EtcdDatastore } from "../etcd/etcd-datastore.js";
import {
  EtcdCredentialsError,
  etcdCredentialSourcesFromEnv,
  readEtcdCredentials,
  type EtcdCredentialSources,
} from "../etcd/etcd-credentials.js";
import { EtcdKv } from "../etcd/etcd-kv.js";
import { Store } from "../etcd/store.js";
import { CniCode, CniError } from "./errors.js";
import type { NetConf } from "./netconf.js";

export async function openDatastore(
  conf: NetConf,
  node: string,
  env: Readonly<Record<string, string | undefined>> = {},
): Promise<Datastore> {
  if (conf.datastoreType !== "kubernetes") {
    const endpoints = conf.etcdEndpoints;
    try {
      const credentials = readEtcdCredentials(etcdSources(conf, env), endpoints, (path) =>
        readFileSync(path, "utf8"),
      );
      return new EtcdDatastore(new Store(new EtcdKv({ endpoints, ...credentials })));
    } catch (error) {
      if (error instanceof EtcdCredentialsError) {
        throw new CniError(CniCode.invalidConfig, `invalid network config: ${error.message}`);
      }
      throw error;
    }
  }
  const path = conf.kubeconfig;
  if (!path) {
    throw new CniError(
      CniCode.invalidConfig,
      'invalid network config: datastore_type "kubernetes" needs kubernetes.kubeconfig',
    );
  }
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new CniError(
      CniCode.invalidConfig,
      `cannot read kubeconfig ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
  const [{ createKubeHttp }, { KubernetesDatastore }, { KubeconfigError, parseKubeconfig }] =
    await Promise.all([
      import("../kube/http.js"),
      import("../kube/kube-datastore.js"),
      import("../kube/kubeconfig.js"),
    ]);
  try {
    const credentials = parseKubeconfig(text, path, (file) => readFileSync(file, "utf8"));
    return new KubernetesDatastore(createKubeHttp(credentials), node);
  } catch (error) {
    if (error instanceof KubeconfigError) throw new CniError(CniCode.invalidConfig, error.message);
    throw error;
  }
}

/** The CNI config's keys first (Calico's), then the environment's ETCD_* variables. */
function etcdSources(
  conf: NetConf,
  env: Readonly<Record<string, string | undefined>>,
): EtcdCredentialSources {
  const fromEnv = etcdCredentialSourcesFromEnv(env);
  const key = (value: string, from: string) => (value === "" ? undefined : { value, from });
  const files = conf.etcdTlsFiles;
  return {
    caCertFile: key(files.caCertFile, "etcd_ca_cert_file") ?? fromEnv.caCertFile,
    certFile: key(files.certFile, "etcd_cert_file") ?? fromEnv.certFile,
    keyFile: key(files.keyFile, "etcd_key_file") ?? fromEnv.keyFile,
    username: fromEnv.username,
    password: fromEnv.password,
  };
}
