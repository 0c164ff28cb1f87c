// What every CNI command of one invocation works with: the parsed
// environment and config, the datastore it opened, the node, the logger and
// the deps the entry was given (plugin.ts builds it once per request).
import type { Datastore } from "../datastore/datastore.js";
import type { PodNetwork } from "../dataplane/shell/linux-pod-network.js";
import type { Logger } from "../log/logger.js";
import type { ExecPlugin } from "./delegate.js";
import type { CniEnv } from "./env.js";
import type { NetConf } from "./netconf.js";

export interface CniDeps {
  /** `node`: this node's name (Events name it as their source). */
  /** `env`: the plugin's environment (etcd's ETCD_* credentials). */
  openDatastore(
    conf: NetConf,
    node: string,
    env: Readonly<Record<string, string | undefined>>,
  ): Datastore | Promise<Datastore>;
  podNetwork: PodNetwork;
  execPlugin: ExecPlugin;
  hostname(): string;
  now(): Date;
  /** Overrides the log file from the config (tests). */
  logger?: Logger;
  /** Set when the resident agent does the work for the executable (ADR 0013); logged as `via`. */
  served?: "agent";
}

export interface CniContext {
  env: CniEnv;
  conf: NetConf;
  store: Datastore;
  node: string;
  logger: Logger;
  deps: CniDeps;
  rawEnv: Readonly<Record<string, string | undefined>>;
  stdin: string;
}

/** The records of this container and interface, and (Kubernetes) its pod. */
export function releaseTarget(context: CniContext, node: string) {
  const { env } = context;
  return {
    node,
    containerID: env.containerID,
    ifname: env.ifname,
    ...(env.args.namespace ? { namespace: env.args.namespace } : {}),
    ...(env.args.pod ? { pod: env.args.pod } : {}),
  };
}
