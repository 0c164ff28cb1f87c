// ADD's first step (SPEC §4): the one datastore read, and every refusal that
// needs no pod address: the annotation, the pools, the namespace's right to
// them, and the claims already held.
import type { AllocationSnapshot, Datastore } from "../datastore/datastore.js";
import {
  FloatingIpError,
  FLOATING_IP_EGRESS_ANNOTATION,
  FLOATING_IPS_ANNOTATION,
  parseEgress,
  parseFloatingIps,
} from "../floating/annotation.js";
import { checkClaims, snapshotLookup, type ClaimHolder } from "../floating/claim-check.js";
import {
  poolNamespacesMatter,
  validateFloatingIpCount,
  validateInPools,
  validatePoolNamespaces,
} from "../floating/validate.js";
import { namespaceSelectorProblem, poolRestrictsNamespaces } from "../ipam/pool.js";
import type { CniContext } from "./context.js";
import type { NetConf } from "./netconf.js";
import { ownIpam } from "./run-ipam.js";

/** Step 1: the datastore read and every refusal that needs no address (SPEC §4). */
export async function checkAdd(context: CniContext, holder: ClaimHolder) {
  const { env, conf, store, logger } = context;
  // What the runtime passed, read alongside the pod: the request where the
  // datastore reads no pods (etcd), a first guess where it does (Kubernetes:
  // the pod's own annotation decides, and its refusals are the ones given).
  const passed = guessFloatingIps(conf, conf.podAnnotations);
  const [pod, seen] = await Promise.all([
    env.args.pod ? store.readPod(holder.namespace, holder.pod) : undefined,
    ownIpam(conf)
      ? store.readAllocationSnapshot({ node: context.node, floatingIps: passed })
      : undefined,
  ]);
  // The pod's own annotations where the datastore reads pods (Kubernetes),
  // else what the runtime passed in runtimeConfig.
  const annotations = pod?.annotations ?? conf.podAnnotations;
  const floatingIps = requestedFloatingIps(conf, annotations);
  // Egress only means something with floating IPs to leave from.
  const egress = floatingIps.length > 0 && parseEgress(annotations[FLOATING_IP_EGRESS_ANNOTATION]);
  const snapshot = await withFloatingIps(store, seen, passed, floatingIps);
  const pools = snapshot?.pools ?? [];
  validateInPools(floatingIps, pools);
  for (const problem of pools.map(namespaceSelectorProblem)) {
    if (problem) logger.log("warn", "cni.pool", { problem });
  }
  // The namespace's labels, read only when a pool the pod may draw from asks.
  const namespaceLabels =
    poolNamespacesMatter(floatingIps, pools) ||
    (ownIpam(conf) && pools.some(poolRestrictsNamespaces))
      ? await store.readNamespaceLabels(holder.namespace)
      : undefined;
  validatePoolNamespaces(floatingIps, pools, holder.namespace, namespaceLabels ?? {});
  if (snapshot) checkClaims(floatingIps, holder, snapshotLookup(snapshot));

  return { pod, snapshot, pools, floatingIps, egress, namespaceLabels };
}

/**
 * The snapshot with the claims and blocks of `floatingIps` too: read again
 * for those the first read did not ask about (the pod's annotation on
 * Kubernetes differs from what the runtime passed), or read for the first
 * time when IPAM is delegated. Undefined when nothing needs one.
 */
async function withFloatingIps(
  store: Datastore,
  early: AllocationSnapshot | undefined,
  asked: readonly string[],
  floatingIps: readonly string[],
): Promise<AllocationSnapshot | undefined> {
  const missing = early ? floatingIps.filter((ip) => !asked.includes(ip)) : floatingIps;
  if (missing.length === 0) return early;
  const more = await store.readAllocationSnapshot({
    floatingIps: missing,
    ...(early ? { pools: early.pools } : {}),
  });
  if (!early) return more;
  const cidrs = new Set(early.blocks.map((block) => block.value.cidr));
  const regions = new Set((early.regions ?? []).map((region) => region.value.cidr));
  return {
    pools: more.pools,
    blocks: [...early.blocks, ...more.blocks.filter((block) => !cidrs.has(block.value.cidr))],
    claims: [...early.claims, ...more.claims],
    regions: [
      ...(early.regions ?? []),
      ...(more.regions ?? []).filter((region) => !regions.has(region.value.cidr)),
    ],
  };
}

/** The floating IPs the pod's annotation asks for ([] when none); SPEC §4's rows that need no datastore. */
function requestedFloatingIps(
  conf: NetConf,
  annotations: Readonly<Record<string, string>>,
): string[] {
  const value = annotations[FLOATING_IPS_ANNOTATION];
  if (value === undefined) return [];
  if (!conf.floatingIpsEnabled) {
    throw new FloatingIpError("requested feature is not enabled: floating_ips");
  }
  const ips = parseFloatingIps(value);
  validateFloatingIpCount(ips, conf.maxFloatingIps);
  return ips;
}

/** requestedFloatingIps(), or none where it would refuse: a read's guess, not a check. */
function guessFloatingIps(conf: NetConf, annotations: Readonly<Record<string, string>>): string[] {
  try {
    return requestedFloatingIps(conf, annotations);
  } catch {
    return [];
  }
}
