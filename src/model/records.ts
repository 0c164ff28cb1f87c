// The records buoy keeps in its datastore. Field names follow Calico's
// resources where one exists (IPPool, WorkloadEndpoint.ipNATs).

export interface IpPool {
  name: string;
  cidr: string;
  /** Prefix length of the per-node blocks carved from this pool. */
  blockSize: number;
  /** No pod addresses from this pool; floating IPs may still live in it. */
  disabled: boolean;
  nodeSelector: string;
  /**
   * Which namespaces may use the pool, for pod addresses and floating IPs
   * (Calico's selector syntax, against the namespace's labels); absent: all.
   */
  namespaceSelector?: string;
  natOutgoing: boolean;
  disableBGPExport: boolean;
  /**
   * Under `--routing vxlan`, whether traffic to other nodes' addresses of the
   * pool is encapsulated (Calico's field): Always, CrossSubnet (only to nodes
   * outside this node's subnets) or Never (routed direct); absent: Always.
   */
  vxlanMode?: VxlanMode;
}

export const VXLAN_MODES = ["Never", "Always", "CrossSubnet"] as const;
export type VxlanMode = (typeof VXLAN_MODES)[number];

/**
 * A namespace's labels in the etcd datastore, which has no Namespace objects
 * (`buoy apply` of kind Namespace); a namespace without one has no labels.
 */
export interface NamespaceRecord {
  name: string;
  labels: Record<string, string>;
}

/** Who an allocation belongs to. */
export interface AllocationOwner {
  /** The handle: the container ID (plus interface when not eth0). */
  handle: string;
  node: string;
  namespace?: string;
  pod?: string;
  /** The CNI network (conflist name) and container the address was given to: what GC matches on. */
  network?: string;
  containerID?: string;
}

export interface IpamBlock {
  cidr: string;
  /** The node this block is affine to ("" when none). */
  affinity: string;
  /** Allocated addresses (canonical text) and their owners. */
  allocations: Record<string, AllocationOwner>;
}

/**
 * The blocks of one region (ipam/region.ts): the /20 (IPv4) or /116 (IPv6)
 * that every block inside it lies in. A block is created only with its
 * region's record changed in the same step, so no two blocks overlap.
 */
export interface IpamRegion {
  cidr: string;
  /** The CIDRs of the blocks in the region, sorted. */
  blocks: string[];
}

export interface IpNat {
  internalIP: string;
  externalIP: string;
}

export interface WorkloadEndpoint {
  node: string;
  namespace: string;
  pod: string;
  containerID: string;
  /** Interface name inside the pod (CNI_IFNAME). */
  endpoint: string;
  /** Host-side veth name. */
  interfaceName: string;
  mac: string;
  ipNetworks: string[];
  ipNATs: IpNat[];
  /**
   * The pod opted in to egress (SPEC 3.7, annotation buoy.dev/floating-ip-egress):
   * its new outbound connections leave from its first floating IP of each
   * family (ipNATs' order, the annotation's) instead of its own address.
   */
  egress?: boolean;
  network: string;
  createdAt: string;
  /** The pod's uid (Kubernetes datastore): a pod of the same name later is another pod. */
  podUID?: string;
}

/** One held floating IP; its key is the IP itself, so two holders cannot exist. */
export interface FloatingIpClaim {
  ip: string;
  namespace: string;
  pod: string;
  containerID: string;
  node: string;
  internalIP: string;
  createdAt: string;
  /** The pod's interface (CNI_IFNAME) and network (conflist name) it was claimed on. */
  endpoint?: string;
  network?: string;
  /** The holder pod's uid (Kubernetes datastore): a pod of the same name later is another holder. */
  podUID?: string;
  /**
   * The namespaced FloatingIP (namespace/name) that holds this claim for its
   * selected pod (Kubernetes datastore, issue 15); absent for an annotation's
   * claim. Only the FloatingIP controller makes, moves and releases these.
   */
  floatingIP?: string;
  /** The FloatingIP asks that its pod leave from it (spec.egress): egress as the annotation's opt-in. */
  egress?: boolean;
}

/** Written by the agent of the node that programmed a floating IP: what the kernel holds. */
export interface FloatingIpStatus {
  ip: string;
  node: string;
  internalIP: string;
  /** When this node started translating ip to internalIP. */
  programmedSince: string;
  /** How the node announces it: "bgp", "direct" (other nodes route to it), or absent (not announced). */
  announced?: "bgp" | "direct";
}

export interface NodeRecord {
  name: string;
  /** The node's own addresses on the network between nodes (next hops, BGP sessions). */
  addresses: string[];
  /** BGP AS number; DEFAULT_AS_NUMBER when absent. */
  asNumber?: number;
}

/** Calico's default AS for nodes. */
export const DEFAULT_AS_NUMBER = 64512;

/** A BGP peer outside the node mesh (a top-of-rack router), as Calico's BGPPeer. */
export interface BgpPeer {
  name: string;
  peerIP: string;
  asNumber: number;
  /** Only this node peers with it; absent: every node does. */
  node?: string;
}

/**
 * A record together with the version it was read at: opaque, compared only
 * for equality (etcd's mod revision in decimal, or Kubernetes' resourceVersion).
 */
export interface Versioned<T> {
  value: T;
  revision: string;
}

export function podRef(owner: {
  namespace?: string | undefined;
  pod?: string | undefined;
}): string {
  return owner.pod ? `${owner.namespace ?? "default"}/${owner.pod}` : "(unknown pod)";
}
