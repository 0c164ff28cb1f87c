// What `buoy get` shows, read from the Kubernetes API (DATASTORE_TYPE=
// kubernetes): the same records as from etcd, converted from buoy's objects
// (the endpoints from the WorkloadEndpoint objects the plugin records, not
// the pods' annotations: ADR 0008), the Kubernetes Nodes and the nodes'
// status Leases. Read-only: on this datastore buoy's records are Kubernetes
// objects, changed with kubectl.
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from "@kubernetes/client-node";
import type { DatastoreState } from "../datastore/datastore-state.js";
import type { BgpPeer, FloatingIpStatus, IpPool, Versioned } from "../model/records.js";
import { BUOY_API_GROUP, BUOY_VERSION } from "../model/api-group.js";
import { PROGRAMMED_ANNOTATION, STATUS_LABEL } from "./labels.js";
import {
  blockFromObject,
  claimFromObject,
  endpointFromObject,
  isPodOf,
  nodeFromObject,
  peerFromObject,
  poolFromObject,
  withRequest,
  type KubeNodeObject,
  type KubeObject,
  type PodObject,
} from "./objects.js";
import { describeKubeError } from "./describe-kube-error.js";

export async function readKubeState(
  kubeConfig: KubeConfig,
  leaseNamespace: string,
): Promise<DatastoreState> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const custom = kubeConfig.makeApiClient(CustomObjectsApi);
  const list = async (plural: string) =>
    (
      (await custom.listClusterCustomObject({
        group: BUOY_API_GROUP,
        version: BUOY_VERSION,
        plural,
      })) as { items: KubeObject[] }
    ).items;
  try {
    const [pools, blocks, claims, endpointObjects, pods, nodes, peers, leases] = await Promise.all([
      list("ippools"),
      list("ipamblocks"),
      list("floatingipclaims"),
      list("workloadendpoints"),
      core.listPodForAllNamespaces(),
      core.listNode(),
      list("bgppeers"),
      custom.listNamespacedCustomObject({
        group: "coordination.k8s.io",
        version: "v1",
        namespace: leaseNamespace,
        plural: "leases",
        labelSelector: `${STATUS_LABEL}=true`,
      }) as Promise<{ items: KubeObject[] }>,
    ]);
    const at = <T>(object: KubeObject, value: T): Versioned<T> => ({
      value,
      revision: object.metadata.resourceVersion ?? "",
    });
    const claimValues = claims.map((object) => at(object, claimFromObject(object)));
    const podsByName = new Map(
      (pods.items as unknown as PodObject[]).map((pod) => [
        `${pod.metadata.namespace}/${pod.metadata.name}`,
        pod,
      ]),
    );
    const endpoints = endpointObjects.flatMap((object) => {
      const endpoint = endpointFromObject(object);
      const pod = podsByName.get(`${endpoint.namespace}/${endpoint.pod}`);
      if (!pod || !isPodOf(endpoint, pod)) return [];
      return [
        at(
          object,
          withRequest(
            endpoint,
            pod,
            claimValues.map(({ value }) => value),
          ),
        ),
      ];
    });
    return {
      pools: pools.flatMap((object): Versioned<IpPool>[] => {
        try {
          return [at(object, poolFromObject(object))];
        } catch {
          return []; // not a valid pool: IPAM ignores it too
        }
      }),
      blocks: blocks.map(blockFromObject),
      claims: claimValues,
      endpoints,
      nodes: (nodes.items as unknown as KubeNodeObject[]).map((object) =>
        at(object as KubeObject, nodeFromObject(object)),
      ),
      peers: peers.map((object) => at(object, peerFromObject(object) as BgpPeer)),
      statuses: leases.items.flatMap((lease) => {
        try {
          const parsed = JSON.parse(lease.metadata.annotations?.[PROGRAMMED_ANNOTATION] ?? "[]");
          return Array.isArray(parsed) ? (parsed as FloatingIpStatus[]) : [];
        } catch {
          return [];
        }
      }),
    };
  } catch (error) {
    throw new Error(
      `cannot read buoy's objects from the Kubernetes API: ${describeKubeError(error)}`,
      {
        cause: error,
      },
    );
  }
}
