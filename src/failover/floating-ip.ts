// The namespaced FloatingIP resource (issue 15, manifests/crds.yaml): an
// address that follows one Ready pod among those its podSelector picks in
// its own namespace. Its spec is the tenant's request, the same as the
// floatingIPs annotation is; what it may select is bounded by its namespace
// (docs/security.md). Pure: parsing and the names of what the controller
// writes.
import { canonicalFloatingIps, FloatingIpError } from "../floating/annotation.js";
import { BUOY_API_GROUP } from "../model/api-group.js";
import { labelSelectorProblem, type LabelSelector } from "./label-selector.js";

/** The claim's field naming the FloatingIP (namespace/name) that holds it. */
export const FLOATING_IP_LABEL = `${BUOY_API_GROUP}/floating-ip`;

export interface FloatingIpSpec {
  /** The floating IP, canonical. */
  address: string;
  podSelector: LabelSelector;
  /** The holder leaves from it (SPEC 3.7's egress), as the annotation's opt-in. */
  egress: boolean;
}

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

export interface Condition {
  type: "Assigned" | "Programmed" | "Announced";
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

/** What the controller writes in a FloatingIP's status subresource. */
export interface FloatingIpStatusShape {
  address?: string;
  holder?: { pod: string; node: string };
  /** When the holder took it (RFC 3339). */
  since?: string;
  /** Whether the holder is Ready (printer column). */
  ready?: boolean;
  observedGeneration?: number;
  conditions?: Condition[];
}

/** `namespace/name`: how claims and logs name a FloatingIP. */
export function floatingIpKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/** The spec of a FloatingIP object: what the controller acts on, or the problem with it. */
export function parseFloatingIpSpec(spec: unknown): FloatingIpSpec | { problem: string } {
  const { address, podSelector, egress } = (spec ?? {}) as Record<string, unknown>;
  if (typeof address !== "string") return { problem: "spec.address must be an IP address" };
  let canonical: string;
  try {
    [canonical = ""] = canonicalFloatingIps([address]);
  } catch (error) {
    if (error instanceof FloatingIpError) return { problem: error.message };
    throw error;
  }
  const problem = labelSelectorProblem(podSelector);
  if (problem) return { problem };
  if (egress !== undefined && typeof egress !== "boolean")
    return { problem: "spec.egress must be true or false" };
  return { address: canonical, podSelector: podSelector as LabelSelector, egress: egress === true };
}
