// calico-ipam / buoy-ipam: block IPAM from the datastore. Also called
// in-process by the main plugin when the conflist names it (one exec saved).
import type { AllocationSnapshot, Datastore } from "../datastore/datastore.js";
import type { AllocationOwner } from "../model/records.js";
import { assignAddress, releaseHandle } from "../ipam/ipam.js";
import type { Logger } from "../log/logger.js";
import type { CniEnv } from "./env.js";
import type { NetConf } from "./netconf.js";
import type { CniResult } from "./result.js";
import { CniCode, CniError } from "./errors.js";

export const OWN_IPAM_TYPES: readonly string[] = ["calico-ipam", "buoy-ipam"];

/** Calico's handle: the network name and the container ID. */
export function handleFor(conf: NetConf, containerID: string): string {
  return `${conf.name}.${containerID}`;
}

export async function ipamAdd(
  store: Datastore,
  conf: NetConf,
  env: CniEnv,
  node: string,
  logger: Logger,
  snapshot?: AllocationSnapshot,
  exclude: readonly string[] = [],
  namespaceLabels?: Readonly<Record<string, string>>,
): Promise<CniResult> {
  if (!conf.ipam.assignIpv4 && !conf.ipam.assignIpv6) {
    throw new CniError(
      CniCode.invalidConfig,
      "invalid network config: assign_ipv4 and assign_ipv6 are both false",
    );
  }
  const owner: AllocationOwner = {
    handle: handleFor(conf, env.containerID),
    node,
    network: conf.name,
    containerID: env.containerID,
    ...(env.args.namespace ? { namespace: env.args.namespace } : {}),
    ...(env.args.pod ? { pod: env.args.pod } : {}),
  };
  const known = namespaceLabels ? { namespaceLabels } : {};
  const result: CniResult = { interfaces: [], ips: [], routes: [], dns: {} };
  try {
    if (conf.ipam.assignIpv4) {
      const ip = await assignAddress(
        store,
        { family: 4, owner, pools: conf.ipam.ipv4Pools, exclude, ...known },
        snapshot,
      );
      result.ips.push({ address: `${ip}/32` });
    }
    if (conf.ipam.assignIpv6) {
      const ip = await assignAddress(
        store,
        { family: 6, owner, pools: conf.ipam.ipv6Pools, exclude, ...known },
        snapshot,
      );
      result.ips.push({ address: `${ip}/128` });
    }
  } catch (error) {
    // The addresses assigned so far, read by name: a cached list may not have them yet.
    const assigned = result.ips.map((ip) => ip.address.split("/")[0] ?? ip.address);
    await releaseHandle(store, owner.handle, node, assigned);
    throw error;
  }
  logger.log("info", "ipam.assign", {
    handle: owner.handle,
    ips: result.ips.map((ip) => ip.address),
  });
  return result;
}

export async function ipamDel(
  store: Datastore,
  conf: NetConf,
  env: CniEnv,
  node: string,
  logger: Logger,
): Promise<void> {
  const handle = handleFor(conf, env.containerID);
  const released = await releaseHandle(store, handle, node);
  logger.log("info", "ipam.release", { handle, ips: released });
}
