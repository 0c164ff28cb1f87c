// The user's one switch: floating IPs are programmed when the node's CNI
// config enables them for buoy's plugin, unless the agent is told explicitly.
export interface SwitchState {
  enabled: boolean;
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
      source: `${path} is not valid JSON (${(error as Error).message})`,
      readable: false,
    };
  }
  const root = (parsed ?? {}) as { plugins?: unknown; type?: unknown };
  const entries = Array.isArray(root.plugins) ? root.plugins : [root];
  const own = entries.find(
    (entry): entry is { feature_control?: { floating_ips?: unknown } } =>
      typeof entry === "object" &&
      entry !== null &&
      OWN_TYPES.has(String((entry as { type?: unknown }).type)),
  );
  if (!own) return { enabled: false, source: `${path} has no calico/buoy plugin: off` };
  const enabled = own.feature_control?.floating_ips === true;
  return { enabled, source: `${path} feature_control.floating_ips: ${enabled ? "on" : "off"}` };
}
