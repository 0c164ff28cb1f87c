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
import type { Logger } from "../log/logger.js";
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
  const { text, path } = readKubeconfigText(conf);
  return (await openKube(node, text, path)).datastore;
}

/**
 * The Kubernetes datastore of a kubeconfig; with `logger`, with its watch
 * cache (kube/node-cache.ts), which `stop` ends.
 */
async function openKube(
  node: string,
  text: string,
  path: string,
  logger?: Logger,
): Promise<{ datastore: Datastore; stop(): void }> {
  const [{ createKubeHttp }, { KubernetesDatastore }, { KubeconfigError, parseKubeconfig }] =
    await Promise.all([
      import("../kube/http.js"),
      import("../kube/kube-datastore.js"),
      import("../kube/kubeconfig.js"),
    ]);
  let http;
  try {
    http = createKubeHttp(parseKubeconfig(text, path, (file) => readFileSync(file, "utf8")));
  } catch (error) {
    if (error instanceof KubeconfigError) throw new CniError(CniCode.invalidConfig, error.message);
    throw error;
  }
  if (!logger) return { datastore: new KubernetesDatastore(http, node), stop: () => {} };
  const { NodeCache } = await import("../kube/node-cache.js");
  const cache = new NodeCache(http, node, logger);
  return { datastore: new KubernetesDatastore(http, node, cache), stop: () => cache.stop() };
}

/** The most kubeconfigs (and nodes) whose caches a resident server keeps at once. */
const MAX_RESIDENT = 4;

/**
 * The resident server's openDatastore (ADR 0013): on Kubernetes one
 * datastore per node and kubeconfig (its text: a rotated token is a new
 * one), kept with its watch cache of the pools, the node's blocks and its
 * Node (kube/node-cache.ts) across requests; etcd as openDatastore.
 */
export function residentDatastores(logger: Logger): {
  open: typeof openDatastore;
  stop(): void;
} {
  const open = new Map<string, { datastore: Datastore; stop(): void }>();
  return {
    async open(conf, node, env = {}) {
      if (conf.datastoreType !== "kubernetes") return openDatastore(conf, node, env);
      const { text, path } = readKubeconfigText(conf);
      const key = `${node}\0${path}\0${text}`;
      const kept = open.get(key);
      if (kept) return kept.datastore;
      const entry = await openKube(node, text, path, logger);
      open.set(key, entry);
      for (const [oldest, { stop }] of open) {
        if (open.size <= MAX_RESIDENT) break;
        stop();
        open.delete(oldest);
      }
      return entry.datastore;
    },
    stop() {
      for (const { stop } of open.values()) stop();
      open.clear();
    },
  };
}

function readKubeconfigText(conf: NetConf): { text: string; path: string } {
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
  return { text, path };
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
