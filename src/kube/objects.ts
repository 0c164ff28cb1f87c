// buoy's records as Kubernetes objects (manifests/crds.yaml) and back, and
// Calico's annotations the plugin still writes on a pod (read by nothing that
// decides: ADR 0008). Pure: the Kubernetes datastore does the calls.
import type {
  AllocationOwner,
  BgpPeer,
  FloatingIpClaim,
  FloatingIpStatus,
  NodeRecord,
  IpPool,
  IpamBlock,
  IpamRegion,
  Versioned,
  WorkloadEndpoint,
} from "../model/records.js";
import {
  FLOATING_IP_EGRESS_ANNOTATION,
  FLOATING_IPS_ANNOTATION,
  parseEgress,
  parseFloatingIps,
} from "../floating/annotation.js";
import { storedPool } from "../ipam/pool.js";
import { canonicalAddress } from "../net/address.js";
import { BUOY_API_VERSION } from "../model/api-group.js";
import {
  AS_NUMBER_ANNOTATION,
  BLOCK_NODE_LABEL_PREFIX,
  CONTAINER_ID_ANNOTATION,
  CONTAINER_LABEL,
  NODE_LABEL,
  POD_IPS_ANNOTATION,
  POD_IP_ANNOTATION,
} from "./labels.js";
import { ipObjectName, prefixObjectName } from "./names.js";

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  /** Bumped by the API server on every spec change (status subresource: not on status writes). */
  generation?: number;
  creationTimestamp?: string | Date;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  deletionTimestamp?: string | Date;
  ownerReferences?: OwnerReference[];
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
}

export interface KubeObject<Spec = Record<string, unknown>> {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: Spec;
  status?: Record<string, unknown>;
}

export interface KubeList<T> {
  metadata: { resourceVersion?: string };
  items: T[];
}

export interface PodObject {
  metadata: ObjectMeta;
  spec?: { nodeName?: string };
}

export type ClaimSpec = Omit<FloatingIpClaim, "createdAt">;

/** A pool object as the record IPAM reads, with Calico's defaults; throws PoolError when invalid. */
export function poolFromObject(object: KubeObject): IpPool {
  return storedPool(object.metadata.name, object.spec ?? {});
}

export function blockToObject(block: IpamBlock, resourceVersion?: string): KubeObject<IpamBlock> {
  return {
    apiVersion: BUOY_API_VERSION,
    kind: "IPAMBlock",
    metadata: {
      name: prefixObjectName(block.cidr) ?? block.cidr,
      labels: blockNodeLabels(block),
      ...(resourceVersion ? { resourceVersion } : {}),
    },
    spec: block,
  };
}

/**
 * A block's node labels, from what it holds: its affine node and every node
 * an address in it was given to (a node whose name is no label name has
 * none, and lists every block).
 */
export function blockNodeLabels(block: IpamBlock): Record<string, string> {
  const nodes = [block.affinity, ...Object.values(block.allocations).map((owner) => owner.node)];
  return Object.fromEntries(
    [...new Set(nodes)].flatMap((node) => {
      const label = blockNodeLabel(node);
      return label ? [[label, ""]] : [];
    }),
  );
}

/** The label key of `node` on blocks; undefined for a name that cannot be one. */
export function blockNodeLabel(node: string): string | undefined {
  return node !== "" && labelValue(node) ? `${BLOCK_NODE_LABEL_PREFIX}${node}` : undefined;
}

export function blockFromObject(object: KubeObject<Partial<IpamBlock>>): Versioned<IpamBlock> {
  const spec = object.spec ?? {};
  return {
    value: {
      cidr: spec.cidr ?? "",
      affinity: spec.affinity ?? "",
      allocations: (spec.allocations ?? {}) as Record<string, AllocationOwner>,
    },
    revision: object.metadata.resourceVersion ?? "",
  };
}

export function regionToObject(
  region: IpamRegion,
  resourceVersion?: string,
): KubeObject<IpamRegion> {
  return {
    apiVersion: BUOY_API_VERSION,
    kind: "IPAMRegion",
    metadata: {
      name: prefixObjectName(region.cidr) ?? region.cidr,
      ...(resourceVersion ? { resourceVersion } : {}),
    },
    spec: region,
  };
}

export function regionFromObject(object: KubeObject<Partial<IpamRegion>>): Versioned<IpamRegion> {
  const spec = object.spec ?? {};
  return {
    value: { cidr: spec.cidr ?? "", blocks: Array.isArray(spec.blocks) ? spec.blocks : [] },
    revision: object.metadata.resourceVersion ?? "",
  };
}

/** The affinity object written with a new block: what routing agents watch. */
export function affinityObject(block: IpamBlock): KubeObject {
  return {
    apiVersion: BUOY_API_VERSION,
    kind: "BlockAffinity",
    metadata: { name: `${block.affinity}-${prefixObjectName(block.cidr) ?? block.cidr}` },
    spec: { node: block.affinity, cidr: block.cidr },
  };
}

/**
 * The container label's value: the ID cut to a label's 63 characters (a
 * 64-hex-digit runtime ID stays unique in practice; the spec has the whole
 * ID), or undefined for an ID that cannot be a label value.
 */
export function containerLabel(containerID: string): string | undefined {
  const value = containerID.slice(0, 63);
  return /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(value) ? value : undefined;
}

/**
 * A claim object, named by its IP. Owned by the node's Node object when its
 * uid is known, so a node removed from the cluster frees its claims; a Pod
 * cannot own it (a namespaced owner of a cluster-scoped object is invalid:
 * ADR 0006).
 */
export function claimToObject(
  claim: FloatingIpClaim,
  nodeUID: string | undefined,
): KubeObject<ClaimSpec> {
  // createdAt is the object's own creationTimestamp.
  const spec: ClaimSpec & { createdAt?: string } = { ...claim };
  delete spec.createdAt;
  const label = containerLabel(claim.containerID);
  return {
    apiVersion: BUOY_API_VERSION,
    kind: "FloatingIPClaim",
    metadata: {
      name: ipObjectName(claim.ip) ?? claim.ip,
      ...(label ? { labels: { [CONTAINER_LABEL]: label } } : {}),
      ...(nodeUID
        ? { ownerReferences: [{ apiVersion: "v1", kind: "Node", name: claim.node, uid: nodeUID }] }
        : {}),
    },
    spec,
  };
}

export function claimFromObject(object: KubeObject<Partial<ClaimSpec>>): FloatingIpClaim {
  const spec = object.spec ?? {};
  return {
    ip: spec.ip ?? "",
    namespace: spec.namespace ?? "",
    pod: spec.pod ?? "",
    containerID: spec.containerID ?? "",
    node: spec.node ?? "",
    internalIP: spec.internalIP ?? "",
    createdAt: timestamp(object.metadata.creationTimestamp),
    ...(spec.endpoint !== undefined ? { endpoint: spec.endpoint } : {}),
    ...(spec.network !== undefined ? { network: spec.network } : {}),
    ...(spec.podUID !== undefined ? { podUID: spec.podUID } : {}),
    ...(spec.floatingIP !== undefined ? { floatingIP: spec.floatingIP } : {}),
    ...(spec.egress === true ? { egress: true } : {}),
  };
}

/** A claim's status subresource as the agent of the holder's node writes it. */
export interface ClaimStatus {
  programmed: boolean;
  since?: string;
  announced?: "bgp" | "direct";
  /** The claim's `metadata.generation` the node programmed: the current holder, not an older one. */
  observedGeneration?: number;
  /** Programmed and Announced, for `kubectl wait --for=condition=Programmed`. */
  conditions: ClaimCondition[];
}

export interface ClaimCondition {
  type: "Programmed" | "Announced";
  status: "True" | "False";
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

/**
 * The status the holder's node should write on `object`, given what it has
 * programmed of the claim's IP (`status`, none when it has not), or undefined
 * when the object's status says so already. A status of an older generation
 * (the spec changed since) is rewritten. A condition keeps its
 * lastTransitionTime while its status stays.
 */
export function claimStatusUpdate(
  object: KubeObject,
  status: FloatingIpStatus | undefined,
  now: string = new Date().toISOString(),
): ClaimStatus | undefined {
  const generation = object.metadata.generation;
  // Programmed as this claim says (to its pod): a claim moved on this node
  // since the kernel was written is not yet (ADR 0014: the controller waits
  // for the generation).
  const internalIP = String(object.spec?.internalIP ?? "");
  const translated =
    status !== undefined && (internalIP === "" || internalIP === status.internalIP);
  const node = String(object.spec?.node ?? "");
  const current = (object.status ?? {}) as Partial<Record<keyof ClaimStatus, unknown>>;
  const previous = Array.isArray(current.conditions)
    ? (current.conditions as Partial<ClaimCondition>[])
    : [];
  const condition = (
    type: ClaimCondition["type"],
    on: boolean,
    reason: string,
    message: string,
  ): ClaimCondition => {
    const state = on ? "True" : "False";
    const before = previous.find((c) => c.type === type);
    return {
      type,
      status: state,
      reason,
      message,
      lastTransitionTime:
        before?.status === state && typeof before.lastTransitionTime === "string"
          ? before.lastTransitionTime
          : now,
      ...(generation !== undefined ? { observedGeneration: generation } : {}),
    };
  };
  const announced = translated ? status.announced : undefined;
  const conditions = [
    translated
      ? condition(
          "Programmed",
          true,
          "Programmed",
          `node ${node} translates it to ${internalIP || status.internalIP}`,
        )
      : condition("Programmed", false, "Pending", `node ${node} does not translate it yet`),
    announced
      ? condition("Announced", true, "Announced", `node ${node} announces it (${announced})`)
      : condition(
          "Announced",
          false,
          translated ? "NotAnnounced" : "Pending",
          translated ? "the node does not announce it" : `node ${node} does not translate it yet`,
        ),
  ];
  const next: ClaimStatus = translated
    ? {
        programmed: true,
        since: status.programmedSince,
        ...(announced ? { announced } : {}),
        ...(generation !== undefined ? { observedGeneration: generation } : {}),
        conditions,
      }
    : { programmed: false, conditions };
  const key = (c: Partial<ClaimCondition>) =>
    `${c.type} ${c.status} ${c.reason} ${c.message} ${c.observedGeneration}`;
  const same =
    current.programmed === next.programmed &&
    current.since === next.since &&
    current.announced === next.announced &&
    current.observedGeneration === next.observedGeneration &&
    previous.map(key).join("|") === conditions.map(key).join("|");
  return same ? undefined : next;
}

/** The annotations ADD writes on the pod: Calico's, so tools that read them keep working. */
export function podAnnotationsFor(endpoint: WorkloadEndpoint): Record<string, string> {
  return {
    [POD_IP_ANNOTATION]: endpoint.ipNetworks[0] ?? "",
    [POD_IPS_ANNOTATION]: endpoint.ipNetworks.join(","),
    [CONTAINER_ID_ANNOTATION]: endpoint.containerID,
  };
}

/** The spec of a `WorkloadEndpoint` object: what ADD recorded, the NATs left to the claims. */
export type EndpointSpec = Omit<WorkloadEndpoint, "ipNATs" | "egress" | "createdAt">;

/**
 * The endpoint object ADD creates (ADR 0008): the pod's addresses and sandbox
 * as the plugin recorded them with the node's credentials, named by node,
 * container and interface (`name`: endpointObjectName()), labelled with its
 * node (each agent watches its own) and container, owned by the node's Node
 * like the claims. Tenants have no grant on buoy.dev objects.
 */
export function endpointToObject(
  endpoint: WorkloadEndpoint,
  name: string,
  nodeUID: string | undefined,
): KubeObject<EndpointSpec> {
  const spec: EndpointSpec & Partial<WorkloadEndpoint> = { ...endpoint };
  delete spec.ipNATs;
  delete spec.egress;
  delete spec.createdAt;
  const node = labelValue(endpoint.node);
  const container = containerLabel(endpoint.containerID);
  return {
    apiVersion: BUOY_API_VERSION,
    kind: "WorkloadEndpoint",
    metadata: {
      name,
      labels: {
        ...(node ? { [NODE_LABEL]: node } : {}),
        ...(container ? { [CONTAINER_LABEL]: container } : {}),
      },
      ...(nodeUID
        ? {
            ownerReferences: [
              { apiVersion: "v1", kind: "Node", name: endpoint.node, uid: nodeUID },
            ],
          }
        : {}),
    },
    spec,
  };
}

/** The endpoint an object records; its NATs are empty (the claims hold them: withRequest()). */
export function endpointFromObject(object: KubeObject<Partial<EndpointSpec>>): WorkloadEndpoint {
  const spec = object.spec ?? {};
  return {
    node: spec.node ?? "",
    namespace: spec.namespace ?? "",
    pod: spec.pod ?? "",
    containerID: spec.containerID ?? "",
    endpoint: spec.endpoint ?? "",
    interfaceName: spec.interfaceName ?? "",
    mac: spec.mac ?? "",
    ipNetworks: Array.isArray(spec.ipNetworks) ? spec.ipNetworks.map(String) : [],
    ipNATs: [],
    network: spec.network ?? "",
    createdAt: timestamp(object.metadata.creationTimestamp),
    ...(spec.podUID !== undefined ? { podUID: spec.podUID } : {}),
  };
}

/**
 * Whether `pod` is the pod `endpoint` was recorded for: same name and, when
 * recorded, the same uid (a pod of the same name later is another pod).
 */
export function isPodOf(endpoint: WorkloadEndpoint, pod: PodObject): boolean {
  return (
    (pod.metadata.namespace ?? "default") === endpoint.namespace &&
    pod.metadata.name === endpoint.pod &&
    (endpoint.podUID === undefined || endpoint.podUID === pod.metadata.uid)
  );
}

/**
 * The endpoint with its NATs: the claims its own container holds for one of
 * its own recorded addresses, in the order the pod's annotation asks for them
 * (which floating IP a pod leaves from), and the pod's opt-in to egress. The
 * pod's annotations only order and opt in among bindings buoy recorded; an
 * edit that does not parse is the claim controller's to report, and leaves
 * egress off.
 */
export function withRequest(
  endpoint: WorkloadEndpoint,
  pod: PodObject,
  claims: readonly FloatingIpClaim[],
): WorkloadEndpoint {
  const annotations = pod.metadata.annotations ?? {};
  const own = new Set(endpoint.ipNetworks.map((net) => canonicalAddress(net.split("/")[0] ?? "")));
  const requested = attempt(() => parseFloatingIps(annotations[FLOATING_IPS_ANNOTATION] ?? "[]"));
  // A FloatingIP's claim with egress first: the pod leaves from it (ipNATs' order).
  const rank = (claim: FloatingIpClaim) => {
    if (claim.egress) return -1;
    const index = requested?.indexOf(canonicalAddress(claim.ip) ?? claim.ip) ?? -1;
    return index < 0 ? Number.MAX_SAFE_INTEGER : index;
  };
  const held = claims.filter(
    (claim) =>
      claim.containerID === endpoint.containerID &&
      claim.node === endpoint.node &&
      own.has(canonicalAddress(claim.internalIP)),
  );
  const egress =
    attempt(() => parseEgress(annotations[FLOATING_IP_EGRESS_ANNOTATION])) === true ||
    held.some((claim) => claim.egress === true);
  const found: WorkloadEndpoint = {
    ...endpoint,
    ipNATs: held
      .sort((a, b) => rank(a) - rank(b))
      .map(({ internalIP, ip }) => ({ internalIP, externalIP: ip })),
  };
  delete found.egress;
  if (egress) found.egress = true;
  return found;
}

/**
 * Where the pod's Calico annotations differ from what buoy recorded for its
 * sandbox (absent ones do not: DEL removes them, ADD writes them last): each
 * as "<key> '<value>'". A forged value changes nothing (ADR 0008); the agent
 * reports it.
 */
export function forgedAnnotations(endpoint: WorkloadEndpoint, pod: PodObject): string[] {
  const annotations = pod.metadata.annotations ?? {};
  const recorded = podAnnotationsFor(endpoint);
  return Object.entries(recorded)
    .filter(([key, value]) => key in annotations && annotations[key] !== value)
    .map(([key]) => `${key} '${annotations[key] ?? ""}'`);
}

/**
 * The label selector of a node's endpoint objects; undefined for a node name
 * that cannot be a label value (then every endpoint is listed, and filtered).
 */
export function endpointNodeSelector(node: string): string | undefined {
  const value = labelValue(node);
  return value ? `${NODE_LABEL}=${value}` : undefined;
}

/** A label value, or undefined for text that cannot be one. */
function labelValue(text: string): string | undefined {
  return text.length <= 63 && /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/.test(text)
    ? text
    : undefined;
}

/** What `read` returns, or undefined when it throws. */
function attempt<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}

/**
 * An object's timestamp as RFC 3339 text: client-node's typed lists give
 * Date objects, its watches and the custom-objects API the JSON strings.
 */
function timestamp(value: string | Date | undefined): string {
  if (value instanceof Date) return value.toISOString();
  return value ?? "";
}

export interface KubeNodeObject {
  metadata: ObjectMeta;
  status?: { addresses?: { type: string; address: string }[] };
}

/**
 * The node record routing needs, from the Kubernetes Node: its InternalIP
 * addresses (the kubelet's node IPs) and Calico's AS-number annotation.
 */
export function nodeFromObject(object: KubeNodeObject): NodeRecord {
  const addresses = (object.status?.addresses ?? [])
    .filter((address) => address.type === "InternalIP")
    .map((address) => address.address);
  const asNumber = Number(object.metadata.annotations?.[AS_NUMBER_ANNOTATION]);
  return {
    name: object.metadata.name,
    addresses,
    ...(Number.isSafeInteger(asNumber) && asNumber > 0 ? { asNumber } : {}),
  };
}

export function peerFromObject(object: KubeObject<Partial<BgpPeer>>): Partial<BgpPeer> {
  return { ...object.spec, name: object.metadata.name };
}

/**
 * What routing reads from the IPAM blocks: each block's node, and the
 * addresses given to a pod on another node (borrowed: routed by themselves).
 */
export function blockRoutes(block: IpamBlock): {
  affinity: { cidr: string; node: string } | undefined;
  borrowed: { ip: string; node: string }[];
} {
  return {
    affinity: block.affinity ? { cidr: block.cidr, node: block.affinity } : undefined,
    borrowed: Object.entries(block.allocations)
      .filter(([, owner]) => owner.node !== block.affinity)
      .map(([ip, owner]) => ({ ip, node: owner.node })),
  };
}
