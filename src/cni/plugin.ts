// The CNI entry: one program, two roles chosen by the executable's name
// (`calico`/`buoy` the main plugin, `calico-ipam`/`buoy-ipam` the IPAM plugin).
// Takes { env, stdin }, returns { stdout, exitCode }; every error is turned
// into the CNI error JSON here and nowhere else.
import type { AllocationSnapshot, Datastore, PodInfo } from "../datastore/datastore.js";
import { DatastoreUnavailableError } from "../datastore/unavailable-error.js";
import type { FloatingIpClaim, WorkloadEndpoint } from "../model/records.js";
import {
  FloatingIpError,
  FLOATING_IP_EGRESS_ANNOTATION,
  FLOATING_IPS_ANNOTATION,
  parseEgress,
  parseFloatingIps,
} from "../floating/annotation.js";
import { checkClaims, snapshotLookup, type ClaimHolder } from "../floating/claim-check.js";
import {
  planBindings,
  poolNamespacesMatter,
  validateFloatingIpCount,
  validateInPools,
  validatePoolNamespaces,
  type FloatingBinding,
} from "../floating/validate.js";
import { IpamExhaustedError } from "../ipam/ipam.js";
import { namespaceSelectorProblem, poolRestrictsNamespaces } from "../ipam/pool.js";
import {
  hostInterfaceName,
  podMacAddress,
  GATEWAY_MAC,
  DEFAULT_ROUTE,
  type PodLinkPlan,
  type PodNetworkPlan,
} from "../dataplane/pod-network.js";
import { LinkExistsError, type PodNetwork } from "../dataplane/shell/linux-pod-network.js";
import { createFileLogger, parseLogLevel, silentLogger, type Logger } from "../log/logger.js";
import { nodeNameProblem } from "../model/identifiers.js";
import { truncateEcho } from "../floating/truncate-echo.js";
import { parseAddress } from "../net/address.js";
import type { CniRole } from "./agent-wire.js";
import { CniCode, CniError } from "./errors.js";
import { parseCniEnv, type CniEnv } from "./env.js";
import type { ExecPlugin } from "./delegate.js";
import { OWN_IPAM_TYPES, handleFor, ipamAdd, ipamDel } from "./ipam-plugin.js";
import { decodeNetConfJson, parseNetConf, type NetConf } from "./netconf.js";
import { addressOf, parseResult, renderResult, type CniResult } from "./result.js";
import {
  LATEST_VERSION,
  SUPPORTED_VERSIONS,
  compareVersions,
  configVersion,
  isSupportedVersion,
} from "./versions.js";

export type { CniRole } from "./agent-wire.js";

export interface CniRequest {
  role: CniRole;
  env: Readonly<Record<string, string | undefined>>;
  stdin: string;
}

export interface CniResponse {
  stdout: string;
  exitCode: number;
}

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

interface Context {
  env: CniEnv;
  conf: NetConf;
  store: Datastore;
  node: string;
  logger: Logger;
  deps: CniDeps;
  rawEnv: Readonly<Record<string, string | undefined>>;
  stdin: string;
}

export async function runCni(request: CniRequest, deps: CniDeps): Promise<CniResponse> {
  let version: string | undefined;
  let logger: Logger = deps.logger ?? silentLogger;
  try {
    if (request.env.CNI_COMMAND === "VERSION") return versionResponse(request.stdin);
    const env = parseCniEnv(request.env);
    const raw = decodeNetConfJson(request.stdin);
    if (typeof raw.cniVersion === "string") version = raw.cniVersion;
    const conf = parseNetConf(raw);
    version = conf.cniVersion;
    logger =
      deps.logger ??
      createFileLogger(conf.logFilePath, parseLogLevel(conf.logLevel), {
        command: env.command,
        containerID: env.containerID,
        role: request.role,
        ...(deps.served ? { via: deps.served } : {}),
      });
    requireVersion(env.command, conf.cniVersion);
    const node = conf.nodename || hostnameAsNode(deps.hostname());
    const context: Context = {
      env,
      conf,
      store: await deps.openDatastore(conf, node, request.env),
      node,
      logger,
      deps,
      rawEnv: request.env,
      stdin: request.stdin,
    };
    const result = await dispatch(request.role, context);
    logger.flush();
    return { stdout: result === undefined ? "" : JSON.stringify(result) + "\n", exitCode: 0 };
  } catch (error) {
    const cniError = toCniError(error);
    logger.log("error", "cni.error", { code: cniError.code, msg: cniError.message });
    logger.flush();
    // An error in the environment comes before the config is read: still in its version.
    version ??= configVersion(request.stdin);
    const outVersion = version && isSupportedVersion(version) ? version : LATEST_VERSION;
    return { stdout: JSON.stringify(cniError.toJSON(outVersion)) + "\n", exitCode: 1 };
  }
}

async function dispatch(role: CniRole, context: Context): Promise<unknown> {
  const { env, conf, store, node, logger } = context;
  if (role === "ipam") {
    switch (env.command) {
      case "ADD":
        return renderResult(await ipamAdd(store, conf, env, node, logger), conf.cniVersion);
      case "DEL":
        return ipamDel(store, conf, env, node, logger);
      case "CHECK":
        return undefined;
      case "STATUS":
        return status(context);
      case "GC":
        return gc(context);
    }
  }
  switch (env.command) {
    case "ADD":
      return renderResult(await add(context), conf.cniVersion);
    case "DEL":
      return del(context);
    case "CHECK":
      return check(context);
    case "STATUS":
      return status(context);
    case "GC":
      return gc(context);
  }
  return undefined;
}

function versionResponse(stdin: string): CniResponse {
  let requested: string = LATEST_VERSION;
  try {
    const parsed = JSON.parse(stdin || "{}") as { cniVersion?: unknown };
    if (typeof parsed.cniVersion === "string" && isSupportedVersion(parsed.cniVersion)) {
      requested = parsed.cniVersion;
    }
  } catch {
    // VERSION needs no config.
  }
  const body = { cniVersion: requested, supportedVersions: SUPPORTED_VERSIONS };
  return { stdout: JSON.stringify(body) + "\n", exitCode: 0 };
}

/**
 * The hostname as the node's name when the config names none, lower-cased and
 * trimmed as Calico and the kubelet take it; it reaches datastore keys.
 */
function hostnameAsNode(hostname: string): string {
  const name = hostname.trim().toLowerCase();
  const problem = nodeNameProblem(name);
  if (problem !== undefined) {
    throw new CniError(
      CniCode.invalidConfig,
      `invalid network config: no key 'nodename', and the hostname ${JSON.stringify(truncateEcho(hostname))} is no node name: ${problem}`,
    );
  }
  return name;
}

function requireVersion(command: string, version: string): void {
  const since: Record<string, string> = { CHECK: "0.4.0", GC: "1.1.0", STATUS: "1.1.0" };
  const minimum = since[command];
  if (minimum && compareVersions(version, minimum) < 0) {
    throw new CniError(
      CniCode.incompatibleVersion,
      `${command} needs CNI version ${minimum} or later; config is "${version}"`,
    );
  }
}

// ---- ADD ----------------------------------------------------------------

/**
 * ADD runs in three steps, each as parallel as its dependencies allow:
 *   1. one datastore read; every refusal that needs no address (SPEC §4) happens here;
 *      the veth pair (which needs no address) is created meanwhile;
 *   2. IPAM's write (and the replacement of a stale pair found in step 1);
 *   3. configuring both sides alongside the one transaction for claims and endpoint.
 * A failure in any part undoes every part that succeeded, once all have settled.
 */
async function add(context: Context): Promise<CniResult> {
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

async function addChecked(context: Context, holder: ClaimHolder): Promise<CniResult> {
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

/** Undoes a failed ADD: the pair, and the datastore records with the addresses. */
/** Step 1: the datastore read and every refusal that needs no address (SPEC §4). */
async function checkAdd(context: Context, holder: ClaimHolder) {
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

async function rollback(
  context: Context,
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

function endpointRecord(
  context: Context,
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
  context: Context,
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

/** The records of this container and interface, and (Kubernetes) its pod. */
function releaseTarget(context: Context, node: string) {
  const { env } = context;
  return {
    node,
    containerID: env.containerID,
    ifname: env.ifname,
    ...(env.args.namespace ? { namespace: env.args.namespace } : {}),
    ...(env.args.pod ? { pod: env.args.pod } : {}),
  };
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

// ---- IPAM: in-process for our own types, exec otherwise --------------------

async function runIpam(
  command: "ADD" | "DEL",
  context: Context,
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

function ownIpam(conf: NetConf): boolean {
  return OWN_IPAM_TYPES.includes(conf.ipam.type);
}

function emptyResult(): CniResult {
  return { interfaces: [], ips: [], routes: [], dns: {} };
}

// ---- DEL ----------------------------------------------------------------

async function del(context: Context): Promise<void> {
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

// ---- CHECK --------------------------------------------------------------

async function check(context: Context): Promise<void> {
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

// ---- STATUS and GC (CNI 1.1) --------------------------------------------

async function status(context: Context): Promise<void> {
  try {
    await context.store.ping();
  } catch (error) {
    throw new CniError(
      CniCode.notAvailable,
      `datastore is unreachable: ${(error as Error).message}`,
    );
  }
}

async function gc(context: Context): Promise<void> {
  const { conf, store, node, logger } = context;
  if (conf.validAttachments === undefined) {
    // Read as "nothing is valid", it would release every pod on the node.
    throw new CniError(
      CniCode.invalidConfig,
      "invalid network config: GC needs cni.dev/valid-attachments",
    );
  }
  const valid = new Set(conf.validAttachments.map((attachment) => attachment.containerID));
  // Stale containers, with their pod where a record names it (Kubernetes:
  // the pod's annotations are cleared with the rest).
  const stale = new Map<string, { namespace?: string; pod?: string }>();
  const add = (containerID: string, namespace?: string, pod?: string) => {
    if (valid.has(containerID) || stale.get(containerID)?.pod) return;
    stale.set(containerID, {
      ...(namespace !== undefined ? { namespace } : {}),
      ...(pod !== undefined ? { pod } : {}),
    });
  };
  if (ownIpam(conf)) {
    for (const { value: block } of await store.listNodeBlocks(node)) {
      for (const owner of Object.values(block.allocations)) {
        if (owner.node !== node || owner.network !== conf.name || !owner.containerID) continue;
        add(owner.containerID, owner.namespace, owner.pod);
      }
    }
  }
  for (const attached of await store.listAttachedContainers(node, conf.name)) {
    add(attached.containerID, attached.namespace, attached.pod);
  }
  for (const [containerID, pod] of stale) {
    await store.release({
      node,
      containerID,
      ...pod,
      ...(ownIpam(conf) ? { handle: handleFor(conf, containerID) } : {}),
    });
  }
  logger.log("info", "cni.gc", { released: [...stale.keys()] });
}

// ---- errors -------------------------------------------------------------

function toCniError(error: unknown): CniError {
  if (error instanceof CniError) return error;
  if (error instanceof FloatingIpError)
    return new CniError(CniCode.floatingIpRefused, error.message);
  if (error instanceof IpamExhaustedError)
    return new CniError(CniCode.ipamExhausted, error.message);
  if (error instanceof DatastoreUnavailableError)
    return new CniError(CniCode.tryAgainLater, error.message);
  const message = error instanceof Error ? error.message : String(error);
  return new CniError(CniCode.internal, message);
}
