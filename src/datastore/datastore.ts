// The domain port the CNI plugin works against (ADR 0005, ADR 0006): the few
// operations ADD, DEL, CHECK, STATUS and GC need, each with the guarantee it
// must give. EtcdDatastore gives them with multi-key transactions over the
// Kv port; KubernetesDatastore with objects, resourceVersion and
// create-if-absent. Both pass the same conformance cases
// (test/support/datastore-conformance.ts: unit, integration and kube tests).
import type {
  FloatingIpClaim,
  IpPool,
  IpamBlock,
  IpamRegion,
  Versioned,
  WorkloadEndpoint,
} from "../model/records.js";

/**
 * What ADD reads before writing (issue 14): bounded by what one pod touches,
 * never by the cluster's size.
 */
export interface AllocationQuery {
  /** The node whose blocks to read: those affine to it and those it borrowed from. */
  node?: string;
  /** Floating IPs whose claims and holding blocks to read. */
  floatingIps: readonly string[];
  /** The pools, when this ADD read them already: returned as they are, not read again. */
  pools?: readonly IpPool[];
}

/**
 * What IPAM and the floating-IP checks read before writing: every pool, and
 * the blocks and claims an AllocationQuery names (not every one there is).
 */
export interface AllocationSnapshot {
  pools: IpPool[];
  blocks: Versioned<IpamBlock>[];
  claims: Versioned<FloatingIpClaim>[];
  /** etcd: the region records (ipam/region.ts), whose revisions its transactions compare. */
  regions?: Versioned<IpamRegion>[];
}

/**
 * "claimed": the address the write hands out is a floating IP's claim, and
 * is not allocated; the caller picks another.
 */
export type BlockWritten = "written" | "conflict" | "overlaps" | "claimed";

/** One compare-and-swap of an IPAM block. */
export interface BlockWrite {
  /** The block as it is to be written. */
  block: IpamBlock;
  /** The version the change was computed from; undefined: the block must not exist yet. */
  revision: string | undefined;
  /** The address this write hands out: the write fails if a floating-IP claim holds it. */
  assigned?: { ip: string; node: string };
  /**
   * A new block only: CIDRs that must not exist either, the prefixes around
   * it from its pool's length on, where an older buoy's block listed in no
   * region could be ("overlaps" if one does).
   */
  absent?: readonly string[];
  /** Addresses this write frees, with the node each was given to. */
  released?: readonly { ip: string; node: string }[];
}

/** A pod as the orchestrator holds it (Kubernetes datastore only). */
export interface PodInfo {
  uid: string;
  annotations: Record<string, string>;
}

/** A container's records, as ADD writes them once its addresses are known. */
export interface Attachment {
  endpoint: WorkloadEndpoint;
  claims: FloatingIpClaim[];
  pools: readonly IpPool[];
  /** What the ADD checked its claims against (compared, not re-read, where the store can). */
  seen: AllocationSnapshot | undefined;
  /** The holder pod's uid, when the datastore read the pod. */
  podUID?: string;
}

export interface ReleaseTarget {
  node: string;
  containerID: string;
  /** Only this interface's records; all of the container's when absent (GC). */
  ifname?: string;
  /** The IPAM handle, when buoy's own IPAM holds the addresses. */
  handle?: string;
  /** The handle's addresses, when the caller knows them (an ADD undoing itself): read by name. */
  addresses?: readonly string[];
  /** The pod, when known (CNI_ARGS): its annotations are cleared in Kubernetes. */
  namespace?: string;
  pod?: string;
}

export interface Released {
  addresses: string[];
  floatingIps: string[];
}

export interface AttachedContainer {
  containerID: string;
  namespace?: string;
  pod?: string;
}

export interface EndpointRef {
  node: string;
  containerID: string;
  ifname: string;
  namespace?: string;
  pod?: string;
}

export interface Datastore {
  /** The pools, and the blocks and claims the query names, in a bounded number of requests. */
  readAllocationSnapshot(query: AllocationQuery): Promise<AllocationSnapshot>;
  /**
   * The blocks holding anything of `node`: those affine to it and those it
   * borrowed an address from, through an index (etcd: affinity and
   * node-borrowed records; Kubernetes: a label per node), not a list of all.
   * Kubernetes serves it from the API server's watch cache, a moment behind:
   * a write from it is on the block's resourceVersion, and what must be
   * current is read by name.
   */
  listNodeBlocks(node: string): Promise<Versioned<IpamBlock>[]>;
  /** The region records (ipam/region.ts) of these CIDRs, in order; undefined where there is none. */
  readRegions(cidrs: readonly string[]): Promise<(Versioned<IpamRegion> | undefined)[]>;
  /** The blocks of these CIDRs that exist. */
  readBlocks(cidrs: readonly string[]): Promise<Versioned<IpamBlock>[]>;
  /** Those of these addresses a floating-IP claim holds (by key: a bounded read). */
  readClaimedAddresses(ips: readonly string[]): Promise<string[]>;
  /**
   * "conflict" when the block changed since `revision`; "claimed" when
   * `assigned` is claimed. Either way the address is not allocated: etcd
   * writes nothing (one transaction compares the claim key); Kubernetes
   * writes the block, sees the claim on a quorum read and takes the address
   * back, so a new block stays, empty (the conformance suite states both).
   * "overlaps": a new block that would overlap one its region's record
   * lists (ipam/region.ts); nothing is written.
   */
  writeBlock(write: BlockWrite): Promise<BlockWritten>;
  /**
   * The namespace's labels, which pools' namespaceSelector reads: Kubernetes'
   * Namespace object, etcd's `namespaces/<name>` record; {} when there is none.
   */
  readNamespaceLabels(namespace: string): Promise<Record<string, string>>;
  /** The pod, or undefined when this datastore takes annotations from the runtime (etcd). */
  readPod(namespace: string, name: string): Promise<PodInfo | undefined>;
  /**
   * Records the container's endpoint and creates its claims, each exclusive:
   * rejects with FloatingIpError naming the holder when another container
   * holds one of the IPs or it is a pod's own address, leaving none of them.
   */
  commitAttachment(attachment: Attachment): Promise<void>;
  /** Releases the container's endpoint, claims and (with `handle`) addresses. Idempotent. */
  release(target: ReleaseTarget): Promise<Released>;
  getEndpoint(ref: EndpointRef): Promise<WorkloadEndpoint | undefined>;
  getClaim(ip: string): Promise<FloatingIpClaim | undefined>;
  /**
   * Containers attached on `node` in `network`: what GC checks. Both list
   * every container with an endpoint record (Kubernetes: a WorkloadEndpoint
   * object, ADR 0008; also those holding a claim, an older buoy's sandboxes).
   */
  listAttachedContainers(node: string, network: string): Promise<AttachedContainer[]>;
  /** Tells the pod's owner why an ADD was refused (a Kubernetes Event); best effort. */
  reportRefusal(namespace: string, pod: string, message: string): Promise<void>;
  /** Resolves when the store answers; rejects with the reason when it does not. */
  ping(): Promise<void>;
}
