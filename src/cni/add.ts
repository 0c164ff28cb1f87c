// CNI ADD (docs/architecture.md, "ADD, step by step"): the pod's network,
// its address, its floating IPs' claims and its endpoint; a refused or failed
// ADD leaves nothing behind.
import type { PodInfo } from "../datastore/datastore.js";
import type { FloatingIpClaim, WorkloadEndpoint } from "../model/records.js";
import { FloatingIpError } from "../floating/annotation.js";
import type { ClaimHolder } from "../floating/claim-check.js";
import { planBindings, type FloatingBinding } from "../floating/validate.js";
import {
  hostInterfaceName,
  podMacAddress,
  GATEWAY_MAC,
  DEFAULT_ROUTE,
  type PodLinkPlan,
} from "../dataplane/pod-network.js";
import { LinkExistsError } from "../dataplane/shell/linux-pod-network.js";
import { parseAddress } from "../net/address.js";
import { checkAdd } from "./add-check.js";
import { releaseTarget, type CniContext } from "./context.js";
import type { CniEnv } from "./env.js";
import { CniCode, CniError } from "./errors.js";
import { handleFor } from "./ipam-plugin.js";
import { addressOf, type CniResult } from "./result.js";
import { ownIpam, runIpam } from "./run-ipam.js";

/**
 * ADD runs in three steps, each as parallel as its dependencies allow:
 *   1. one datastore read; every refusal that needs no address (SPEC §4) happens here;
 *      the veth pair (which needs no address) is created meanwhile;
 *   2. IPAM's write (and the replacement of a stale pair found in step 1);
 *   3. configuring both sides alongside the one transaction for claims and endpoint.
 * A failure in any part undoes every part that succeeded, once all have settled.
 */
export async function add(context: CniContext): Promise<CniResult> {
  const { env, store } = context;
  const holder: ClaimHolder = {
    namespace: env.args.namespace ?? "default",
    pod: env.args.pod ?? env.containerID,
    containerID: env.containerID,
    node: context.node,
  };
  try {
    return await addChecked(context, holder);
  } catch (error) {
    if (error instanceof FloatingIpError && env.args.pod) {
      await store.reportRefusal(holder.namespace, holder.pod, error.message).catch(() => {});
    }
    throw error;
  }
}

async function addChecked(context: CniContext, holder: ClaimHolder): Promise<CniResult> {
  const { env, conf, store, logger, deps } = context;
  const link: PodLinkPlan = {
    netns: env.netns,
    ifname: env.ifname,
    hostIfname: await hostInterfaceName(env.args.namespace, env.args.pod, env.containerID),
    mtu: conf.mtu,
    podMac: await podMacAddress(env.containerID, env.ifname),
  };
  // The pair needs no address: it is made while the datastore is read. A host
  // side found there (an earlier sandbox's) is replaced only once the ADD is
  // known to go ahead; a refused ADD removes only the pair it made itself.
  const early = deps.podNetwork.createLink(link, { replace: false }).then(
    () => "made" as const,
    (error: unknown) => (error instanceof LinkExistsError ? ("stale" as const) : { error }),
  );
  let checked;
  try {
    checked = await checkAdd(context, holder);
  } catch (error) {
    if ((await early) === "made") {
      await deps.podNetwork.deleteHostInterface(link.hostIfname).catch(() => {});
    }
    throw error;
  }
  const { pod, snapshot, pools, floatingIps, egress, namespaceLabels } = checked;
  const [ipam, pair] = await Promise.allSettled([
    runIpam("ADD", context, snapshot, floatingIps, namespaceLabels),
    early.then((state) =>
      state === "made"
        ? undefined
        : state === "stale"
          ? deps.podNetwork.createLink(link)
          : Promise.reject(state.error),
    ),
  ]);
  if (ipam.status === "rejected" || pair.status === "rejected") {
    await rollback(context, link, {
      link: pair.status === "fulfilled" || (await early) === "made",
      addresses: ipam.status === "fulfilled",
      ips: ipam.status === "fulfilled" ? ipam.value.ips.map((ip) => addressOf(ip.address)) : [],
    });
    throw ipam.status === "rejected" ? ipam.reason : (pair as PromiseRejectedResult).reason;
  }

  try {
    const podIps = ipam.value.ips.map((ip) => addressOf(ip.address));
    if (podIps.length === 0) {
      throw new CniError(CniCode.internal, `IPAM plugin ${conf.ipam.type} returned no addresses`);
    }
    const bindings = planBindings(floatingIps, podIps);
    const endpoint = {
      ...endpointRecord(context, holder, link, podIps, bindings),
      ...(egress && bindings.length > 0 ? { egress: true } : {}),
    };
    const claims = claimRecords(context, holder, bindings, pod);
    const steps = await Promise.allSettled([
      deps.podNetwork.configure({ ...link, addresses: podIps }),
      store.commitAttachment({
        endpoint,
        claims,
        pools,
        seen: snapshot,
        ...(pod ? { podUID: pod.uid } : {}),
      }),
    ]);
    const failed = steps.find((step) => step.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
    logger.log("info", "cni.add", {
      pod: `${holder.namespace}/${holder.pod}`,
      ips: podIps,
      floatingIps: bindings.map((binding) => binding.externalIP),
      hostIfname: link.hostIfname,
    });
    return podResult(env, link, podIps, ipam.value);
  } catch (error) {
    await rollback(context, link, {
      link: true,
      addresses: true,
      ips: ipam.value.ips.map((ip) => addressOf(ip.address)),
    });
    throw error;
  }
}

/** Undoes a failed ADD: the pair, and the datastore records with the addresses. */
async function rollback(
  context: CniContext,
  link: PodLinkPlan,
  made: { link: boolean; addresses: boolean; ips: readonly string[] },
): Promise<void> {
  const { conf, env, store, node, logger, deps } = context;
  logger.log("warn", "cni.rollback", { link: made.link, addresses: made.addresses });
  const steps: Promise<unknown>[] = [];
  if (made.link) steps.push(deps.podNetwork.deleteHostInterface(link.hostIfname));
  steps.push(
    store.release({
      ...releaseTarget(context, node),
      // Even when IPAM failed: it may have written a block before failing.
      // Releasing a handle that holds nothing is a no-op.
      ...(ownIpam(conf) ? { handle: handleFor(conf, env.containerID), addresses: made.ips } : {}),
    }),
  );
  if (!ownIpam(conf) && made.addresses) steps.push(runIpam("DEL", context));
  await Promise.allSettled(steps);
}

function endpointRecord(
  context: CniContext,
  holder: ClaimHolder,
  link: PodLinkPlan,
  podIps: readonly string[],
  bindings: readonly FloatingBinding[],
): WorkloadEndpoint {
  return {
    node: holder.node,
    namespace: holder.namespace,
    pod: holder.pod,
    containerID: holder.containerID,
    endpoint: context.env.ifname,
    interfaceName: link.hostIfname,
    mac: link.podMac,
    ipNetworks: podIps.map((ip) => `${ip}/${parseAddress(ip)?.family === 6 ? 128 : 32}`),
    ipNATs: bindings.map(({ internalIP, externalIP }) => ({ internalIP, externalIP })),
    network: context.conf.name,
    createdAt: context.deps.now().toISOString(),
    // The runtime's word for the pod's uid (K8S_POD_UID): a FloatingIP's
    // controller on etcd matches it against the Pod record. On Kubernetes the
    // datastore puts the pod object's own.
    ...(context.env.args.podUid ? { podUID: context.env.args.podUid } : {}),
  };
}

function claimRecords(
  context: CniContext,
  holder: ClaimHolder,
  bindings: readonly FloatingBinding[],
  pod: PodInfo | undefined,
): FloatingIpClaim[] {
  const createdAt = context.deps.now().toISOString();
  return bindings.map(({ externalIP, internalIP }) => ({
    ip: externalIP,
    ...holder,
    internalIP,
    createdAt,
    endpoint: context.env.ifname,
    network: context.conf.name,
    ...(pod ? { podUID: pod.uid } : {}),
  }));
}

function podResult(
  env: CniEnv,
  link: PodLinkPlan,
  podIps: readonly string[],
  ipamResult: CniResult,
): CniResult {
  const families = new Set(podIps.map((ip) => parseAddress(ip)?.family ?? 4));
  return {
    interfaces: [
      { name: link.hostIfname, mac: GATEWAY_MAC },
      { name: env.ifname, mac: link.podMac, sandbox: env.netns },
    ],
    ips: podIps.map((ip) => ({
      address: `${ip}/${parseAddress(ip)?.family === 6 ? 128 : 32}`,
      interface: 1,
    })),
    routes: [...families].map((family) => ({ dst: DEFAULT_ROUTE[family] })),
    dns: ipamResult.dns,
  };
}
