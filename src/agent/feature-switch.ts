// The user's one switch: floating IPs are programmed when the node's CNI
// config enables them for buoy's plugin, unless the agent is told explicitly.
// The same entry bounds how many floating IPs a live edit may give one pod,
// as it bounds ADD (`max_floating_ips_per_pod`).
import { DEFAULT_MAX_FLOATING_IPS, MAX_FLOATING_IPS_LIMIT } from "../floating/validate.js";

export interface SwitchState {
  enabled: boolean;
  /** `max_floating_ips_per_pod` of the entry, else (absent, unreadable, not valid) the default. */
  maxFloatingIps: number;
  /** Where the answer came from, for the start-up log. */
  source: string;
  /** False when the config could not be read or parsed: the caller keeps its last state. */
  readable?: boolean;
}

const OWN_TYPES = new Set(["calico", "buoy"]);

/** Reads `feature_control.floating_ips` of the calico/buoy entry in a conflist or single config. */
export function parseFloatingIpSwitch(text: string, path: string): SwitchState {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return {
      enabled: false,
      maxFloatingIps: DEFAULT_MAX_FLOATING_IPS,
      source: `${path} is not valid JSON (${(error as Error).message})`,
      readable: false,
    };
  }
  const root = (parsed ?? {}) as { plugins?: unknown; type?: unknown };
  const entries = Array.isArray(root.plugins) ? root.plugins : [root];
  const own = entries.find(
    (
      entry,
    ): entry is {
      feature_control?: { floating_ips?: unknown };
      max_floating_ips_per_pod?: unknown;
    } =>
      typeof entry === "object" &&
      entry !== null &&
      OWN_TYPES.has(String((entry as { type?: unknown }).type)),
  );
  if (!own) {
    return {
      enabled: false,
      maxFloatingIps: DEFAULT_MAX_FLOATING_IPS,
      source: `${path} has no calico/buoy plugin: off`,
    };
  }
  const enabled = own.feature_control?.floating_ips === true;
  return {
    enabled,
    maxFloatingIps: readMaxFloatingIps(own.max_floating_ips_per_pod),
    source: `${path} feature_control.floating_ips: ${enabled ? "on" : "off"}`,
  };
}

/** The bound as the CNI schema accepts it (an integer, 1 to 1024), else the default. */
function readMaxFloatingIps(value: unknown): number {
  return typeof value === "number" &&
    Number.isInteger(value) &&
    value >= 1 &&
    value <= MAX_FLOATING_IPS_LIMIT
    ? value
    : DEFAULT_MAX_FLOATING_IPS;
}
