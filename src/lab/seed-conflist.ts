// The CNI network config the lab's runtime uses: the seed's conflist
// (test/fixtures/seed-cni-network-config.json, the cni_network_config of
// Calico's manifest with floating IPs on), copied verbatim as the lab's asset
// and rendered for the lab by the installer's renderer, then pointed at the
// lab's etcd. Pure.
import { renderCniNetworkConfig } from "../install/render.js";

/** The seed's cni_network_config template, unchanged (placeholders `__NAME__`). */
export const SEED_CNI_NETWORK_CONFIG = `
{
  "name": "k8s-pod-network",
  "cniVersion": "0.3.0",
  "plugins": [
    {
      "type": "calico",
      "log_level": "info",
      "datastore_type": "kubernetes",
      "nodename": "__KUBERNETES_NODE_NAME__",
      "mtu": __CNI_MTU__,
      "ipam": {
          "type": "calico-ipam"
      },
      "policy": {
          "type": "k8s"
      },
      "kubernetes": {
          "kubeconfig": "__KUBECONFIG_FILEPATH__"
      },
      "feature_control": {
          "floating_ips": true
      }
    },
    {
      "type": "portmap",
      "snat": true,
      "capabilities": {"portMappings": true}
    }
  ]
}
`;

export interface Conflist {
  name: string;
  cniVersion?: string;
  plugins: Record<string, unknown>[];
}

export interface LabConflistValues {
  nodeName: string;
  etcdEndpoint: string;
  /** Where the plugin logs (inside the lab's state directory). */
  logFilePath: string;
  mtu?: number;
  /** Dual-stack pods: the IPAM assigns an IPv6 address too (Calico's assign_ipv6). */
  ipv6?: boolean;
  /** The node agent's CNI server (`agent_socket`, ADR 0013). */
  agentSocket?: string;
}

/**
 * The seed conflist for one lab node: placeholders rendered as the installer
 * would (nodename, MTU 1500), then the calico entry switched to the lab's etcd
 * (`datastore_type: etcdv3`, no kubeconfig), told where to log, and given the
 * capability that makes a runtime pass the pod's annotations in runtimeConfig.
 * For dual-stack pods the IPAM gets `assign_ipv4`/`assign_ipv6` "true", as in
 * Calico's dual-stack manifests; with `agentSocket` the plugin hands its work
 * to the node's agent.
 */
export function renderLabConflist(values: LabConflistValues): Conflist {
  const rendered = renderCniNetworkConfig(
    SEED_CNI_NETWORK_CONFIG,
    new Map([
      ["KUBERNETES_NODE_NAME", values.nodeName],
      ["CNI_MTU", String(values.mtu ?? 1500)],
      // Dropped below with the rest of the kubernetes datastore's settings.
      ["KUBECONFIG_FILEPATH", "/etc/cni/net.d/calico-kubeconfig"],
    ]),
  );
  if (!rendered.ok)
    throw new Error(`the seed template does not render: ${rendered.errors.join("; ")}`);
  const conflist = JSON.parse(rendered.text) as Conflist;
  conflist.plugins = conflist.plugins.map((plugin) => {
    if (plugin.type !== "calico") return plugin;
    const rest = { ...plugin };
    delete rest.kubernetes;
    return {
      ...rest,
      datastore_type: "etcdv3",
      etcd_endpoints: values.etcdEndpoint,
      log_file_path: values.logFilePath,
      ...(values.agentSocket ? { agent_socket: values.agentSocket } : {}),
      ...(values.ipv6
        ? { ipam: { ...(rest.ipam as object), assign_ipv4: "true", assign_ipv6: "true" } }
        : {}),
      feature_control: { floating_ips: true },
      capabilities: { "io.kubernetes.cri.pod-annotations": true },
    };
  });
  return conflist;
}
