// The datastore a CNI config names: etcd (`etcd_endpoints`) or the Kubernetes
// API (`kubernetes.kubeconfig`, as Calico's conflist writes it).
import { readFileSync } from "node:fs";
import type { Datastore } from "../datastore/datastore.js";
import { EtcdDatastore } from "../datastore/etcd-datastore.js";
import { EtcdKv } from "../datastore/etcd-kv.js";
import { Store } from "../datastore/store.js";
import { createKubeHttp } from "../kube/http.js";
import { KubernetesDatastore } from "../kube/kube-datastore.js";
import { KubeconfigError, parseKubeconfig } from "../kube/kubeconfig.js";
import { CniCode, CniError } from "./errors.js";
import type { NetConf } from "./netconf.js";

export function openDatastore(conf: NetConf, node: string): Datastore {
  if (conf.datastoreType !== "kubernetes") {
    return new EtcdDatastore(new Store(new EtcdKv({ endpoints: conf.etcdEndpoints })));
  }
  const path = conf.kubeconfig;
  if (!path) {
    throw new CniError(
      CniCode.invalidConfig,
      'invalid network config: datastore_type "kubernetes" needs kubernetes.kubeconfig',
    );
  }
  try {
    const read = (file: string) => readFileSync(file, "utf8");
    let text: string;
    try {
      text = read(path);
    } catch (error) {
      throw new KubeconfigError(
        `cannot read kubeconfig ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      );
    }
    return new KubernetesDatastore(createKubeHttp(parseKubeconfig(text, path, read)), node);
  } catch (error) {
    if (error instanceof KubeconfigError) throw new CniError(CniCode.invalidConfig, error.message);
    throw error;
  }
}
