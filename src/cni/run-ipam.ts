// IPAM for the main plugin: in-process for buoy's own types (calico-ipam,
// buoy-ipam), else the delegated plugin executed with the same environment
// and config.
import type { AllocationSnapshot } from "../datastore/datastore.js";
import type { CniContext } from "./context.js";
import { CniCode, CniError } from "./errors.js";
import { OWN_IPAM_TYPES, ipamAdd, ipamDel } from "./ipam-plugin.js";
import type { NetConf } from "./netconf.js";
import { parseResult, type CniResult } from "./result.js";

export async function runIpam(
  command: "ADD" | "DEL",
  context: CniContext,
  snapshot?: AllocationSnapshot,
  floatingIps: readonly string[] = [],
  namespaceLabels?: Readonly<Record<string, string>>,
): Promise<CniResult> {
  const { conf, env, store, node, logger, deps } = context;
  if (!conf.ipam.type) {
    throw new CniError(CniCode.invalidConfig, "invalid network config: key 'ipam.type' is missing");
  }
  if (ownIpam(conf)) {
    if (command === "ADD") {
      return ipamAdd(store, conf, env, node, logger, snapshot, floatingIps, namespaceLabels);
    }
    await ipamDel(store, conf, env, node, logger);
    return emptyResult();
  }
  const output = await deps.execPlugin(
    conf.ipam.type,
    { ...context.rawEnv, CNI_COMMAND: command },
    context.stdin,
  );
  if (command === "DEL") return emptyResult();
  try {
    return parseResult(output);
  } catch (error) {
    throw new CniError(
      CniCode.internal,
      `cannot read the result of IPAM plugin ${conf.ipam.type}: ${(error as Error).message}`,
    );
  }
}

export function ownIpam(conf: NetConf): boolean {
  return OWN_IPAM_TYPES.includes(conf.ipam.type);
}

function emptyResult(): CniResult {
  return { interfaces: [], ips: [], routes: [], dns: {} };
}
