// What `lab up` applies with `buoy apply -f -`: the lab's IP pools, its nodes
// and, in BGP mode, the external router as a BGP peer. Pure.
import { stringify } from "yaml";
import { BUOY_API_VERSION } from "../model/api-group.js";
import { NODE_AS_NUMBER, type LabTopology } from "./topology.js";

export interface LabManifestOptions {
  /** Whether the buoy in use knows the BGPPeer kind (routing work in progress). */
  bgpPeers: boolean;
}

export function renderLabManifest(topology: LabTopology, options: LabManifestOptions): string {
  const documents: unknown[] = [
    ...topology.pools.map((pool) => ({
      apiVersion: BUOY_API_VERSION,
      kind: "IPPool",
      metadata: { name: pool.name },
      spec: {
        cidr: pool.cidr,
        blockSize: pool.blockSize,
        natOutgoing: pool.natOutgoing,
        disabled: pool.disabled,
      },
    })),
    ...topology.nodes.map((node) => ({
      apiVersion: BUOY_API_VERSION,
      kind: "Node",
      metadata: { name: node.name },
      spec: { addresses: [node.ipv4, node.ipv6], asNumber: NODE_AS_NUMBER },
    })),
  ];
  if (topology.routing === "bgp" && options.bgpPeers) {
    const { external } = topology;
    documents.push(bgpPeer("tor", external.ipv4, external.asNumber));
    if (topology.ipv6) documents.push(bgpPeer("tor-v6", external.ipv6, external.asNumber));
  }
  return documents.map((document) => stringify(document)).join("---\n");
}

function bgpPeer(name: string, peerIP: string, asNumber: number): unknown {
  return {
    apiVersion: BUOY_API_VERSION,
    kind: "BGPPeer",
    metadata: { name },
    spec: { peerIP, asNumber },
  };
}
