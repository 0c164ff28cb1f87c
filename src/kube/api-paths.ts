// The API server paths the plain-HTTPS side (the CNI plugin, the CLI) calls: buoy's
// objects under its API group, named by their IP or CIDR (names.ts), and the
// Kubernetes objects it reads and writes.
import { BUOY_API_VERSION } from "../model/api-group.js";
import { ipObjectName, prefixObjectName } from "./names.js";

const BUOY = `/apis/${BUOY_API_VERSION}`;

export const apiPaths = {
  pools: `${BUOY}/ippools`,
  pool: (name: string) => `${BUOY}/ippools/${encodeURIComponent(name)}`,
  peers: `${BUOY}/bgppeers`,
  peer: (name: string) => `${BUOY}/bgppeers/${encodeURIComponent(name)}`,
  floatingIps: (namespace: string) =>
    `${BUOY}/namespaces/${encodeURIComponent(namespace)}/floatingips`,
  floatingIp: (namespace: string, name: string) =>
    `${BUOY}/namespaces/${encodeURIComponent(namespace)}/floatingips/${encodeURIComponent(name)}`,
  blocks: `${BUOY}/ipamblocks`,
  block: (cidr: string) => `${BUOY}/ipamblocks/${prefixObjectName(cidr) ?? cidr}`,
  regions: `${BUOY}/ipamregions`,
  region: (cidr: string) => `${BUOY}/ipamregions/${prefixObjectName(cidr) ?? cidr}`,
  affinities: `${BUOY}/blockaffinities`,
  claims: `${BUOY}/floatingipclaims`,
  claim: (ip: string) => `${BUOY}/floatingipclaims/${ipObjectName(ip) ?? ip}`,
  endpoints: `${BUOY}/workloadendpoints`,
  /** `name`: endpointObjectName() (names.ts). */
  endpoint: (name: string) => `${BUOY}/workloadendpoints/${name}`,
  pod: (namespace: string, name: string) =>
    `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`,
  /**
   * The pod's status subresource: where the plugin writes Calico's
   * annotations, as Calico's plugin does (RBAC: patch on pods/status, none
   * on pods, so its token cannot change a pod's spec).
   */
  podStatus: (namespace: string, name: string) =>
    `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}/status`,
  events: (namespace: string) => `/api/v1/namespaces/${encodeURIComponent(namespace)}/events`,
  node: (name: string) => `/api/v1/nodes/${encodeURIComponent(name)}`,
  namespace: (name: string) => `/api/v1/namespaces/${encodeURIComponent(name)}`,
};
