// What `buoy apply` writes on the Kubernetes datastore, once
// cli/apply-checks.ts has passed the file against what the API server holds:
// one create or replace per resource, IP pools first (a FloatingIP may name a
// pool of the same file). A replace keeps the stored object's metadata (its
// labels, annotations, uid) and is made on its resourceVersion, so a change
// made meanwhile fails it instead of being lost. Nodes, Namespaces and Pods
// are the API server's own objects there: refused, naming the kubectl command
// that changes what buoy reads of them. Pure.
import { CliError } from "../cli/cli-error.js";
import { checkApply } from "../cli/apply-checks.js";
import { peerManifest, poolManifest, resourceName, type Resource } from "../cli/manifest.js";
import type { DatastoreState } from "../datastore/datastore-state.js";
import { BUOY_API_VERSION } from "../model/api-group.js";
import { apiPaths } from "./api-paths.js";
import { AS_NUMBER_ANNOTATION } from "./labels.js";
import type { KubeObject } from "./objects.js";

export interface KubeWrite {
  /** For messages and progress: `IPPool floating-v4`. */
  what: string;
  /** Where the object lives; created in its collection when `stored` is absent. */
  path: string;
  collection: string;
  object: KubeObject;
  /** The object as the API server holds it now: replaced on its resourceVersion. */
  stored?: KubeObject;
}

/**
 * The writes, in order; throws CliError for a resource refused. `stored`
 * holds the objects the file names that exist now, by their path.
 */
export function planKubeApply(
  state: DatastoreState,
  resources: readonly Resource[],
  stored: ReadonlyMap<string, KubeObject>,
): KubeWrite[] {
  for (const resource of resources) refuseApiServerKinds(resource);
  const checked = checkApply(state, resources);
  // etcd deletes a changed pool's empty old blocks with the change; here
  // nothing would, and IPAM would go on allocating from them.
  for (const [name, blocks] of checked.emptyBlocksAfter) {
    if (blocks.length === 0) continue;
    throw new CliError(
      `cannot change cidr or blockSize of IP pool ${name} on the kubernetes datastore while it has ` +
        `blocks (${blocks.length}, e.g. ${blocks[0]?.value.cidr ?? ""}): its old blocks would stay ` +
        "affine to their nodes; add a new pool instead",
    );
  }
  const ordered = [
    ...resources.filter((resource) => resource.kind === "IPPool"),
    ...resources.filter((resource) => resource.kind !== "IPPool"),
  ];
  return ordered.map((resource) => {
    const target = kubeTarget(resource);
    const before = stored.get(target.path);
    const metadata = before
      ? { ...before.metadata, ...target.object.metadata }
      : target.object.metadata;
    return {
      what: `${resource.kind} ${resourceName(resource)}`,
      ...target,
      object: { ...target.object, metadata },
      ...(before ? { stored: before } : {}),
    };
  });
}

/** The path of each object `resources` would write: what the shell reads before planning. */
export function kubeApplyPaths(resources: readonly Resource[]): string[] {
  return resources.flatMap((resource) =>
    apiServerKind(resource) === undefined ? [kubeTarget(resource).path] : [],
  );
}

type Target = Pick<KubeWrite, "path" | "collection" | "object">;

function kubeTarget(resource: Resource): Target {
  switch (resource.kind) {
    case "IPPool": {
      const { name } = resource.pool;
      return {
        path: apiPaths.pool(name),
        collection: apiPaths.pools,
        object: buoyObject("IPPool", { name }, poolManifest(resource.pool).spec),
      };
    }
    case "BGPPeer": {
      const { name } = resource.peer;
      return {
        path: apiPaths.peer(name),
        collection: apiPaths.peers,
        object: buoyObject("BGPPeer", { name }, peerManifest(resource.peer).spec),
      };
    }
    case "FloatingIP": {
      const { namespace, name, spec } = resource.floatingIp;
      return {
        path: apiPaths.floatingIp(namespace, name),
        collection: apiPaths.floatingIps(namespace),
        object: buoyObject(
          "FloatingIP",
          { name, namespace },
          {
            ...(spec.address !== undefined ? { address: spec.address } : {}),
            ...(spec.pool !== undefined ? { pool: spec.pool } : {}),
            podSelector: spec.podSelector,
            egress: spec.egress,
          },
        ),
      };
    }
    default:
      throw new Error(`${resource.kind} is not written to the API server by buoy`);
  }
}

function buoyObject(
  kind: string,
  metadata: { name: string; namespace?: string },
  spec: Record<string, unknown>,
): KubeObject {
  return { apiVersion: BUOY_API_VERSION, kind, metadata, spec };
}

/** Why the API server's own kinds are not buoy's to apply, and what changes them. */
function apiServerKind(resource: Resource): string | undefined {
  switch (resource.kind) {
    case "Node":
      return (
        `the Node is the Kubernetes Node: its addresses are the kubelet's, its AS number ` +
        `the annotation ${AS_NUMBER_ANNOTATION} ` +
        `(kubectl annotate node ${resource.node.name} ${AS_NUMBER_ANNOTATION}=${resource.node.asNumber ?? "64512"})`
      );
    case "Namespace":
      return `namespaces are Kubernetes Namespaces: label them with kubectl label namespace ${resource.namespace.name} KEY=VALUE`;
    case "Pod":
      return "pods are Kubernetes Pods: the API server holds them (kubectl apply)";
    default:
      return undefined;
  }
}

function refuseApiServerKinds(resource: Resource): void {
  const why = apiServerKind(resource);
  if (why !== undefined) {
    throw new CliError(
      `${resource.source}: ${resource.kind} ${resourceName(resource)}: on the kubernetes datastore ${why}`,
    );
  }
}
