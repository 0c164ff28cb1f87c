// The plugin's network configuration: the keys of Calico's plugin, parsed with
// a schema. Unknown keys pass through untouched; a known key of the wrong type
// is a CNI error (code 7) naming the key path.
import * as v from "valibot";
import { DEFAULT_MAX_FLOATING_IPS, MAX_FLOATING_IPS_LIMIT } from "../floating/validate.js";
import { truncateEcho } from "../floating/truncate-echo.js";
import { nodeNameProblem } from "../model/identifiers.js";
import { DEFAULT_AGENT_SOCKET } from "./agent-wire.js";
import { CniCode, CniError } from "./errors.js";
import {
  IMPLICIT_VERSION,
  SUPPORTED_VERSIONS,
  isSupportedVersion,
  type CniVersion,
} from "./versions.js";

/** valibot's object and record schemas let arrays through; config objects never are arrays. */
function plain<T extends v.GenericSchema>(schema: T) {
  return v.pipe(
    v.custom<unknown>((input) => !Array.isArray(input), "object"),
    schema,
  );
}

/** Calico writes these as strings ("true"); booleans are accepted too. */
const StringBoolean = v.union([v.boolean(), v.picklist(["true", "false"])]);
const StringList = v.array(v.string());

/** buoy's own key beside `feature_control`. */
/** Calico's log_file_max_* keys: whole numbers, 0 for no limit. */
const LogLimit = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(1_000_000));

const MaxFloatingIps = v.pipe(
  v.number(),
  v.integer(),
  v.minValue(1),
  v.maxValue(MAX_FLOATING_IPS_LIMIT),
);

const IpamConf = plain(
  v.looseObject({
    type: v.string(),
    assign_ipv4: v.optional(StringBoolean),
    assign_ipv6: v.optional(StringBoolean),
    ipv4_pools: v.optional(StringList),
    ipv6_pools: v.optional(StringList),
  }),
);

const RuntimeConfig = plain(
  v.looseObject({
    "io.kubernetes.cri.pod-annotations": v.optional(plain(v.record(v.string(), v.string()))),
  }),
);

const NetConfSchema = v.looseObject({
  cniVersion: v.optional(v.string()),
  name: v.optional(v.string()),
  type: v.optional(v.string()),
  log_level: v.optional(v.string()),
  log_file_path: v.optional(v.string()),
  log_file_max_size: v.optional(LogLimit),
  log_file_max_age: v.optional(LogLimit),
  log_file_max_count: v.optional(LogLimit),
  datastore_type: v.optional(v.string()),
  etcd_endpoints: v.optional(v.string()),
  etcd_ca_cert_file: v.optional(v.string()),
  etcd_cert_file: v.optional(v.string()),
  etcd_key_file: v.optional(v.string()),
  nodename: v.optional(v.string()),
  mtu: v.optional(v.pipe(v.number(), v.integer(), v.minValue(68), v.maxValue(65535))),
  ipam: v.optional(IpamConf),
  policy: v.optional(plain(v.looseObject({ type: v.optional(v.string()) }))),
  kubernetes: v.optional(plain(v.looseObject({ kubeconfig: v.optional(v.string()) }))),
  feature_control: v.optional(plain(v.looseObject({ floating_ips: v.optional(v.boolean()) }))),
  max_floating_ips_per_pod: v.optional(MaxFloatingIps),
  agent_socket: v.optional(
    v.pipe(
      v.string(),
      v.check((path) => path === "" || path.startsWith("/"), "an absolute path"),
    ),
  ),
  capabilities: v.optional(plain(v.record(v.string(), v.boolean()))),
  runtimeConfig: v.optional(RuntimeConfig),
  prevResult: v.optional(plain(v.looseObject({}))),
  "cni.dev/valid-attachments": v.optional(
    v.nullable(v.array(v.looseObject({ containerID: v.string(), ifname: v.string() }))),
  ),
});

export type DatastoreType = "etcdv3" | "kubernetes";

export interface NetConf {
  cniVersion: CniVersion;
  name: string;
  type: string;
  logLevel: string;
  logFilePath: string;
  /**
   * Calico's log_file_max_size (MB, here bytes), log_file_max_age (days),
   * log_file_max_count; 0: no limit (log/rotation.ts reads them).
   */
  logRotation: { maxBytes: number; maxAgeDays: number; maxCount: number };
  datastoreType: DatastoreType;
  etcdEndpoints: string[];
  /** Calico's `etcd_ca_cert_file`, `etcd_cert_file`, `etcd_key_file` (empty: not set). */
  etcdTlsFiles: { caCertFile: string; certFile: string; keyFile: string };
  nodename: string | undefined;
  mtu: number;
  ipam: {
    type: string;
    assignIpv4: boolean;
    assignIpv6: boolean;
    ipv4Pools: string[];
    ipv6Pools: string[];
  };
  floatingIpsEnabled: boolean;
  /** `agent_socket`: the resident server's socket the executable hands its work to ("" none; ADR 0013). */
  agentSocket: string;
  /** `max_floating_ips_per_pod`: the most floating IPs one pod may ask for. */
  maxFloatingIps: number;
  podAnnotations: Record<string, string>;
  prevResult: Record<string, unknown> | undefined;
  validAttachments: { containerID: string; ifname: string }[] | undefined;
  kubeconfig: string | undefined;
  /** The configuration as received, for delegated plugins. */
  raw: Record<string, unknown>;
}

export const DEFAULT_LOG_FILE = "/var/log/buoy/cni.log";
export const DEFAULT_MTU = 1500;
export const DEFAULT_ETCD_ENDPOINT = "http://127.0.0.1:2379";

/** Parses stdin as JSON; code 6 when it is not. */
export function decodeNetConfJson(stdin: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdin);
  } catch (error) {
    throw new CniError(
      CniCode.decodeFailure,
      `failed to decode network config: ${(error as Error).message}`,
    );
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new CniError(CniCode.decodeFailure, "failed to decode network config: not a JSON object");
  }
  return parsed as Record<string, unknown>;
}

export function parseNetConf(raw: Record<string, unknown>): NetConf {
  const result = v.safeParse(NetConfSchema, raw);
  if (!result.success) {
    const issue = result.issues[0];
    const path = v.getDotPath(issue) ?? "(root)";
    const got = describe(issue.input);
    throw new CniError(
      CniCode.invalidConfig,
      `invalid network config: key '${path}' must be ${issue.expected ?? "valid"}, got ${got}`,
    );
  }
  const conf = result.output;
  const cniVersion = conf.cniVersion ?? IMPLICIT_VERSION;
  if (!isSupportedVersion(cniVersion)) {
    throw new CniError(
      CniCode.incompatibleVersion,
      `incompatible CNI versions: config is "${cniVersion}", plugin supports ${JSON.stringify(SUPPORTED_VERSIONS)}`,
    );
  }
  const datastoreType = conf.datastore_type ?? "etcdv3";
  if (datastoreType !== "etcdv3" && datastoreType !== "kubernetes") {
    throw new CniError(
      CniCode.invalidConfig,
      `invalid network config: key 'datastore_type' must be "etcdv3" or "kubernetes", got "${datastoreType}"`,
    );
  }
  const nodenameProblem = conf.nodename ? nodeNameProblem(conf.nodename) : undefined;
  if (nodenameProblem !== undefined) {
    throw new CniError(
      CniCode.invalidConfig,
      `invalid network config: key 'nodename' is ${JSON.stringify(truncateEcho(conf.nodename ?? ""))}: ${nodenameProblem}`,
    );
  }
  return {
    cniVersion,
    name: conf.name ?? "k8s-pod-network",
    type: conf.type ?? "calico",
    logLevel: conf.log_level ?? "info",
    logFilePath: conf.log_file_path ?? DEFAULT_LOG_FILE,
    logRotation: {
      // Calico's defaults: 100 MB, 30 days, 10 files.
      maxBytes: (conf.log_file_max_size ?? 100) * 1024 * 1024,
      maxAgeDays: conf.log_file_max_age ?? 30,
      maxCount: conf.log_file_max_count ?? 10,
    },
    datastoreType,
    etcdEndpoints: (conf.etcd_endpoints ?? DEFAULT_ETCD_ENDPOINT)
      .split(",")
      .map((endpoint) => endpoint.trim())
      .filter(Boolean),
    etcdTlsFiles: {
      caCertFile: conf.etcd_ca_cert_file ?? "",
      certFile: conf.etcd_cert_file ?? "",
      keyFile: conf.etcd_key_file ?? "",
    },
    nodename: conf.nodename,
    mtu: conf.mtu ?? DEFAULT_MTU,
    ipam: {
      type: conf.ipam?.type ?? "",
      assignIpv4: truthy(conf.ipam?.assign_ipv4, true),
      assignIpv6: truthy(conf.ipam?.assign_ipv6, false),
      ipv4Pools: conf.ipam?.ipv4_pools ?? [],
      ipv6Pools: conf.ipam?.ipv6_pools ?? [],
    },
    floatingIpsEnabled: conf.feature_control?.floating_ips ?? false,
    agentSocket: conf.agent_socket ?? DEFAULT_AGENT_SOCKET,
    maxFloatingIps: conf.max_floating_ips_per_pod ?? DEFAULT_MAX_FLOATING_IPS,
    podAnnotations: conf.runtimeConfig?.["io.kubernetes.cri.pod-annotations"] ?? {},
    prevResult: conf.prevResult,
    // libcni sends null for a node with no sandboxes: nothing is valid. Absent stays undefined.
    validAttachments:
      conf["cni.dev/valid-attachments"] === null ? [] : conf["cni.dev/valid-attachments"],
    kubeconfig: conf.kubernetes?.kubeconfig,
    raw,
  };
}

function truthy(value: boolean | "true" | "false" | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  return value === true || value === "true";
}

function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  return `${typeof value} ${JSON.stringify(value)}`;
}
