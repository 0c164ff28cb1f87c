// The custom resources buoy keeps in the Kubernetes API: one list, read by the
// Kubernetes datastore, the manifests' tests (manifests/crds.yaml defines each,
// manifests/rbac.yaml grants each) and the docs. All are in the API group
// buoy.dev, version v1, and cluster-scoped but FloatingIP, the one tenants
// write (issue 15); each other spec holds the fields of the datastore record
// of the same name (src/model/records.ts).

import { BUOY_API_GROUP } from "../model/api-group.js";

export interface BuoyCrd {
  kind: string;
  plural: string;
  singular: string;
  shortNames: readonly string[];
  scope: "Cluster" | "Namespaced";
  /** How an object of this kind is named. */
  naming: string;
}

export const BUOY_CRDS = [
  {
    kind: "IPPool",
    plural: "ippools",
    singular: "ippool",
    shortNames: [],
    scope: "Cluster",
    naming: "any name; IP pools as `buoy apply` and calicoctl name them",
  },
  {
    kind: "IPAMBlock",
    plural: "ipamblocks",
    singular: "ipamblock",
    shortNames: [],
    scope: "Cluster",
    naming: "the block's CIDR with '.', ':' and '/' as '-' (10-0-0-64-26)",
  },
  {
    kind: "IPAMRegion",
    plural: "ipamregions",
    singular: "ipamregion",
    shortNames: [],
    scope: "Cluster",
    naming: "the region's CIDR, a /20 or /116, spelt as a block's (10-0-0-0-20)",
  },
  {
    kind: "BlockAffinity",
    plural: "blockaffinities",
    singular: "blockaffinity",
    shortNames: [],
    scope: "Cluster",
    naming: "<node>-<block name>",
  },
  {
    kind: "FloatingIPClaim",
    plural: "floatingipclaims",
    singular: "floatingipclaim",
    shortNames: ["fip", "fips"],
    scope: "Cluster",
    naming: "the floating IP with '.' and ':' as '-' (10-0-0-7)",
  },
  {
    kind: "WorkloadEndpoint",
    plural: "workloadendpoints",
    singular: "workloadendpoint",
    shortNames: ["wep", "weps"],
    scope: "Cluster",
    naming: "sha256 of <node>/<container>/<interface>, 40 hex digits",
  },
  {
    kind: "BGPPeer",
    plural: "bgppeers",
    singular: "bgppeer",
    shortNames: [],
    scope: "Cluster",
    naming: "any name",
  },
  {
    kind: "Node",
    plural: "nodes",
    singular: "node",
    shortNames: [],
    scope: "Cluster",
    naming: "the Kubernetes node's name",
  },
  {
    kind: "FloatingIP",
    plural: "floatingips",
    singular: "floatingip",
    shortNames: ["vip", "vips"],
    scope: "Namespaced",
    naming: "any name, in the namespace of the pods it follows",
  },
] as const satisfies readonly BuoyCrd[];

export type BuoyCrdPlural = (typeof BUOY_CRDS)[number]["plural"];

/** `<plural>.buoy.dev`, the CustomResourceDefinition's own name. */
export function crdName(plural: BuoyCrdPlural): string {
  return `${plural}.${BUOY_API_GROUP}`;
}
