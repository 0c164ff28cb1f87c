// Pod networking as Calico lays it out: a veth pair, host side `cali<hash>`,
// the pod's addresses as /32 and /128, a default route through a link-local
// gateway that the host side answers for. Rendered here as `ip -batch`
// scripts; dataplane/linux-pod-network.ts runs them.
import { createHash } from "node:crypto";
import { parseAddress, type Family } from "../net/address.js";

/** The host side's MAC, also the pod's static neighbour entry for the gateway. */
export const GATEWAY_MAC = "ee:ee:ee:ee:ee:ee";
export const GATEWAY: Record<Family, string> = { 4: "169.254.1.1", 6: "fe80::1" };
export const DEFAULT_ROUTE: Record<Family, string> = { 4: "0.0.0.0/0", 6: "::/0" };
/** Route protocol marking every route buoy creates (`ip route show proto 201`). */
export const ROUTE_PROTOCOL = 201;
export const HOST_INTERFACE_PREFIX = "cali";

export interface PodNetworkPlan {
  /** Path of the pod's network namespace. */
  netns: string;
  /** Interface name inside the pod. */
  ifname: string;
  hostIfname: string;
  mtu: number;
  /** Bare pod addresses, one or two families. */
  addresses: readonly string[];
}

/**
 * Calico's host-side name: the prefix and the first 11 hex digits of
 * sha1("<namespace>.<pod>"), or of the container ID when there is no pod name.
 */
export function hostInterfaceName(
  namespace: string | undefined,
  pod: string | undefined,
  containerID: string,
): string {
  const seed = pod ? `${namespace ?? "default"}.${pod}` : containerID;
  return HOST_INTERFACE_PREFIX + createHash("sha1").update(seed).digest("hex").slice(0, 11);
}

/** Host namespace: create the pair (peer straight into the pod), bring it up, route each pod IP to it. */
export function renderHostSetup(plan: PodNetworkPlan): string {
  const lines = [
    `link add ${plan.hostIfname} mtu ${plan.mtu} address ${GATEWAY_MAC} type veth peer name ${plan.ifname} mtu ${plan.mtu} netns ${plan.netns}`,
    `link set ${plan.hostIfname} up`,
    ...plan.addresses.map(
      (ip) =>
        `route replace ${ip}/${family(ip) === 4 ? 32 : 128} dev ${plan.hostIfname} proto ${ROUTE_PROTOCOL}`,
    ),
  ];
  return lines.join("\n") + "\n";
}

/** Pod namespace: addresses, the gateway as a permanent neighbour, default routes; then show the link. */
export function renderPodSetup(plan: PodNetworkPlan): string {
  const dev = `dev ${plan.ifname}`;
  const lines = ["link set lo up", `link set ${plan.ifname} up`];
  for (const ip of plan.addresses) {
    const f = family(ip);
    const gateway = GATEWAY[f];
    lines.push(
      f === 4 ? `address add ${ip}/32 ${dev}` : `address add ${ip}/128 ${dev} nodad`,
      `route replace ${gateway} ${dev} scope link`,
      `neigh replace ${gateway} lladdr ${GATEWAY_MAC} ${dev} nud permanent`,
      `route replace ${DEFAULT_ROUTE[f]} via ${gateway} ${dev}`,
    );
  }
  lines.push(`link show ${dev}`);
  return lines.join("\n") + "\n";
}

function family(ip: string): Family {
  const address = parseAddress(ip);
  if (!address) throw new Error(`not an IP address: ${ip}`);
  return address.family;
}
