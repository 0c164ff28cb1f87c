// What `buoy get` shows: selectRecords() picks the records a command line asks
// for, renderGet() prints them as a table (calicoctl's columns), as
// resources in JSON or YAML, their names, or through a JSONPath template
// (kubectl's -o name and -o jsonpath). Pure.
import type {
  BgpPeer,
  FloatingIpClaim,
  FloatingIpStatus,
  IpPool,
  NodeRecord,
  WorkloadEndpoint,
} from "../model/records.js";
import { canonicalAddress, parseAddress } from "../net/address.js";
import { CliError, UsageError } from "./cli-error.js";
import type { DatastoreState } from "../datastore/datastore-state.js";
import { BUOY_API_VERSION } from "../model/api-group.js";
import {
  manifestDocument,
  nodeManifest,
  peerManifest,
  poolManifest,
  renderManifests,
  renderNames,
  type Manifest,
} from "./manifest.js";
import type { ResourceType } from "./resource-type.js";
import { renderTable } from "../text/table.js";
import { JsonPathError, renderJsonPath } from "../text/jsonpath.js";

export type OutputFormat = "table" | "wide" | "json" | "yaml" | "name" | { jsonpath: string };

/** -o's value: a table's, json, yaml, name, or jsonpath=TEMPLATE (kubectl's). */
export function parseOutputFormat(text: string | undefined): OutputFormat {
  if (text === undefined) return "table";
  if (["wide", "json", "yaml", "name"].includes(text)) return text as OutputFormat;
  const jsonpath = /^jsonpath=(.*)$/s.exec(text);
  if (jsonpath) {
    const template = (jsonpath[1] ?? "").replace(/^'(.*)'$/s, "$1");
    if (template === "")
      throw new UsageError("-o jsonpath= needs a template, e.g. '{.items[*].metadata.name}'");
    return { jsonpath: template };
  }
  throw new UsageError(
    `-o ${text}: the output is one of wide, json, yaml, name, jsonpath=TEMPLATE`,
  );
}

/**
 * A claim and, when the holder's node has programmed it, since when and how
 * that node announces it to the others.
 */
export type FloatingIpView = FloatingIpClaim &
  Partial<Pick<FloatingIpStatus, "programmedSince" | "announced">> & {
    /** The FloatingIP holding it reports its holder Ready (absent: an annotation's claim). */
    ready?: boolean;
  };

/** A FloatingIP no pod holds now, and why (its Assigned condition's reason). */
export interface UnheldFloatingIp {
  key: string;
  address: string;
  reason: string;
}

export type Records =
  | { type: "ippools"; items: IpPool[] }
  | { type: "endpoints"; items: WorkloadEndpoint[] }
  | { type: "floatingips"; items: FloatingIpView[]; unheld?: UnheldFloatingIp[] }
  | { type: "nodes"; items: NodeRecord[] }
  | { type: "bgppeers"; items: BgpPeer[] };

export interface Selection {
  /** A record name; for endpoints also `namespace/pod` or the pod's name. */
  name?: string | undefined;
  /** Only records on this node (endpoints and floating IPs). */
  node?: string | undefined;
}

/** The records of `type` the selection asks for, sorted; a name that matches nothing throws. */
export function selectRecords(
  type: ResourceType,
  state: DatastoreState,
  { name, node }: Selection,
): Records {
  const onNode = <T extends { node: string }>(items: T[]) =>
    node === undefined ? items : items.filter((item) => item.node === node);
  switch (type) {
    case "ippools": {
      const items = sortBy(
        state.pools.map((pool) => pool.value),
        (pool) => pool.name,
      ).filter((pool) => name === undefined || pool.name === name);
      if (name !== undefined && items.length === 0) {
        throw new CliError(`IP pool ${name} does not exist`);
      }
      return { type, items };
    }
    case "nodes": {
      const items = sortBy(
        state.nodes.map((entry) => entry.value),
        (entry) => entry.name,
      ).filter((entry) => name === undefined || entry.name === name);
      if (name !== undefined && items.length === 0) {
        throw new CliError(`node ${name} does not exist`);
      }
      return { type, items };
    }
    case "bgppeers": {
      const items = sortBy(
        state.peers.map((entry) => entry.value),
        (peer) => peer.name,
      ).filter((peer) => name === undefined || peer.name === name);
      if (name !== undefined && items.length === 0) {
        throw new CliError(`BGP peer ${name} does not exist`);
      }
      return { type, items };
    }
    case "endpoints": {
      const items = sortBy(onNode(state.endpoints.map((entry) => entry.value)), (endpoint) =>
        [endpoint.namespace, endpoint.pod, endpoint.node, endpoint.endpoint].join("\0"),
      ).filter(
        (endpoint) =>
          name === undefined ||
          name === endpointName(endpoint) ||
          name === `${endpoint.namespace}/${endpoint.pod}` ||
          name === endpoint.pod,
      );
      if (name !== undefined && items.length === 0) {
        throw new CliError(
          `no workload endpoint matches '${name}'${node === undefined ? "" : ` on node ${node}`}`,
        );
      }
      return { type, items };
    }
    case "floatingips": {
      const ip = name === undefined ? undefined : canonicalAddress(name);
      const key = name?.includes("/") && ip === undefined ? name : undefined;
      if (name !== undefined && ip === undefined && key === undefined) {
        throw new CliError(`'${name}' is not an IP address, nor a FloatingIP's namespace/name`);
      }
      const resources = state.floatingIpResources ?? [];
      const readyOf = new Map(
        resources.map(({ value, status }) => [`${value.namespace}/${value.name}`, status?.ready]),
      );
      const programmed = new Map(
        state.statuses.map((status) => [
          `${status.node}|${status.ip}|${status.internalIP}`,
          status,
        ]),
      );
      const views: FloatingIpView[] = state.claims.map(({ value: claim }) => {
        const status = programmed.get(`${claim.node}|${claim.ip}|${claim.internalIP}`);
        const ready = claim.floatingIP === undefined ? undefined : readyOf.get(claim.floatingIP);
        return {
          ...claim,
          ...(status ? { programmedSince: status.programmedSince } : {}),
          ...(status?.announced ? { announced: status.announced } : {}),
          ...(ready !== undefined ? { ready } : {}),
        };
      });
      const items = onNode(views)
        .filter(
          (claim) =>
            (ip === undefined || claim.ip === ip) &&
            (key === undefined || claim.floatingIP === key),
        )
        .sort(byAddress);
      const held = new Set(views.map((claim) => claim.floatingIP));
      const unheld = (node === undefined ? resources : [])
        .map(({ value, status }) => ({
          key: `${value.namespace}/${value.name}`,
          address: value.spec.address ?? status?.address ?? `from pool ${value.spec.pool ?? "?"}`,
          reason: status?.conditions?.find((c) => c.type === "Assigned")?.reason ?? "Pending",
        }))
        .filter(
          (fip) =>
            !held.has(fip.key) &&
            (ip === undefined || fip.address === ip) &&
            (key === undefined || fip.key === key),
        )
        .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      if (key !== undefined && items.length === 0 && unheld.length === 0) {
        throw new CliError(`FloatingIP ${key} does not exist`);
      }
      if (ip !== undefined && items.length === 0 && unheld.length === 0) {
        throw new CliError(
          `floating IP ${ip} is not held by any pod${node === undefined ? "" : ` on node ${node}`}`,
        );
      }
      return { type, items, ...(unheld.length > 0 ? { unheld } : {}) };
    }
  }
}

export function renderGet(records: Records, format: OutputFormat, asList: boolean): string {
  const view = viewOf(records);
  if (format === "json" || format === "yaml") {
    return renderManifests(view.manifests, { kind: view.kind, asList, format });
  }
  if (format === "name") return renderNames(view.manifests);
  if (typeof format === "object") {
    const document = manifestDocument(view.manifests, { kind: view.kind, asList });
    try {
      return renderJsonPath(format.jsonpath, document);
    } catch (error) {
      if (error instanceof JsonPathError) throw new UsageError(`-o jsonpath: ${error.message}`);
      throw error;
    }
  }
  const wide = format === "wide";
  return renderTable(
    wide ? [...view.headers, ...view.wideHeaders] : view.headers,
    view.rows.map(([short, extra]) => (wide ? [...short, ...extra] : short)),
  );
}

interface View {
  kind: string;
  headers: string[];
  wideHeaders: string[];
  /** Per record: the default columns and the extra wide ones. */
  rows: [string[], string[]][];
  manifests: Manifest[];
}

function viewOf(records: Records): View {
  switch (records.type) {
    case "ippools":
      return {
        kind: "IPPool",
        headers: ["NAME", "CIDR", "SELECTOR"],
        wideHeaders: ["BLOCKSIZE", "DISABLED", "NATOUTGOING", "DISABLEBGPEXPORT"],
        rows: records.items.map((pool) => [
          [pool.name, pool.cidr, pool.nodeSelector],
          [
            String(pool.blockSize),
            String(pool.disabled),
            String(pool.natOutgoing),
            String(pool.disableBGPExport),
          ],
        ]),
        manifests: records.items.map(poolManifest),
      };
    case "endpoints":
      return {
        kind: "WorkloadEndpoint",
        headers: ["WORKLOAD", "NODE", "NETWORKS", "INTERFACE"],
        wideHeaders: ["FLOATING IPS", "EGRESS", "CONTAINER"],
        rows: records.items.map((endpoint) => [
          [
            `${endpoint.namespace}/${endpoint.pod}`,
            endpoint.node,
            endpoint.ipNetworks.join(","),
            endpoint.interfaceName,
          ],
          [
            endpoint.ipNATs.map((nat) => `${nat.externalIP}->${nat.internalIP}`).join(","),
            endpoint.egress ? "yes" : "-",
            endpoint.containerID,
          ],
        ]),
        manifests: records.items.map(endpointManifest),
      };
    case "floatingips":
      return {
        kind: "FloatingIPClaim",
        headers: [
          "FLOATING IP",
          "POD",
          "NODE",
          "INTERNAL IP",
          "PROGRAMMED",
          "ANNOUNCED",
          "FLOATINGIP",
          "READY",
          "SINCE",
        ],
        wideHeaders: ["CONTAINER", "PROGRAMMED SINCE"],
        rows: [
          ...records.items.map((claim): [string[], string[]] => [
            [
              claim.ip,
              `${claim.namespace}/${claim.pod}`,
              claim.node,
              claim.internalIP,
              claim.programmedSince ? "yes" : "no",
              claim.announced ?? "-",
              claim.floatingIP ?? "-",
              claim.ready === undefined ? "-" : claim.ready ? "yes" : "no",
              claim.createdAt,
            ],
            [claim.containerID, claim.programmedSince ?? ""],
          ]),
          // A FloatingIP no pod holds: its address, and why in the POD column.
          ...(records.unheld ?? []).map((fip): [string[], string[]] => [
            [fip.address, `(${fip.reason})`, "-", "-", "no", "-", fip.key, "-", "-"],
            ["-", ""],
          ]),
        ],
        manifests: records.items.map(claimManifest),
      };
    case "nodes":
      return {
        kind: "Node",
        headers: ["NAME", "ADDRESSES"],
        wideHeaders: ["ASN"],
        rows: records.items.map((node) => [
          [node.name, node.addresses.join(",")],
          [node.asNumber === undefined ? "" : String(node.asNumber)],
        ]),
        manifests: records.items.map(nodeManifest),
      };
    case "bgppeers":
      return {
        kind: "BGPPeer",
        headers: ["NAME", "PEERIP", "ASN", "NODE"],
        wideHeaders: [],
        rows: records.items.map((peer) => [
          [peer.name, peer.peerIP, String(peer.asNumber), peer.node ?? "(all)"],
          [],
        ]),
        manifests: records.items.map(peerManifest),
      };
  }
}

/** Calico's workload endpoint name: `<node>-k8s-<pod>-<interface>`, each `-` doubled. */
export function endpointName(endpoint: WorkloadEndpoint): string {
  const escape = (part: string) => part.replaceAll("-", "--");
  return `${escape(endpoint.node)}-k8s-${escape(endpoint.pod)}-${escape(endpoint.endpoint)}`;
}

function endpointManifest(endpoint: WorkloadEndpoint): Manifest {
  const { namespace, ...spec } = endpoint;
  return {
    apiVersion: BUOY_API_VERSION,
    kind: "WorkloadEndpoint",
    metadata: { name: endpointName(endpoint), namespace },
    spec: { ...spec },
  };
}

function claimManifest(claim: FloatingIpView): Manifest {
  const { ip, programmedSince, announced, ...spec } = claim;
  delete spec.ready;
  return {
    apiVersion: BUOY_API_VERSION,
    kind: "FloatingIPClaim",
    metadata: { name: ip },
    spec: { ...spec },
    status: programmedSince
      ? { programmed: true, programmedSince, ...(announced ? { announced } : {}) }
      : { programmed: false },
  };
}

function sortBy<T>(items: T[], key: (item: T) => string): T[] {
  return items.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

function byAddress(a: FloatingIpClaim, b: FloatingIpClaim): number {
  const left = parseAddress(a.ip);
  const right = parseAddress(b.ip);
  if (!left || !right) return a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0;
  if (left.family !== right.family) return left.family - right.family;
  return left.value < right.value ? -1 : left.value > right.value ? 1 : 0;
}
