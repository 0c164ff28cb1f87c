// What `buoy get` shows, read from the Kubernetes API (DATASTORE_TYPE=
// kubernetes): the same records as from etcd, converted from buoy's objects
// (the endpoints from the WorkloadEndpoint objects the plugin records, not
// the pods' annotations: ADR 0008), the FloatingIPs with their status, the
// Kubernetes Nodes and Namespaces, and the nodes' status Leases. What `buoy
// apply` on this datastore checks a file against, too.
import type { DatastoreState } from "../datastore/datastore-state.js";
import type { BgpPeer, FloatingIpStatus, IpPool, Versioned } from "../model/records.js";
import { parseFloatingIpSpec } from "../failover/floating-ip.js";
import { FLOATING_IPS_ANNOTATION } from "../floating/annotation.js";
import { requestedIn } from "./plan-annotation-change.js";
import type { FloatingIpRecord, FloatingIpStatusShape } from "../model/floating-ip-resource.js";
import { BUOY_API_VERSION } from "../model/api-group.js";
import type { KubeHttp } from "./http.js";
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

/**
 * One list of each kind through buoy's own HTTPS client (http.ts: the CNI
 * plugin's, which also runs in the self-contained CLI), objects as the API
 * server sends them.
 */
export async function readKubeState(
  http: KubeHttp,
  leaseNamespace: string,
): Promise<DatastoreState> {
  const list = async (path: string) => (await http.get<{ items: KubeObject[] }>(path)).items;
  const buoy = (plural: string) => list(`/apis/${BUOY_API_VERSION}/${plural}`);
  const statusLeases = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(leaseNamespace)}/leases?labelSelector=${encodeURIComponent(`${STATUS_LABEL}=true`)}`;
  try {
    const [
      pools,
      blocks,
      claims,
      endpointObjects,
      pods,
      nodes,
      peers,
      leases,
      floatingIps,
      namespaces,
    ] = await Promise.all([
      buoy("ippools"),
      buoy("ipamblocks"),
      buoy("floatingipclaims"),
      buoy("workloadendpoints"),
      list("/api/v1/pods"),
      list("/api/v1/nodes"),
      buoy("bgppeers"),
      list(statusLeases),
      buoy("floatingips"),
      list("/api/v1/namespaces"),
    ]);
    const at = <T>(object: KubeObject, value: T): Versioned<T> => ({
      value,
      revision: object.metadata.resourceVersion ?? "",
    });
    const claimValues = claims.map((object) => at(object, claimFromObject(object)));
    const podsByName = new Map(
      (pods as unknown as PodObject[]).map((pod) => [
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
      // Being deleted or not: a pod keeps its network until its DEL.
      livePods: (pods as unknown as PodObject[]).map(
        (pod) => `${pod.metadata.namespace}/${pod.metadata.name}`,
      ),
      floatingIpRequests: (pods as unknown as PodObject[]).flatMap((pod) => {
        const annotation = pod.metadata.annotations?.[FLOATING_IPS_ANNOTATION];
        const ips = annotation === undefined ? [] : requestedIn(annotation);
        return ips.length > 0
          ? [{ pod: `${pod.metadata.namespace}/${pod.metadata.name}`, ips }]
          : [];
      }),
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
      nodes: (nodes as unknown as KubeNodeObject[]).map((object) =>
        at(object as KubeObject, nodeFromObject(object)),
      ),
      peers: peers.map((object) => at(object, peerFromObject(object) as BgpPeer)),
      namespaces: namespaces.map((object) =>
        at(object, { name: object.metadata.name, labels: object.metadata.labels ?? {} }),
      ),
      floatingIpResources: floatingIps.flatMap((object) => {
        const spec = parseFloatingIpSpec(object.spec);
        if ("problem" in spec) return []; // the controller refuses it too
        const {
          namespace = "",
          name,
          uid = "",
          generation = 1,
          creationTimestamp,
        } = object.metadata;
        const value: FloatingIpRecord = {
          namespace,
          name,
          uid,
          generation,
          createdAt: String(creationTimestamp ?? ""),
          spec,
        };
        return [
          {
            ...at(object, value),
            ...(object.status ? { status: object.status as FloatingIpStatusShape } : {}),
          },
        ];
      }),
      statuses: leases.flatMap((lease) => {
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
