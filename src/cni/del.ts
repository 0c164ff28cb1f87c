// CNI DEL: the pod-side interface from inside the pod's namespace, and
// alongside it the container's endpoint, claims and addresses.
import { releaseTarget, type CniContext } from "./context.js";
import { handleFor } from "./ipam-plugin.js";
import { ownIpam, runIpam } from "./run-ipam.js";

export async function del(context: CniContext): Promise<void> {
  const { env, conf, store, node, logger, deps } = context;
  // Deleting the pod side removes the pair; with no netns (containerd's later
  // DELs) the namespace, and with it the pair, is already gone. The kernel's
  // veth teardown is slow (tens of ms), so the datastore work runs alongside.
  const [, released] = await Promise.all([
    deps.podNetwork.deletePodInterface(env.netns, env.ifname),
    store.release({
      ...releaseTarget(context, node),
      ...(ownIpam(conf) ? { handle: handleFor(conf, env.containerID) } : {}),
    }),
  ]);
  if (!ownIpam(conf)) await runIpam("DEL", context);
  logger.log("info", "cni.del", {
    netns: env.netns,
    network: conf.name,
    addresses: released.addresses,
    floatingIps: released.floatingIps,
  });
}
