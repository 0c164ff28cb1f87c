// What `buoy install-cni` writes, computed from data: the values of Calico's
// `__NAME__` placeholders (from the environment and a few facts about the
// node), the rendered and checked conflist, and the plugin's kubeconfig. Pure:
// the installer (install-cni.ts) reads files and writes them; nothing here does.
import { CniError } from "../cni/errors.js";
import { DEFAULT_LOG_FILE, DEFAULT_MTU, parseNetConf } from "../cni/netconf.js";
import { isSupportedVersion, SUPPORTED_VERSIONS } from "../cni/versions.js";
import { PLACEHOLDERS } from "./placeholders.js";

/** The conflist name Calico's installer writes, and buoy's too (CNI_CONF_NAME changes it). */
export const DEFAULT_CONF_NAME = "10-calico.conflist";
/** The plugin's kubeconfig, beside the conflist, under Calico's name. */
export const KUBECONFIG_NAME = "calico-kubeconfig";
/** The conf dir as the host (and so the plugin) sees it: Calico's CNI_NET_DIR default. */
export const DEFAULT_HOST_CNI_NET_DIR = "/etc/cni/net.d";
/** The names the plugin executable is installed under: one program, its role chosen by its name. */
export const PLUGIN_NAMES = ["buoy", "buoy-ipam", "calico", "calico-ipam"] as const;
/** Main-plugin types the conflist may name: the ones buoy answers to. */
export const MAIN_PLUGIN_TYPES = ["calico", "buoy"] as const;

type Env = Readonly<Record<string, string | undefined>>;

/** What the installer found out about the node before rendering. */
export interface NodeFacts {
  hostname: string;
  /** The token the plugin's kubeconfig carries; undefined when not running in a pod. */
  pluginToken: string | undefined;
  /** MTU of the interface holding the default route, if one was found. */
  defaultRouteMtu: number | undefined;
}

export interface PlaceholderValues {
  values: Map<string, string>;
  /** Where the MTU came from, for the installer's report. */
  mtuSource: string;
  errors: string[];
}

/** The value of every placeholder, from the environment (Calico's variables and defaults) and `facts`. */
export function planPlaceholderValues(env: Env, facts: NodeFacts): PlaceholderValues {
  const errors: string[] = [];
  const text = (name: string, fallback: string) => {
    const value = env[name];
    return value === undefined || value === "" ? fallback : value;
  };
  const mtu = planMtu(env.CNI_MTU, facts.defaultRouteMtu);
  if ("error" in mtu) errors.push(mtu.error);
  const hostNetDir = text("CNI_NET_DIR", DEFAULT_HOST_CNI_NET_DIR).replace(/(.)\/+$/, "$1");
  const values = new Map<string, string>([
    ["KUBERNETES_NODE_NAME", text("KUBERNETES_NODE_NAME", facts.hostname)],
    ["CNI_MTU", "value" in mtu ? String(mtu.value) : ""],
    ["KUBECONFIG_FILEPATH", `${hostNetDir}/${KUBECONFIG_NAME}`],
    ["KUBECONFIG_FILENAME", KUBECONFIG_NAME],
    ["KUBERNETES_SERVICE_HOST", text("KUBERNETES_SERVICE_HOST", "")],
    ["KUBERNETES_SERVICE_PORT", text("KUBERNETES_SERVICE_PORT", "")],
    ["SERVICEACCOUNT_TOKEN", facts.pluginToken ?? ""],
    ["DATASTORE_TYPE", text("DATASTORE_TYPE", "kubernetes")],
    ["ETCD_ENDPOINTS", text("ETCD_ENDPOINTS", "")],
    ["ETCD_DISCOVERY_SRV", text("ETCD_DISCOVERY_SRV", "")],
    // Paths on the host, as the plugin reads them there (the operator puts the files in place).
    ["ETCD_CERT_FILE", text("ETCD_CERT_FILE", "")],
    ["ETCD_KEY_FILE", text("ETCD_KEY_FILE", "")],
    ["ETCD_CA_CERT_FILE", text("ETCD_CA_CERT_FILE", "")],
    ["LOG_LEVEL", text("LOG_LEVEL", "info")],
    ["LOG_FILE_PATH", text("LOG_FILE_PATH", DEFAULT_LOG_FILE)],
    ["LOG_FILE_MAX_SIZE", text("LOG_FILE_MAX_SIZE", "100")],
    ["LOG_FILE_MAX_AGE", text("LOG_FILE_MAX_AGE", "30")],
    ["LOG_FILE_MAX_COUNT", text("LOG_FILE_MAX_COUNT", "10")],
  ]);
  return { values, mtuSource: "source" in mtu ? mtu.source : "", errors };
}

function planMtu(
  text: string | undefined,
  detected: number | undefined,
): { value: number; source: string } | { error: string } {
  const trimmed = text?.trim() ?? "";
  if (trimmed === "" || trimmed === "0") {
    const why = trimmed === "" ? "CNI_MTU not set" : "CNI_MTU 0";
    return detected !== undefined && detected >= 68 && detected <= 65535
      ? { value: detected, source: `${why}: the default route's interface has MTU ${detected}` }
      : { value: DEFAULT_MTU, source: `${why}, no default route to take it from: ${DEFAULT_MTU}` };
  }
  const value = Number(trimmed);
  if (!/^\d+$/.test(trimmed) || value < 68 || value > 65535) {
    return { error: `CNI_MTU must be a whole number from 68 to 65535 (or 0), got '${text}'` };
  }
  return { value, source: "CNI_MTU" };
}

export type RenderResult =
  { ok: true; text: string; used: string[] } | { ok: false; errors: string[] };

// Upper-case words joined by single underscores, between double underscores.
const PLACEHOLDER = /__([A-Z0-9]+(?:_[A-Z0-9]+)*)__/g;

/**
 * Substitutes every `__NAME__` in one pass (a value is never scanned again).
 * Values are escaped as in a JSON string, which changes nothing for any value
 * that is valid where Calico's templates put it. Errors: a placeholder that is
 * not in PLACEHOLDERS, or a required one whose value is empty.
 */
export function renderCniNetworkConfig(
  template: string,
  values: ReadonlyMap<string, string>,
): RenderResult {
  const unknown = new Set<string>();
  const empty = new Set<string>();
  const used = new Set<string>();
  const text = template.replace(PLACEHOLDER, (match, name: string) => {
    const value = values.get(name);
    if (value === undefined) {
      unknown.add(match);
      return match;
    }
    used.add(name);
    if (value === "" && PLACEHOLDERS.find((p) => p.name === name)?.required) empty.add(name);
    return JSON.stringify(value).slice(1, -1);
  });
  const errors = [
    ...[...unknown].map(
      (match) => `unknown placeholder ${match} (buoy install-cni --help lists the known ones)`,
    ),
    ...[...empty].map((name) => `placeholder __${name}__ is used but ${emptyReason(name)}`),
  ];
  return errors.length > 0 ? { ok: false, errors } : { ok: true, text, used: [...used] };
}

function emptyReason(name: string): string {
  switch (name) {
    case "SERVICEACCOUNT_TOKEN":
      return "there is no service account token (not running in a pod?)";
    case "KUBERNETES_NODE_NAME":
      return "neither KUBERNETES_NODE_NAME nor the hostname gives a node name";
    default:
      return `${name} is empty`;
  }
}

/** What the installed conflist says, for the installer's report and its checks. */
export interface ConflistSummary {
  name: string;
  cniVersion: string;
  pluginTypes: string[];
  datastoreType: string;
  nodename: string | undefined;
  mtu: number;
  floatingIps: boolean;
  /** `max_floating_ips_per_pod` (its default when absent). */
  maxFloatingIps: number;
  /** The kubeconfig path the main plugin is given, if any. */
  kubeconfig: string | undefined;
}

export type ConflistCheck =
  { ok: true; summary: ConflistSummary } | { ok: false; errors: string[] };

/**
 * Checks rendered text as the runtime and buoy's plugin will read it: JSON, a
 * conflist (`name`, a non-empty `plugins` list), its first plugin of type
 * calico or buoy and valid for buoy's config parser (with the list's name and
 * cniVersion, as libcni passes them); an etcdv3 datastore needs endpoints.
 */
export function validateConflist(text: string): ConflistCheck {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return { ok: false, errors: [`the rendered config is not JSON: ${jsonError(error, text)}`] };
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return { ok: false, errors: ["the rendered config is not a JSON object"] };
  }
  const list = parsed as Record<string, unknown>;
  const errors: string[] = [];
  if (typeof list.name !== "string" || list.name === "") {
    errors.push("the conflist has no 'name'");
  }
  if (list.cniVersion !== undefined && typeof list.cniVersion !== "string") {
    errors.push("the conflist's 'cniVersion' is not a string");
  }
  const versions = list.cniVersions;
  if (versions !== undefined) {
    if (!Array.isArray(versions) || versions.some((version) => typeof version !== "string")) {
      errors.push("the conflist's 'cniVersions' is not a list of strings");
    } else {
      for (const version of versions as string[]) {
        if (!isSupportedVersion(version)) {
          errors.push(
            `the conflist's 'cniVersions' lists ${version}, which buoy does not support (${SUPPORTED_VERSIONS.join(", ")})`,
          );
        }
      }
    }
  }
  const plugins = list.plugins;
  if (!Array.isArray(plugins) || plugins.length === 0) {
    errors.push(
      "the config is not a conflist: it needs a non-empty 'plugins' list, the main plugin first",
    );
    return { ok: false, errors };
  }
  const types = plugins.map((plugin: unknown) =>
    typeof plugin === "object" && plugin !== null && !Array.isArray(plugin)
      ? (plugin as Record<string, unknown>).type
      : undefined,
  );
  types.forEach((type, index) => {
    if (typeof type !== "string" || type === "") {
      errors.push(`plugins[${index}] has no 'type'`);
    }
  });
  const main = plugins[0] as Record<string, unknown>;
  const mainType = types[0];
  if (
    typeof mainType === "string" &&
    !(MAIN_PLUGIN_TYPES as readonly string[]).includes(mainType)
  ) {
    errors.push(
      `the main plugin (plugins[0]) is of type '${mainType}'; buoy installs ${MAIN_PLUGIN_TYPES.join(" or ")}`,
    );
  }
  if (errors.length > 0) return { ok: false, errors };
  try {
    const conf = parseNetConf({
      ...main,
      name: list.name,
      ...(list.cniVersion !== undefined ? { cniVersion: list.cniVersion } : {}),
    });
    if (conf.datastoreType === "etcdv3" && conf.etcdEndpoints.length === 0) {
      return {
        ok: false,
        errors: [
          "the main plugin's datastore is etcdv3 but etcd_endpoints is empty (ETCD_ENDPOINTS)",
        ],
      };
    }
    return {
      ok: true,
      summary: {
        name: conf.name,
        cniVersion: conf.cniVersion,
        pluginTypes: types as string[],
        datastoreType: conf.datastoreType,
        nodename: conf.nodename,
        mtu: conf.mtu,
        floatingIps: conf.floatingIpsEnabled,
        maxFloatingIps: conf.maxFloatingIps,
        kubeconfig: conf.kubeconfig,
      },
    };
  } catch (error) {
    if (!(error instanceof CniError)) throw error;
    return { ok: false, errors: [`the main plugin (plugins[0]): ${error.message}`] };
  }
}

/** JSON.parse's message, with the line and column of its position when it gives one. */
function jsonError(error: unknown, text: string): string {
  // V8 quotes the text around the error, line breaks included: one line here.
  // Node.js 24's V8 adds "(line 3 column 1)" itself: dropped for the one below.
  const message = (error instanceof Error ? error.message : String(error))
    .replace(/\s+/g, " ")
    .replace(/ \(line \d+ column \d+\)/, "");
  const position = /at position (\d+)/.exec(message)?.[1];
  if (position === undefined) return message;
  const before = text.slice(0, Number(position));
  const line = before.split("\n").length;
  const column = Number(position) - before.lastIndexOf("\n");
  return `${message} (line ${line}, column ${column})`;
}

export interface KubeconfigInput {
  /** `https://host:port`: serverUrl() builds it. */
  server: string;
  token: string;
  /** The API server's CA certificate (PEM); absent with skipTlsVerify. */
  caPem: string | undefined;
  skipTlsVerify: boolean;
}

/** The API server's URL from the pod's environment; IPv6 hosts in brackets. */
export function serverUrl(protocol: string, host: string, port: string): string {
  const bracketed = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
  return `${protocol}://${bracketed}:${port}`;
}

/**
 * The plugin's kubeconfig, written as JSON: valid YAML for kubectl and
 * client-go, and readable by the plugin with JSON.parse (no YAML parser in
 * the CNI executable, whose start-up time counts).
 */
export function renderKubeconfig(input: KubeconfigInput): string {
  const cluster: Record<string, unknown> = { server: input.server };
  if (input.skipTlsVerify) cluster["insecure-skip-tls-verify"] = true;
  else if (input.caPem !== undefined) {
    cluster["certificate-authority-data"] = Buffer.from(input.caPem).toString("base64");
  }
  const config = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "kubernetes", cluster }],
    users: [{ name: "buoy-cni-plugin", user: { token: input.token } }],
    contexts: [{ name: "buoy", context: { cluster: "kubernetes", user: "buoy-cni-plugin" } }],
    "current-context": "buoy",
  };
  return JSON.stringify(config, null, 2) + "\n";
}

/**
 * The interface of the IPv4 default route with the lowest metric, from the
 * text of /proc/net/route; undefined when there is none.
 */
export function parseDefaultRouteInterface(procNetRoute: string): string | undefined {
  let best: { iface: string; metric: number } | undefined;
  for (const line of procNetRoute.split("\n").slice(1)) {
    const [iface, destination, , flags, , , metric, mask] = line.trim().split(/\s+/);
    if (iface === undefined || destination !== "00000000" || mask !== "00000000") continue;
    if ((Number.parseInt(flags ?? "0", 16) & 1) === 0) continue; // RTF_UP
    const value = Number(metric);
    if (!best || value < best.metric) best = { iface, metric: value };
  }
  return best?.iface;
}
