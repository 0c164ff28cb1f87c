// The routes the agent owns on its node, all with buoy's route protocol (202),
// apart from the CNI plugin's pod routes (201) and BIRD's (12), so the agent
// finds exactly its own routes in the kernel without stored state:
//   <floating>/32 dev <pod's host veth>   a floating IP hosted here
//   <cidr> via <node address>             direct routing: another node's IPAM
//                                         block, or a floating IP it hosts
//   <cidr> via <node address> dev vxlan.buoy onlink
//                                         the same through the VXLAN overlay
//   blackhole <block>                     this node's own IPAM blocks: an
//                                         address of them with no pod route
//                                         goes nowhere, never out the default
import type { Family } from "../net/address.js";
import { parsePrefix, formatPrefix, canonicalAddress } from "../net/address.js";

export const BUOY_ROUTE_PROTOCOL = 202;
/**
 * Below BIRD's 32, so a floating IP's local route wins over a route to it
 * learned over BGP (IPv6 routes default to 1024, which would lose) while
 * another node's stale announcement lingers.
 */
export const BUOY_ROUTE_METRIC = 10;

export interface NodeRoute {
  family: Family;
  /** Destination prefix, canonical, with its length (`203.0.113.10/32`). */
  dst: string;
  dev?: string;
  via?: string;
  /** With `via` and `dev`: the next hop is taken as on the device's link (the VXLAN overlay's). */
  onlink?: true;
  blackhole?: true;
}

export function routeKey(route: NodeRoute): string {
  if (route.blackhole) return `blackhole ${route.dst}`;
  if (route.onlink) return `${route.dst} via ${route.via} dev ${route.dev} onlink`;
  return route.via !== undefined
    ? `${route.dst} via ${route.via}`
    : `${route.dst} dev ${route.dev}`;
}

/** One `ip -batch` script: deletions first (a moved destination is deleted, then added). */
export function renderRouteChanges(
  added: readonly NodeRoute[],
  removed: readonly NodeRoute[],
): string {
  const lines = [
    ...removed.map(
      (route) =>
        `route del ${routeKey(route)} proto ${BUOY_ROUTE_PROTOCOL} metric ${BUOY_ROUTE_METRIC}`,
    ),
    ...added.map(
      (route) =>
        `route replace ${routeKey(route)} proto ${BUOY_ROUTE_PROTOCOL} metric ${BUOY_ROUTE_METRIC}`,
    ),
  ];
  return lines.map((line) => line + "\n").join("");
}

/** Reads `ip -json -4|-6 route show proto 202`; entries it cannot read are skipped. */
export function parseIpRoutes(listing: unknown, family: Family): NodeRoute[] {
  if (!Array.isArray(listing)) return [];
  const routes: NodeRoute[] = [];
  for (const entry of listing as Record<string, unknown>[]) {
    if (typeof entry !== "object" || entry === null || typeof entry.dst !== "string") continue;
    const text = entry.dst.includes("/") ? entry.dst : `${entry.dst}/${family === 4 ? 32 : 128}`;
    const prefix = parsePrefix(text);
    if (!prefix || prefix.family !== family) continue;
    const dst = formatPrefix(prefix);
    const onlink = Array.isArray(entry.flags) && entry.flags.includes("onlink");
    if (entry.type === "blackhole") routes.push({ family, dst, blackhole: true });
    else if (typeof entry.gateway === "string") {
      const via = canonicalAddress(entry.gateway);
      if (via && onlink && typeof entry.dev === "string")
        routes.push({ family, dst, via, dev: entry.dev, onlink: true });
      else if (via) routes.push({ family, dst, via });
    } else if (typeof entry.dev === "string") routes.push({ family, dst, dev: entry.dev });
  }
  return routes;
}

/**
 * One line of `ip -o -4|-6 route show proto 202` (issue 14: read line by
 * line, 100k routes never make one parsed listing), or the words of a route
 * notice of `ip monitor`: as parseIpRoutes reads its JSON entry. A multipath
 * route (its `nexthop`s), which the JSON lists without a top-level gateway or
 * device, is skipped as there.
 */
export function parseIpRouteLine(
  line: string | readonly string[],
  family: Family,
): NodeRoute | undefined {
  const words = typeof line === "string" ? line.trim().split(/\s+/) : line;
  if (words.includes("nexthop")) return undefined;
  const field = (name: string) => {
    const at = words.indexOf(name);
    return at >= 0 ? words[at + 1] : undefined;
  };
  const type = words[0] === "blackhole" ? "blackhole" : undefined;
  const dst = type ? words[1] : words[0];
  if (dst === undefined || dst === "") return undefined;
  const flags = words.includes("onlink") ? ["onlink"] : [];
  return parseIpRoutes([{ dst, type, gateway: field("via"), dev: field("dev"), flags }], family)[0];
}

/** What to add and remove to turn `current` into `desired`, by a key of each item. */
export function diffByKey<T>(
  desired: readonly T[],
  current: readonly T[],
  key: (item: T) => string,
): { added: T[]; removed: T[] } {
  // Each key made once (at 100k bindings, each pass makes 100k strings).
  const currentKeys = current.map(key);
  const have = new Set(currentKeys);
  const want = new Set<string>();
  const added: T[] = [];
  for (const item of desired) {
    const itemKey = key(item);
    want.add(itemKey);
    if (!have.has(itemKey)) added.push(item);
  }
  return { added, removed: current.filter((_, index) => !want.has(currentKeys[index] as string)) };
}
