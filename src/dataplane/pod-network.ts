// Pod networking as Calico lays it out: a veth pair, host side `cali<hash>`,
// the pod's addresses as /32 and /128, a default route through a link-local
// gateway that the host side answers for. Rendered here as `ip -batch`
// scripts; dataplane/shell/linux-pod-network.ts runs them.
import { interfaceNameProblem } from "../model/identifiers.js";
import { parseAddress, type Family } from "../net/address.js";

/** The host side's MAC, also the pod's static neighbour entry for the gateway. */
export const GATEWAY_MAC = "ee:ee:ee:ee:ee:ee";
export const GATEWAY: Record<Family, string> = { 4: "169.254.1.1", 6: "fe80::1" };
export const DEFAULT_ROUTE: Record<Family, string> = { 4: "0.0.0.0/0", 6: "::/0" };
/** Route protocol marking every route buoy creates (`ip route show proto 201`). */
export const ROUTE_PROTOCOL = 201;
export const HOST_INTERFACE_PREFIX = "cali";

/** The veth pair: everything known before the pod has addresses. */
export interface PodLinkPlan {
  /** Path of the pod's network namespace. */
  netns: string;
  /** Interface name inside the pod. */
  ifname: string;
  hostIfname: string;
  mtu: number;
  /** MAC of the pod side, chosen by buoy so the host side can hold a static neighbour entry. */
  podMac: string;
}

export interface PodNetworkPlan extends PodLinkPlan {
  /** Bare pod addresses, one or two families. */
  addresses: readonly string[];
}

/**
 * A locally administered unicast MAC derived from the container and interface,
 * so a repeated ADD gives the same address.
 */
export async function podMacAddress(containerID: string, ifname: string): Promise<string> {
  const bytes = (await sha1(`${containerID}/${ifname}`)).subarray(0, 6);
  bytes[0] = ((bytes[0] as number) & 0xfc) | 0x02;
  return [...bytes].map((byte) => byte.toString(16).padStart(2, "0")).join(":");
}

/**
 * Calico's host-side name: the prefix and the first 11 hex digits of
 * sha1("<namespace>.<pod>"), or of the container ID when there is no pod name.
 */
export async function hostInterfaceName(
  namespace: string | undefined,
  pod: string | undefined,
  containerID: string,
): Promise<string> {
  const seed = pod ? `${namespace ?? "default"}.${pod}` : containerID;
  const digest = await sha1(seed);
  const hex = [...digest].map((byte) => byte.toString(16).padStart(2, "0")).join("");
  return HOST_INTERFACE_PREFIX + hex.slice(0, 11);
}

/**
 * WebCrypto rather than node:crypto: loading node:crypto costs the compiled
 * CNI executable ~9 ms at every start (docs/adr/0001-cni-executable.md).
 */
async function sha1(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-1", new TextEncoder().encode(text)));
}

/** `ip` arguments that create the pair, the peer straight inside the pod. */
export function linkAddArgs(plan: PodLinkPlan): string[] {
  return [
    ...["link", "add", plan.hostIfname, "mtu", String(plan.mtu), "address", GATEWAY_MAC],
    ...["type", "veth", "peer", "name", plan.ifname, "mtu", String(plan.mtu)],
    ...["address", plan.podMac, "netns", plan.netns],
  ];
}

/**
 * Host namespace, once the pair exists: bring it up, route each pod IP to it
 * and pin the pod's MAC as a permanent neighbour: no ARP or neighbour
 * discovery, so IPv6 works at once instead of after DAD on the new link
 * (about two seconds).
 */
export function renderHostSetup(plan: PodNetworkPlan): string {
  const dev = `dev ${plan.hostIfname}`;
  const lines = [`link set ${plan.hostIfname} up`];
  for (const ip of plan.addresses) {
    lines.push(
      `neigh replace ${ip} lladdr ${plan.podMac} ${dev} nud permanent`,
      `route replace ${ip}/${family(ip) === 4 ? 32 : 128} ${dev} proto ${ROUTE_PROTOCOL}`,
    );
  }
  return lines.join("\n") + "\n";
}

/** Pod namespace, once the pair exists: addresses, the gateway as a permanent neighbour, default routes. */
export function renderPodSetup(plan: PodNetworkPlan): string {
  // The entry checks CNI_IFNAME (cni/env.ts); a name that is not one must
  // never become words, or lines, of the script.
  const problem = interfaceNameProblem(plan.ifname);
  if (problem !== undefined)
    throw new Error(`cannot render pod setup for '${plan.ifname}': ${problem}`);
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
  return lines.join("\n") + "\n";
}

function family(ip: string): Family {
  const address = parseAddress(ip);
  if (!address) throw new Error(`not an IP address: ${ip}`);
  return address.family;
}
