// What `buoy delete` removes on the Kubernetes datastore: IP pools (only when
// no address is allocated in their blocks and no floating IP inside them is
// claimed), BGP peers and FloatingIPs, each on the resourceVersion it was
// checked at. Nodes, Namespaces and Pods are the API server's own objects
// there and are refused. Pure.
import { CliError } from "../cli/cli-error.js";
import type { DeleteTarget, ResourceKind } from "../cli/manifest.js";
import { poolUsage, refuseDeleteInUse } from "../cli/pool-usage.js";
import type { DatastoreState } from "../datastore/datastore-state.js";
import { apiPaths } from "./api-paths.js";

export interface KubeDelete {
  what: string;
  path: string;
  resourceVersion: string;
}

export function planKubeDelete(
  state: DatastoreState,
  targets: readonly DeleteTarget[],
): KubeDelete[] {
  const seen = new Set<string>();
  const deletes: KubeDelete[] = [];
  for (const target of targets) {
    const what = `${target.kind} ${target.name}`;
    if (seen.has(what)) continue;
    seen.add(what);
    if (target.kind === "IPPool") {
      const pool = state.pools.find((candidate) => candidate.value.name === target.name);
      if (!pool) throw new CliError(`IP pool ${target.name} does not exist`);
      refuseDeleteInUse(pool.value, poolUsage(pool.value, state.blocks, state.claims));
      deletes.push({ what, path: apiPaths.pool(target.name), resourceVersion: pool.revision });
    } else if (target.kind === "BGPPeer") {
      const peer = state.peers.find((candidate) => candidate.value.name === target.name);
      if (!peer) throw new CliError(`BGP peer ${target.name} does not exist`);
      deletes.push({ what, path: apiPaths.peer(target.name), resourceVersion: peer.revision });
    } else if (target.kind === "FloatingIP") {
      // The controller releases the claim it held.
      const record = state.floatingIpResources?.find(
        (entry) => `${entry.value.namespace}/${entry.value.name}` === target.name,
      );
      if (!record) throw new CliError(`FloatingIP ${target.name} does not exist`);
      const { namespace, name } = record.value;
      deletes.push({
        what,
        path: apiPaths.floatingIp(namespace, name),
        resourceVersion: record.revision,
      });
    } else {
      throw new CliError(`${what}: ${API_SERVER_KINDS[target.kind] ?? "not deleted by buoy"}`);
    }
  }
  return deletes;
}

const API_SERVER_KINDS: Partial<Record<ResourceKind, string>> = {
  Node: "on the kubernetes datastore the Node is the Kubernetes Node (kubectl delete node)",
  Namespace: "on the kubernetes datastore namespaces are Kubernetes Namespaces (kubectl)",
  Pod: "on the kubernetes datastore pods are Kubernetes Pods (kubectl delete pod)",
};
