// Routes for floating IPs on the node that hosts the pod: `<floating>/32`
// (`/128`) to the pod's host-side interface. They carry their own route
// protocol, apart from the CNI plugin's pod routes (201), so the agent finds
// exactly its own routes without stored state.
import type { Family } from "../net/address.js";

export const FLOATING_ROUTE_PROTOCOL = 202;

export interface FloatingRoute {
  family: Family;
  floating: string;
  hostIfname: string;
}

export function routeKey(route: FloatingRoute): string {
  return `${route.floating} dev ${route.hostIfname}`;
}

/** One `ip -batch` script: deletions first (a moved IP is deleted, then added). */
export function renderRouteChanges(
  added: readonly FloatingRoute[],
  removed: readonly FloatingRoute[],
): string {
  const length = (route: FloatingRoute) => (route.family === 4 ? 32 : 128);
  const lines = [
    ...removed.map(
      (route) =>
        `route del ${route.floating}/${length(route)} dev ${route.hostIfname} proto ${FLOATING_ROUTE_PROTOCOL}`,
    ),
    ...added.map(
      (route) =>
        `route replace ${route.floating}/${length(route)} dev ${route.hostIfname} proto ${FLOATING_ROUTE_PROTOCOL}`,
    ),
  ];
  return lines.map((line) => line + "\n").join("");
}

/** What to add and remove to turn `current` into `desired`, by a key of each item. */
export function diffByKey<T>(
  desired: readonly T[],
  current: readonly T[],
  key: (item: T) => string,
): { added: T[]; removed: T[] } {
  const want = new Set(desired.map(key));
  const have = new Set(current.map(key));
  return {
    added: desired.filter((item) => !have.has(key(item))),
    removed: current.filter((item) => !want.has(key(item))),
  };
}
