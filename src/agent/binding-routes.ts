// The routes of floating-IP bindings, as the reconciler plans them: the
// host route each binding's floating IP takes to its pod, whether BIRD
// exports it, and which destinations of a routing plan a binding's route
// would contest (those make a change plan everything).
import type { IpPool } from "../model/records.js";
import type { NatBinding } from "../dataplane/nat-plan.js";
import type { RoutingPlan } from "../dataplane/routing-plan.js";
import type { NodeRoute } from "../dataplane/node-routes.js";
import { findPool } from "../floating/validate.js";
import type { Family } from "../net/address.js";

/** The route a binding's floating IP takes to its pod. */
export function bindingRoute(binding: NatBinding): NodeRoute {
  return {
    family: binding.family,
    dst: hostPrefix(binding.floating, binding.family),
    dev: binding.hostIfname,
  };
}

export function hostPrefix(address: string, family: Family): string {
  return `${address}/${family === 4 ? 32 : 128}`;
}

export function exportedBinding(binding: NatBinding, pools: readonly IpPool[]): boolean {
  const pool = findPool(binding.floating, pools);
  return pool !== undefined && !pool.disableBGPExport;
}

/**
 * The destinations of a routing plan a binding's route would contest: its
 * routes other than the bindings' own, and those it skipped as duplicates.
 */
export function contestedDestinations(
  plan: RoutingPlan,
  bindingOf: (address: string) => NatBinding | undefined,
): Set<string> {
  const contested = new Set<string>();
  for (const route of plan.routes) {
    const binding = bindingOf(route.dst.slice(0, route.dst.lastIndexOf("/")));
    if (!binding || route.dev !== binding.hostIfname) contested.add(route.dst);
  }
  for (const refusal of plan.refused) {
    if (refusal.reason === "duplicate route") contested.add(refusal.item);
  }
  return contested;
}
