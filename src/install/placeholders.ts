// Calico's `__NAME__` placeholders: the names install-cni substitutes in the
// conflist template, and what each becomes. A table without dependencies, so
// the CLI's help can list it without loading the renderer.

/** The plugin's log file when LOG_FILE_PATH is not set (the plugin's own default). */
const DEFAULT_LOG_FILE = "/var/log/buoy/cni.log";
const DEFAULT_MTU = 1500;

export interface Placeholder {
  /** The name between the double underscores: `__CNI_MTU__` is CNI_MTU. */
  name: string;
  /** What it becomes, for help texts. */
  meaning: string;
  /** Using it with an empty value is an error (an empty node name or token never works). */
  required: boolean;
}

/**
 * Every placeholder Calico's installer substitutes (cni-plugin's install.go
 * and the older install-cni.sh), and nothing else: an unknown `__X__` left in
 * a template is an error. Buoy's plugin ignores the log rotation and etcd TLS
 * keys; they are substituted so that Calico's templates render.
 */
export const PLACEHOLDERS: readonly Placeholder[] = [
  {
    name: "KUBERNETES_NODE_NAME",
    meaning: "the node's name: KUBERNETES_NODE_NAME, else the hostname",
    required: true,
  },
  {
    name: "CNI_MTU",
    meaning:
      "the pods' MTU: CNI_MTU; empty or 0 (Calico's auto-detect): the MTU of the\n" +
      `interface holding the default route, else ${DEFAULT_MTU}`,
    required: true,
  },
  {
    name: "KUBECONFIG_FILEPATH",
    meaning:
      "the kubeconfig install-cni writes, as the host sees it: CNI_NET_DIR/calico-kubeconfig",
    required: true,
  },
  {
    name: "KUBECONFIG_FILENAME",
    meaning: "its file name, calico-kubeconfig (older Calico templates)",
    required: true,
  },
  {
    name: "KUBERNETES_SERVICE_HOST",
    meaning: "KUBERNETES_SERVICE_HOST (set in every pod)",
    required: true,
  },
  {
    name: "KUBERNETES_SERVICE_PORT",
    meaning: "KUBERNETES_SERVICE_PORT (set in every pod)",
    required: true,
  },
  {
    name: "SERVICEACCOUNT_TOKEN",
    meaning: "the token the plugin speaks to the API server with (the kubeconfig's)",
    required: true,
  },
  { name: "DATASTORE_TYPE", meaning: "DATASTORE_TYPE, default kubernetes", required: true },
  { name: "ETCD_ENDPOINTS", meaning: "ETCD_ENDPOINTS, comma-separated etcd URLs", required: true },
  {
    name: "ETCD_DISCOVERY_SRV",
    meaning: "ETCD_DISCOVERY_SRV (buoy's plugin does not use SRV discovery)",
    required: false,
  },
  {
    name: "ETCD_CERT_FILE",
    meaning: "ETCD_CERT_FILE, the etcd client certificate's path on the host, default empty",
    required: false,
  },
  {
    name: "ETCD_KEY_FILE",
    meaning: "ETCD_KEY_FILE, its key's path, default empty",
    required: false,
  },
  {
    name: "ETCD_CA_CERT_FILE",
    meaning: "ETCD_CA_CERT_FILE, the CA of etcd's server certificate, default empty",
    required: false,
  },
  { name: "LOG_LEVEL", meaning: "LOG_LEVEL, default info", required: true },
  {
    name: "LOG_FILE_PATH",
    meaning: `LOG_FILE_PATH, default ${DEFAULT_LOG_FILE}`,
    required: true,
  },
  { name: "LOG_FILE_MAX_SIZE", meaning: "LOG_FILE_MAX_SIZE, default 100", required: true },
  { name: "LOG_FILE_MAX_AGE", meaning: "LOG_FILE_MAX_AGE, default 30", required: true },
  { name: "LOG_FILE_MAX_COUNT", meaning: "LOG_FILE_MAX_COUNT, default 10", required: true },
];
