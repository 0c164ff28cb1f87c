// Manifests in and out: parseManifests() turns the text given to `apply -f` or
// `delete -f` (YAML, multi-document, or JSON) into validated resources, and
// toManifest()/renderManifests() turn records back into resources that apply
// accepts. Pure: no I/O.
import { parseAllDocuments, stringify } from "yaml";
import type { BgpPeer, IpPool, NamespaceRecord, NodeRecord } from "../model/records.js";
import { PoolError, validatePool, type PoolSpec } from "../ipam/pool.js";
import { canonicalAddress } from "../net/address.js";
import { CliError } from "./cli-error.js";
import { BUOY_API_VERSION } from "../model/api-group.js";
import { decodeLabels, describe, isMapping as isRecord } from "./manifest-labels.js";
import { decodeFloatingIp, decodePod, type AppliedFloatingIp } from "./manifest-failover.js";
import type { PodView } from "../failover/candidates.js";

export const CALICO_API_VERSION = "projectcalico.org/v3";

export type Resource =
  | { kind: "IPPool"; pool: IpPool; source: string }
  | { kind: "Node"; node: NodeRecord; source: string }
  | { kind: "BGPPeer"; peer: BgpPeer; source: string }
  | { kind: "Namespace"; namespace: NamespaceRecord; source: string }
  | { kind: "FloatingIP"; floatingIp: AppliedFloatingIp; source: string }
  | { kind: "Pod"; pod: PodView; source: string };

export type ResourceKind = Resource["kind"];

/** What `buoy delete` names: a kind and a name (namespace/name when namespaced). */
export interface DeleteTarget {
  kind: ResourceKind;
  name: string;
}

/** A resource as written in a manifest. */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec: Record<string, unknown>;
  /** Read-only state some kinds report (floating IPs: programmed, since when). */
  status?: Record<string, unknown>;
}

export interface ManifestList {
  apiVersion: string;
  kind: string;
  items: Manifest[];
}

/** Which apiVersions each kind is accepted in. */
const API_VERSIONS: Record<ResourceKind, readonly string[]> = {
  IPPool: [CALICO_API_VERSION, BUOY_API_VERSION],
  Node: [BUOY_API_VERSION],
  BGPPeer: [CALICO_API_VERSION, BUOY_API_VERSION],
  // The etcd datastore's stand-in for Kubernetes' Namespace: its labels only.
  Namespace: [BUOY_API_VERSION],
  // Etcd's FloatingIPs (issue 15), and the parts of Pods their selectors read.
  FloatingIP: [BUOY_API_VERSION],
  Pod: ["v1"],
};
const KINDS = Object.keys(API_VERSIONS) as ResourceKind[];
const READ_ONLY_KINDS = ["WorkloadEndpoint", "FloatingIPClaim"];
const LIST_KINDS = [
  "List",
  "IPPoolList",
  "NodeList",
  "BGPPeerList",
  "NamespaceList",
  "FloatingIPList",
  "PodList",
];
const ACCEPTED = `${[...KINDS, ...LIST_KINDS].slice(0, -1).join(", ")} and ${LIST_KINDS.at(-1) ?? ""}`;

/**
 * Parses every resource in `text`, in order. Documents are numbered from 1;
 * empty documents are skipped. Throws CliError naming the document.
 */
export function parseManifests(text: string): Resource[] {
  const resources: Resource[] = [];
  parseDocuments(text).forEach((value, index) => {
    if (value === null || value === undefined) return;
    resources.push(...decodeValue(value, `document ${index + 1}`, undefined));
  });
  return resources;
}

function parseDocuments(text: string): unknown[] {
  const trimmed = text.trim();
  if (trimmed.startsWith("{") || trimmed.startsWith("[")) {
    try {
      return [JSON.parse(trimmed)];
    } catch {
      // Not JSON after all: YAML (a superset) parses it or reports where it breaks.
    }
  }
  return parseAllDocuments(text).map((document, index) => {
    const [first] = document.errors;
    if (first) {
      // The first line names the problem and its line and column; a code frame follows.
      const message = (first.message.split("\n")[0] ?? "").replace(/:$/, "");
      throw new CliError(`document ${index + 1}: invalid YAML: ${message}`);
    }
    return document.toJS() as unknown;
  });
}

interface ListContext {
  apiVersion: string | undefined;
  kind: string | undefined;
}

function decodeValue(value: unknown, where: string, list: ListContext | undefined): Resource[] {
  if (Array.isArray(value)) {
    return value.flatMap((item, index) =>
      decodeValue(item, `${where}, item ${index + 1}`, { apiVersion: undefined, kind: undefined }),
    );
  }
  if (!isRecord(value)) {
    throw new CliError(
      `${where}: expected a resource with apiVersion and kind, got ${describe(value)}`,
    );
  }
  const kind = value.kind ?? list?.kind;
  const apiVersion = value.apiVersion ?? list?.apiVersion;
  if (kind === undefined) throw new CliError(`${where}: the resource has no kind`);
  if (typeof kind !== "string") throw new CliError(`${where}: kind must be a string`);
  if (LIST_KINDS.includes(kind)) {
    if (!Array.isArray(value.items)) throw new CliError(`${where}: ${kind} has no items list`);
    const itemKind = kind === "List" ? undefined : kind.slice(0, -"List".length);
    const itemApiVersion = typeof apiVersion === "string" ? apiVersion : undefined;
    return value.items.flatMap((item, index) =>
      decodeValue(item, `${where}, item ${index + 1}`, {
        apiVersion: itemApiVersion,
        kind: itemKind,
      }),
    );
  }
  if (READ_ONLY_KINDS.includes(kind)) {
    throw new CliError(`${where}: kind ${kind} is written by buoy itself and cannot be applied`);
  }
  if (!isResourceKind(kind)) {
    throw new CliError(`${where}: unknown kind '${kind}' (buoy accepts ${ACCEPTED})`);
  }
  if (typeof apiVersion !== "string") {
    throw new CliError(
      `${where}: ${kind} has no apiVersion (use ${API_VERSIONS[kind].join(" or ")})`,
    );
  }
  if (!API_VERSIONS[kind].includes(apiVersion)) {
    throw new CliError(
      `${where}: ${kind} in apiVersion '${apiVersion}' is not supported (use ${API_VERSIONS[kind].join(" or ")})`,
    );
  }
  const metadata = isRecord(value.metadata) ? value.metadata : {};
  const name = metadata.name;
  if (name === undefined || name === "") {
    throw new CliError(`${where}: ${kind} has no metadata.name`);
  }
  if (typeof name !== "string") {
    throw new CliError(`${where}: ${kind} metadata.name must be a string, got ${describe(name)}`);
  }
  const spec = value.spec ?? {};
  if (!isRecord(spec)) throw new CliError(`${where}: ${kind} ${name}: spec must be a mapping`);
  switch (kind) {
    case "IPPool":
      return [{ kind, pool: decodePool(name, spec, where), source: where }];
    case "Node":
      return [{ kind, node: decodeNode(name, spec, where), source: where }];
    case "BGPPeer":
      return [{ kind, peer: decodePeer(name, spec, where), source: where }];
    case "Namespace":
      return [{ kind, namespace: decodeNamespace(name, metadata.labels, where), source: where }];
    case "FloatingIP":
      return [{ kind, floatingIp: decodeFloatingIp(name, metadata, spec, where), source: where }];
    case "Pod":
      return [{ kind, pod: decodePod(name, value, metadata, where), source: where }];
  }
}

/** A namespace's labels, as a pool's namespaceSelector reads them (Kubernetes' label syntax). */
function decodeNamespace(name: string, labels: unknown, where: string): NamespaceRecord {
  if (!NAMESPACE_NAME.test(name) || name.length > 63) {
    throw new CliError(
      `${where}: namespace name '${name}' must be lower-case letters, digits and '-'`,
    );
  }
  return { name, labels: decodeLabels(labels, `namespace ${name}`, where) };
}

function isResourceKind(kind: string): kind is ResourceKind {
  return (KINDS as string[]).includes(kind);
}

function decodePool(name: string, spec: Record<string, unknown>, where: string): IpPool {
  try {
    return validatePool(name, spec as PoolSpec);
  } catch (error) {
    if (error instanceof PoolError) throw new CliError(`${where}: ${error.message}`);
    throw error;
  }
}

const NODE_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const NAMESPACE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const MAX_AS_NUMBER = 4294967295;
/** Calico's `10.0.0.1:180` and `[fd00::1]:180`. */
const ADDRESS_WITH_PORT = /^(\[[^\]]+\]|[^:]+):\d+$/;

function decodeNode(name: string, spec: Record<string, unknown>, where: string): NodeRecord {
  if (!NODE_NAME.test(name) || name.length > 253) {
    throw new CliError(
      `${where}: node name '${name}' must be lower-case letters, digits, '-' and '.'`,
    );
  }
  const addresses = spec.addresses;
  if (!Array.isArray(addresses)) {
    throw new CliError(`${where}: node ${name}: spec.addresses must be a list of IP addresses`);
  }
  const canonical = addresses.map((address, index) => {
    const ip = typeof address === "string" ? canonicalAddress(address) : undefined;
    if (ip === undefined) {
      throw new CliError(
        `${where}: node ${name}: spec.addresses[${index}] ${describe(address)} is not an IP address`,
      );
    }
    return ip;
  });
  const node: NodeRecord = { name, addresses: [...new Set(canonical)] };
  if (spec.asNumber !== undefined) {
    node.asNumber = decodeAsNumber(spec.asNumber, `${where}: node ${name}`);
  }
  return node;
}

/**
 * Calico's BGPPeer with one node (`spec.node`) or every node (no `spec.node`)
 * as its scope. Calico's selectors would pick other nodes or peers than buoy
 * does, and a password would be dropped: those are refused, not ignored.
 */
function decodePeer(name: string, spec: Record<string, unknown>, where: string): BgpPeer {
  if (!NODE_NAME.test(name) || name.length > 253) {
    throw new CliError(
      `${where}: BGP peer name '${name}' must be lower-case letters, digits, '-' and '.'`,
    );
  }
  const at = `${where}: BGP peer ${name}`;
  for (const field of ["nodeSelector", "peerSelector"]) {
    if (!isEmpty(spec[field])) {
      throw new CliError(
        `${at}: spec.${field} is not supported by buoy; name one node in spec.node, ` +
          `or leave both out for a peer of every node`,
      );
    }
  }
  if (!isEmpty(spec.password)) {
    throw new CliError(`${at}: spec.password is not supported by buoy (no MD5 on its sessions)`);
  }
  const peerIP = spec.peerIP;
  if (peerIP === undefined || peerIP === "") throw new CliError(`${at}: spec.peerIP is required`);
  const ip = typeof peerIP === "string" ? canonicalAddress(peerIP) : undefined;
  if (ip === undefined) {
    const hint =
      typeof peerIP === "string" && ADDRESS_WITH_PORT.test(peerIP)
        ? " (buoy peers on port 179 only: give the address alone)"
        : "";
    throw new CliError(`${at}: spec.peerIP ${describe(peerIP)} is not an IP address${hint}`);
  }
  if (spec.asNumber === undefined) throw new CliError(`${at}: spec.asNumber is required`);
  const peer: BgpPeer = { name, peerIP: ip, asNumber: decodeAsNumber(spec.asNumber, at) };
  const node = spec.node;
  if (node !== undefined && node !== null && node !== "") {
    if (typeof node !== "string" || !NODE_NAME.test(node) || node.length > 253) {
      throw new CliError(
        `${at}: spec.node ${describe(node)} is not a node name (lower-case letters, digits, '-' and '.')`,
      );
    }
    peer.node = node;
  }
  return peer;
}

/**
 * An AS number as Calico takes it: an integer, or a string in plain
 * (`"64512"`) or dotted (`"1.10"`, RFC 5396 asdot) notation.
 */
function decodeAsNumber(value: unknown, at: string): number {
  let asNumber: number | undefined;
  if (typeof value === "number") {
    asNumber = value;
  } else if (typeof value === "string") {
    const dotted = /^(\d{1,5})\.(\d{1,5})$/.exec(value);
    if (dotted) {
      const high = Number(dotted[1]);
      const low = Number(dotted[2]);
      if (high <= 0xffff && low <= 0xffff) asNumber = high * 0x10000 + low;
    } else if (/^\d{1,10}$/.test(value)) {
      asNumber = Number(value);
    }
  }
  if (
    asNumber === undefined ||
    !Number.isInteger(asNumber) ||
    asNumber < 1 ||
    asNumber > MAX_AS_NUMBER
  ) {
    throw new CliError(
      `${at}: spec.asNumber must be an integer between 1 and ${MAX_AS_NUMBER} ` +
        `or dotted like '1.10', got ${describe(value)}`,
    );
  }
  return asNumber;
}

/** Absent, null, an empty string or an empty mapping: what Calico treats as not set. */
function isEmpty(value: unknown): boolean {
  return (
    value === undefined ||
    value === null ||
    (typeof value === "string" && value.trim() === "") ||
    (isRecord(value) && Object.keys(value).length === 0)
  );
}

/** The name a resource is known by in messages: `IPPool pool-a`. */
export function resourceName(resource: Resource): string {
  switch (resource.kind) {
    case "IPPool":
      return resource.pool.name;
    case "Node":
      return resource.node.name;
    case "BGPPeer":
      return resource.peer.name;
    case "Namespace":
      return resource.namespace.name;
    case "FloatingIP":
      return `${resource.floatingIp.namespace}/${resource.floatingIp.name}`;
    case "Pod":
      return `${resource.pod.metadata.namespace ?? "default"}/${resource.pod.metadata.name ?? ""}`;
  }
}

/** calicoctl's summary line: `Successfully applied 2 'IPPool' resource(s)`. */
export function renderSummary(verb: string, kinds: readonly string[]): string {
  const distinct = [...new Set(kinds)];
  const what = distinct.length === 1 ? ` '${distinct[0]}'` : "";
  return `Successfully ${verb} ${kinds.length}${what} resource(s)\n`;
}

export function poolManifest(pool: IpPool): Manifest {
  return {
    apiVersion: BUOY_API_VERSION,
    kind: "IPPool",
    metadata: { name: pool.name },
    spec: {
      cidr: pool.cidr,
      blockSize: pool.blockSize,
      disabled: pool.disabled,
      nodeSelector: pool.nodeSelector,
      ...(pool.namespaceSelector !== undefined
        ? { namespaceSelector: pool.namespaceSelector }
        : {}),
      natOutgoing: pool.natOutgoing,
      disableBGPExport: pool.disableBGPExport,
      ...(pool.vxlanMode !== undefined ? { vxlanMode: pool.vxlanMode } : {}),
    },
  };
}

export function nodeManifest(node: NodeRecord): Manifest {
  const spec: Record<string, unknown> = { addresses: node.addresses };
  if (node.asNumber !== undefined) spec.asNumber = node.asNumber;
  return { apiVersion: BUOY_API_VERSION, kind: "Node", metadata: { name: node.name }, spec };
}

export function peerManifest(peer: BgpPeer): Manifest {
  const spec: Record<string, unknown> = { peerIP: peer.peerIP, asNumber: peer.asNumber };
  if (peer.node !== undefined) spec.node = peer.node;
  return { apiVersion: BUOY_API_VERSION, kind: "BGPPeer", metadata: { name: peer.name }, spec };
}

/**
 * One manifest as itself, several (or none, when `asList`) as a `<Kind>List`
 * that apply accepts back.
 */
export function renderManifests(
  manifests: readonly Manifest[],
  options: { kind: string; asList: boolean; format: "json" | "yaml" },
): string {
  const value = manifestDocument(manifests, options);
  return options.format === "json" ? JSON.stringify(value, null, 2) + "\n" : stringify(value);
}

/** What -o json prints, as a value (-o jsonpath reads it). */
export function manifestDocument(
  manifests: readonly Manifest[],
  options: { kind: string; asList: boolean },
): Manifest | ManifestList {
  return !options.asList && manifests.length === 1 && manifests[0]
    ? manifests[0]
    : { apiVersion: BUOY_API_VERSION, kind: `${options.kind}List`, items: [...manifests] };
}

/** kubectl's -o name: kind.group/name (the core group: kind/name), one per line. */
export function renderNames(manifests: readonly Manifest[]): string {
  return manifests
    .map(({ apiVersion, kind, metadata }) => {
      const slash = apiVersion.indexOf("/");
      const group = slash < 0 ? "" : `.${apiVersion.slice(0, slash)}`;
      const name = metadata.namespace ? `${metadata.namespace}/${metadata.name}` : metadata.name;
      return `${kind.toLowerCase()}${group}/${name}\n`;
    })
    .join("");
}
