// The floating-IP bound ADD applies, read from what every node's conflist is
// rendered from: the calico-config ConfigMap's cni_network_config template,
// rendered with install-cni's own renderer (placeholders filled with
// stand-ins: the bound never depends on them) and parsed by the plugin's own
// config parser. Pure.
import {
  planPlaceholderValues,
  renderCniNetworkConfig,
  validateConflist,
} from "../install/render.js";

/** `max_floating_ips_per_pod` of the template, or why it cannot be read. */
export function parseFloatingIpBound(template: string): { max: number } | { error: string } {
  const { values } = planPlaceholderValues(
    { CNI_MTU: "1500" },
    { hostname: "buoy-webhook", pluginToken: "stand-in", defaultRouteMtu: 1500 },
  );
  const rendered = renderCniNetworkConfig(template, values);
  if (!rendered.ok) return { error: rendered.errors.join("; ") };
  const check = validateConflist(rendered.text);
  if (!check.ok) return { error: check.errors.join("; ") };
  return { max: check.summary.maxFloatingIps };
}
