// Records the agent's unit tests start from: the floating pool of
// 203.0.113.0/24 (a disabled pool: floating IPs only), and pod shop/web
// (uid u1) on node-1 at 10.244.0.5: its sandboxes' endpoints and claims.
import type { FloatingIpClaim, IpPool, WorkloadEndpoint } from "../../src/model/records.js";

export const FLOATING_POOL: IpPool = {
  name: "floating",
  cidr: "203.0.113.0/24",
  blockSize: 26,
  disabled: true,
  nodeSelector: "all()",
  natOutgoing: false,
  disableBGPExport: false,
};

/** The endpoint record of pod shop/web's sandbox `containerID` on node-1. */
export function webEndpoint(
  containerID: string,
  fields: Partial<WorkloadEndpoint> = {},
): WorkloadEndpoint {
  return {
    node: "node-1",
    namespace: "shop",
    pod: "web",
    podUID: "u1",
    containerID,
    endpoint: "eth0",
    interfaceName: "cali0",
    mac: "",
    ipNetworks: ["10.244.0.5/32"],
    ipNATs: [],
    network: "k8s-pod-network",
    createdAt: "",
    ...fields,
  };
}

/** The claim of `ip` by pod shop/web's sandbox `containerID` on node-1, for its address. */
export function webClaim(
  ip: string,
  containerID = "c1",
  fields: Partial<FloatingIpClaim> = {},
): FloatingIpClaim {
  return {
    ip,
    namespace: "shop",
    pod: "web",
    podUID: "u1",
    containerID,
    node: "node-1",
    internalIP: "10.244.0.5",
    endpoint: "eth0",
    createdAt: "",
    ...fields,
  };
}
