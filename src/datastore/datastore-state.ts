// What `buoy get` reads: every record a CLI command looks at, read in one pass
// from whichever datastore the cluster uses (etcd/etcd-state.ts,
// kube/kube-state.ts).
import type {
  BgpPeer,
  FloatingIpClaim,
  FloatingIpStatus,
  IpPool,
  IpamBlock,
  NamespaceRecord,
  NodeRecord,
  Versioned,
  WorkloadEndpoint,
} from "../model/records.js";
import type { FloatingIpRecord, FloatingIpStatusShape } from "../model/floating-ip-resource.js";

export interface DatastoreState {
  pools: Versioned<IpPool>[];
  blocks: Versioned<IpamBlock>[];
  claims: Versioned<FloatingIpClaim>[];
  endpoints: Versioned<WorkloadEndpoint>[];
  nodes: Versioned<NodeRecord>[];
  peers: Versioned<BgpPeer>[];
  /** The etcd datastore's namespace records (their labels); Kubernetes has Namespaces instead. */
  namespaces?: Versioned<NamespaceRecord>[];
  /**
   * The pods the API server has, being deleted or not, as namespace/name
   * (Kubernetes only): a pod without a buoy endpoint may be another
   * plugin's (Calico's, before a move) or mid-ADD.
   */
  livePods?: string[];
  /** What each pod's floating-IP annotation asks for, as namespace/name (Kubernetes only). */
  floatingIpRequests?: { pod: string; ips: string[] }[];
  /** What each node's agent reports as programmed. */
  statuses: FloatingIpStatus[];
  /** The namespaced FloatingIPs, with what the controller reports of each (etcd: `buoy apply`'s). */
  floatingIpResources?: (Versioned<FloatingIpRecord> & { status?: FloatingIpStatusShape })[];
}
