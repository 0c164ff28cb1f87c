// DEL (and GC, and a failed ADD's undo) on the Kubernetes datastore: a
// container's endpoint objects, Calico's pod annotations while they name it,
// its claims (only while they still name it: a claim moved in place to
// another holder is left alone) and its addresses.
import type { Datastore, ReleaseTarget, Released } from "../datastore/datastore.js";
import type { WorkloadEndpoint } from "../model/records.js";
import {
  FloatingIpError,
  FLOATING_IPS_ANNOTATION,
  parseFloatingIps,
} from "../floating/annotation.js";
import { releaseHandle } from "../ipam/ipam.js";
import { apiPaths as paths } from "./api-paths.js";
import type { KubeHttp } from "./http.js";
import {
  getOrUndefined,
  isReason,
  listClaimObjects,
  listEndpointObjects,
  type ClaimObject,
} from "./kube-reads.js";
import {
  CONTAINER_ID_ANNOTATION,
  CONTAINER_LABEL,
  POD_IPS_ANNOTATION,
  POD_IP_ANNOTATION,
} from "./labels.js";
import { endpointObjectName } from "./names.js";
import {
  claimFromObject,
  containerLabel,
  endpointFromObject,
  type KubeObject,
  type PodObject,
} from "./objects.js";

/**
 * Releases what `target` holds, over `http`; its addresses through `store`'s
 * blocks (ipam.ts releaseHandle). Everything already gone is no error.
 */
export async function releaseContainer(
  http: KubeHttp,
  store: Datastore,
  target: ReleaseTarget,
): Promise<Released> {
  // The endpoint goes first: while it exists, a node agent takes the
  // sandbox for set up and would claim its floating IPs again.
  const [requested, endpoints] = await Promise.all([
    target.namespace && target.pod ? clearPodAnnotations(http, target) : [],
    deleteEndpoints(http, target),
  ]);
  // Never every claim in the cluster (issue 14): this container's from the
  // API server's watch cache, by their label; the cache may miss a claim
  // made moments ago, so the ones the pod's annotation names are read by
  // name as well (and so are an older buoy's, which carry no label:
  // docs/install.md, "Upgrade").
  const [listed, named] = await Promise.all([
    listClaimObjects(http, claimSelector(target.containerID), "0"),
    Promise.all(requested.map((ip) => getOrUndefined<ClaimObject>(http, paths.claim(ip)))),
  ]);
  const byName = new Map<string, ClaimObject>();
  for (const object of [...listed, ...named]) {
    if (object) byName.set(object.metadata.name, object);
  }
  const claims = [...byName.values()].filter(({ metadata, spec }) => {
    const claim = claimFromObject({ metadata, ...(spec ? { spec } : {}) });
    if (claim.containerID !== target.containerID) return false;
    return !target.ifname || claim.endpoint === undefined || claim.endpoint === target.ifname;
  });
  const released: Released = { addresses: [], floatingIps: [] };
  await Promise.all(
    claims.map(async (object) => {
      if (await deleteOwnClaim(http, object, target.containerID)) {
        released.floatingIps.push(object.spec?.ip ?? "");
      }
    }),
  );
  if (target.handle) {
    // The endpoints' addresses too: an older buoy's blocks carry no node label.
    const addresses = [
      ...(target.addresses ?? []),
      ...endpoints.flatMap((endpoint) =>
        endpoint.ipNetworks.map((network) => network.split("/")[0] ?? network),
      ),
    ];
    released.addresses = await releaseHandle(store, target.handle, target.node, addresses);
  }
  return released;
}

/**
 * The label selector of the claims `containerID` may hold: its container
 * label; for an ID that cannot be a label value, whose claims carry none,
 * every claim without one (a list of the cluster's unlabelled claims, only
 * for such an ID).
 */
export function claimSelector(containerID: string): string {
  const label = containerLabel(containerID);
  return label === undefined ? `!${CONTAINER_LABEL}` : `${CONTAINER_LABEL}=${label}`;
}

/**
 * Deletes a claim while it is still `containerID`'s: on its uid and
 * resourceVersion, so a claim moved to another holder in place (a
 * FloatingIP's, same uid) since it was read is left alone. A conflict is
 * read again: the holder's agent writing its status changes the
 * resourceVersion too. Resolves to whether this call deleted it.
 */
async function deleteOwnClaim(
  http: KubeHttp,
  object: ClaimObject,
  containerID: string,
): Promise<boolean> {
  let current: ClaimObject | undefined = object;
  for (let attempt = 0; attempt < 5 && current; attempt++) {
    if (current.spec?.containerID !== containerID) return false; // moved meanwhile
    try {
      await http.delete(paths.claim(current.spec.ip ?? ""), {
        uid: current.metadata.uid ?? "",
        resourceVersion: current.metadata.resourceVersion ?? "",
      });
      return true;
    } catch (error) {
      if (isReason(error, "NotFound")) return false;
      if (!isReason(error, "Conflict")) throw error;
    }
    const again: ClaimObject | undefined = await getOrUndefined<ClaimObject>(
      http,
      paths.claim(current.spec.ip ?? ""),
    );
    // Replaced by a new holder's claim of the same name: not this one.
    current = again?.metadata.uid === object.metadata.uid ? again : undefined;
  }
  return false;
}

/**
 * Deletes the target's endpoint objects (all of the container's on its node
 * without an interface: GC); resolves to the endpoints they held.
 */
async function deleteEndpoints(http: KubeHttp, target: ReleaseTarget): Promise<WorkloadEndpoint[]> {
  let objects: KubeObject[];
  if (target.ifname) {
    const name = await endpointObjectName(target.node, target.containerID, target.ifname);
    const object = await getOrUndefined<KubeObject>(http, paths.endpoint(name));
    objects = object ? [object] : [];
  } else {
    const label = containerLabel(target.containerID);
    objects = (
      await listEndpointObjects(http, label ? `${CONTAINER_LABEL}=${label}` : undefined)
    ).filter((object) => {
      const endpoint = endpointFromObject(object);
      return endpoint.containerID === target.containerID && endpoint.node === target.node;
    });
  }
  await Promise.all(
    objects.map(async (object) => {
      try {
        await http.delete(paths.endpoint(object.metadata.name));
      } catch (error) {
        if (!isReason(error, "NotFound")) throw error;
      }
    }),
  );
  return objects.map(endpointFromObject);
}

/**
 * Removes Calico's annotations from the pod, only while they name this
 * container (the compatibility copy ADD wrote; what they say decides
 * nothing, ADR 0008: a forged container ID only keeps them); resolves
 * to the floating IPs its annotation asks for (what the container should
 * hold), [] when it names none or does not parse.
 */
async function clearPodAnnotations(http: KubeHttp, target: ReleaseTarget): Promise<string[]> {
  const escape = (key: string) => key.replaceAll("~", "~0").replaceAll("/", "~1");
  const namespace = target.namespace ?? "";
  const name = target.pod ?? "";
  const pod = await getOrUndefined<PodObject>(http, paths.pod(namespace, name));
  const annotations = pod?.metadata.annotations ?? {};
  let requested: string[] = [];
  try {
    requested = parseFloatingIps(annotations[FLOATING_IPS_ANNOTATION] ?? "[]");
  } catch (error) {
    if (!(error instanceof FloatingIpError)) throw error;
  }
  if (annotations[CONTAINER_ID_ANNOTATION] !== target.containerID) return requested;
  const keys = [POD_IP_ANNOTATION, POD_IPS_ANNOTATION, CONTAINER_ID_ANNOTATION].filter(
    (key) => key in annotations,
  );
  try {
    await http.patch(
      paths.podStatus(namespace, name),
      [
        // Atomic with the removal: a new sandbox's ADD may have written its own.
        {
          op: "test",
          path: `/metadata/annotations/${escape(CONTAINER_ID_ANNOTATION)}`,
          value: target.containerID,
        },
        ...keys.map((key) => ({ op: "remove", path: `/metadata/annotations/${escape(key)}` })),
      ],
      "json",
    );
  } catch (error) {
    // Gone, or another container's annotations by now: not ours to clear.
    if (!isReason(error, "NotFound", "Invalid", "HTTP 422")) throw error;
  }
  return requested;
}
