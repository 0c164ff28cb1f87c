// The namespaced FloatingIP resource (issue 15, manifests/crds.yaml): an
// address that follows one Ready pod among those its podSelector picks in
// its own namespace. Its spec is the tenant's request, the same as the
// floatingIPs annotation is; what it may select is bounded by its namespace
// (docs/security.md). Pure: parsing and the names of what the controller
// writes.
import { canonicalFloatingIps, FloatingIpError } from "../floating/annotation.js";
import { BUOY_API_GROUP } from "../model/api-group.js";
import { labelSelectorProblem } from "./label-selector.js";
import type {
  FloatingIpSpec,
  FloatingIpStatusShape,
  LabelSelector,
} from "../model/floating-ip-resource.js";
export type {
  Condition,
  FloatingIpRecord,
  FloatingIpSpec,
  FloatingIpStatusShape,
} from "../model/floating-ip-resource.js";

/** The claim's field naming the FloatingIP (namespace/name) that holds it. */
export const FLOATING_IP_LABEL = `${BUOY_API_GROUP}/floating-ip`;

/** A FloatingIP as the controller reads it. */
export interface FloatingIpResource {
  namespace: string;
  name: string;
  uid: string;
  generation: number;
  /** The spec, or why it cannot be acted on (shown as condition Assigned=False, InvalidSpec). */
  spec: FloatingIpSpec | { problem: string };
  status: FloatingIpStatusShape;
}

/** `namespace/name`: how claims and logs name a FloatingIP. */
export function floatingIpKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/** The spec of a FloatingIP object: what the controller acts on, or the problem with it. */
export function parseFloatingIpSpec(spec: unknown): FloatingIpSpec | { problem: string } {
  const { address, pool, podSelector, egress } = (spec ?? {}) as Record<string, unknown>;
  const where = parseWhere(address, pool);
  if ("problem" in where) return where;
  const problem = labelSelectorProblem(podSelector);
  if (problem) return { problem };
  if (egress !== undefined && typeof egress !== "boolean")
    return { problem: "spec.egress must be true or false" };
  return { ...where, podSelector: podSelector as LabelSelector, egress: egress === true };
}

/** Kubernetes object names, as pools are named. */
const POOL_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/** spec.address (canonical) or spec.pool: exactly one. */
function parseWhere(
  address: unknown,
  pool: unknown,
): { address: string } | { pool: string } | { problem: string } {
  if (address !== undefined && pool !== undefined)
    return { problem: "give spec.address or spec.pool, not both" };
  if (pool !== undefined) {
    if (typeof pool !== "string" || pool.length > 253 || !POOL_NAME.test(pool))
      return { problem: "spec.pool must be the name of an IP pool" };
    return { pool };
  }
  if (typeof address !== "string")
    return { problem: "spec.address must be an IP address, or spec.pool the name of an IP pool" };
  try {
    const [canonical = ""] = canonicalFloatingIps([address]);
    return { address: canonical };
  } catch (error) {
    if (error instanceof FloatingIpError) return { problem: error.message };
    throw error;
  }
}
