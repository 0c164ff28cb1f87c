// The CNI work done for the executable by the resident agent (ADR 0013): the
// same runCni, with the agent's warm connections and loaded code. The agent
// serves a request only where its view of the host is the executable's; when
// it is not, it does nothing and says why, and the executable does the work
// itself.
import { dirname } from "node:path";
import type { ForwardReply, ForwardRequest } from "./agent-wire.js";
import { OWN_IPAM_TYPES } from "./ipam-plugin.js";
import { decodeNetConfJson, parseNetConf, type NetConf } from "./netconf.js";
import { runCni, type CniDeps } from "./plugin.js";

export interface HostView {
  /** The agent's own network namespace, as `readlink /proc/self/ns/net` names it. */
  netns: string;
  /** Whether the agent sees `path` (a mount the agent's container may lack). */
  exists(path: string): boolean;
}

/**
 * Why the agent must leave `request` to the executable, or undefined to
 * serve it. A config that does not parse is served: runCni answers it with
 * the same error the executable would.
 */
export function fallbackReason(request: ForwardRequest, view: HostView): string | undefined {
  if (request.netns !== view.netns) {
    return `the plugin runs in network namespace ${request.netns}, the agent in ${view.netns}`;
  }
  let conf: NetConf;
  try {
    conf = parseNetConf(decodeNetConfJson(request.stdin));
  } catch {
    return undefined;
  }
  if (request.role === "plugin" && !OWN_IPAM_TYPES.includes(conf.ipam.type)) {
    return `ipam type ${JSON.stringify(conf.ipam.type)} is another plugin's`;
  }
  const needed = [
    ["CNI_NETNS", request.env.CNI_NETNS ?? ""],
    ["the log directory", dirname(conf.logFilePath)],
    ["kubernetes.kubeconfig", conf.datastoreType === "kubernetes" ? (conf.kubeconfig ?? "") : ""],
    ["etcd_ca_cert_file", conf.etcdTlsFiles.caCertFile],
    ["etcd_cert_file", conf.etcdTlsFiles.certFile],
    ["etcd_key_file", conf.etcdTlsFiles.keyFile],
  ];
  for (const [what, path] of needed) {
    if (path && !view.exists(path)) return `${what} ${path} is not visible to the agent`;
  }
  return undefined;
}

/** Serves one request: a fallback, or runCni's answer. */
export async function serveCni(
  request: ForwardRequest,
  view: HostView,
  deps: Omit<CniDeps, "hostname">,
): Promise<ForwardReply> {
  const reason = fallbackReason(request, view);
  if (reason !== undefined) return { kind: "fallback", reason };
  const response = await runCni(
    { role: request.role, env: request.env, stdin: request.stdin },
    { ...deps, hostname: () => request.hostname, served: "agent" },
  );
  return { kind: "done", ...response };
}
