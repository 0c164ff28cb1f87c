// Where a kernel's routes for one address lead, in the lab's terms: `ip -j
// route show` output turned into node names. Pure.
import type { LabNodePlan } from "./topology.js";

interface IpRouteHop {
  gateway?: string;
  dev?: string;
}

interface IpRoute extends IpRouteHop {
  type?: string;
  /** Multipath (ECMP): one entry per next hop. */
  nexthops?: IpRouteHop[];
}

/**
 * The next hops of `ip -j route show` output (every route, every ECMP next
 * hop), sorted and without repeats: a node's name for a gateway that is one
 * of the nodes' addresses, else the gateway itself; `dev X` for a route
 * without a gateway; the type of a blackhole or unreachable route. Empty when
 * there is no route.
 */
export function parseRouteTargets(stdout: string, nodes: readonly LabNodePlan[]): string[] {
  const routes = JSON.parse(stdout.trim() || "[]") as IpRoute[];
  const targets = new Set<string>();
  for (const route of routes) {
    if (route.type !== undefined && route.type !== "unicast") {
      targets.add(route.type);
      continue;
    }
    for (const hop of route.nexthops ?? [route]) {
      if (hop.gateway !== undefined) {
        const node = nodes.find((plan) => plan.ipv4 === hop.gateway || plan.ipv6 === hop.gateway);
        targets.add(node?.name ?? hop.gateway);
      } else if (hop.dev !== undefined) {
        targets.add(`dev ${hop.dev}`);
      }
    }
  }
  return [...targets].sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
}
