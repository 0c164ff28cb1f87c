// CNI CHECK: the endpoint recorded, both sides of the pair as ADD set them
// up, and every floating IP the endpoint names claimed by this container.
import { hostInterfaceName, podMacAddress, type PodNetworkPlan } from "../dataplane/pod-network.js";
import { releaseTarget, type CniContext } from "./context.js";
import { CniCode, CniError } from "./errors.js";
import { addressOf, parseResult } from "./result.js";

export async function check(context: CniContext): Promise<void> {
  const { env, conf, store, node, deps } = context;
  if (!conf.prevResult)
    throw new CniError(CniCode.invalidConfig, "invalid network config: CHECK needs prevResult");
  const previous = parseResult(conf.prevResult);
  const endpoint = await store.getEndpoint(releaseTarget(context, node));
  const problems: string[] = [];
  if (!endpoint)
    problems.push(`no endpoint recorded for container ${env.containerID} on node ${node}`);
  const plan: PodNetworkPlan = {
    netns: env.netns,
    ifname: env.ifname,
    hostIfname: await hostInterfaceName(env.args.namespace, env.args.pod, env.containerID),
    mtu: conf.mtu,
    addresses: previous.ips.map((ip) => addressOf(ip.address)),
    podMac: await podMacAddress(env.containerID, env.ifname),
  };
  problems.push(...(await deps.podNetwork.check(plan)));
  for (const nat of endpoint?.ipNATs ?? []) {
    const claim = await store.getClaim(nat.externalIP);
    if (claim?.containerID !== env.containerID) {
      problems.push(`floating IP ${nat.externalIP} is not claimed by this container`);
    }
  }
  if (problems.length > 0)
    throw new CniError(CniCode.checkFailed, `check failed: ${problems.join("; ")}`);
}
