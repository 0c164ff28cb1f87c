// The namespaced FloatingIP resource's shapes (issue 15): its spec, the
// record the etcd datastore keeps, and the status the controller writes.
// Types only; parsing and the rules are src/failover/'s.

export interface LabelSelectorRequirement {
  key: string;
  operator: "In" | "NotIn" | "Exists" | "DoesNotExist";
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

/** Exactly one of `address` and `pool`. */
export interface FloatingIpSpec {
  /** The floating IP, canonical. */
  address?: string;
  /** The IP pool its address is allocated from (status.address says which). */
  pool?: string;
  podSelector: LabelSelector;
  /** The holder leaves from it (SPEC 3.7's egress), as the annotation's opt-in. */
  egress: boolean;
}

/**
 * A FloatingIP in the etcd datastore (`buoy apply`, issue 15 item 4): the
 * Kubernetes object's parts the controller reads. `uid` is made at its
 * creation and `generation` counts its spec's changes, as the API server
 * does.
 */
export interface FloatingIpRecord {
  namespace: string;
  name: string;
  uid: string;
  generation: number;
  /** RFC 3339. */
  createdAt: string;
  spec: FloatingIpSpec;
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
