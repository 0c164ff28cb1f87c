// `buoy floatingip` on the Kubernetes datastore: a running pod's floating IPs
// are what its annotation asks for, claimed and released by its node's agent
// (pod-claims.ts), so a change is a new annotation, checked first with ADD's
// checks and words: at most the conflist's bound, each inside a pool the
// pod's namespace may use, of a family the pod has, held by no other pod and
// no pod's own address, and no FloatingIP's address (its controller chooses
// who holds that). The pod is the one buoy recorded (its WorkloadEndpoint,
// ADR 0008), and the patch is made on the resourceVersion the check read.
// Pure.
import type { DatastoreState } from "../datastore/datastore-state.js";
import { checkClaims, snapshotLookup } from "../floating/claim-check.js";
import {
  FLOATING_IP_EGRESS_ANNOTATION,
  FLOATING_IPS_ANNOTATION,
  FloatingIpError,
  canonicalFloatingIps,
  parseFloatingIps,
} from "../floating/annotation.js";
import {
  planBindings,
  validateFloatingIpCount,
  validateInPools,
  validatePoolNamespaces,
} from "../floating/validate.js";
import { podRef, type WorkloadEndpoint } from "../model/records.js";
import type { PodObject } from "./objects.js";

/** A merge patch of one pod's annotations, and what its agent then makes of it. */
export interface AnnotationChange {
  namespace: string;
  pod: string;
  /** The pod's resourceVersion the check read: the patch fails if it changed. */
  resourceVersion: string;
  /** The pod's uid: whose Events are its agent's answer. */
  podUID: string;
  /** null removes the annotation. */
  annotations: Record<string, string | null>;
  /** The container whose claims the agent makes. */
  containerID: string;
  /** The floating IPs the pod holds once its agent made the change, canonical. */
  holds: string[];
  /** Those it held when the check read. */
  heldBefore: string[];
}

export interface PodInState {
  object: PodObject & { metadata: { resourceVersion?: string; uid?: string } };
  endpoint: WorkloadEndpoint;
}

/** The pod `ref` (namespace/name, or a name in default) with its recorded endpoint. */
export function findPod(
  state: DatastoreState,
  pods: ReadonlyMap<string, PodInState["object"]>,
  ref: string,
): PodInState {
  const key = ref.includes("/") ? ref : `default/${ref}`;
  const object = pods.get(key);
  const endpoints = state.endpoints
    .map((entry) => entry.value)
    .filter((endpoint) => `${endpoint.namespace}/${endpoint.pod}` === key)
    .sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  const endpoint = endpoints.find((candidate) => candidate.endpoint === "eth0") ?? endpoints[0];
  if (!object || !endpoint) throw new FloatingIpError(`no workload endpoint for pod ${key}`);
  return { object, endpoint };
}

/**
 * The floating IPs the pod holds through its annotation: its container's
 * claims, not those a FloatingIP's controller holds for it (those are the
 * controller's to move and release).
 */
export function annotationHeld(state: DatastoreState, pod: PodInState): string[] {
  const byController = new Set(
    state.claims
      .map((entry) => entry.value)
      .filter(
        (claim) => claim.containerID === pod.endpoint.containerID && claim.floatingIP !== undefined,
      )
      .map((claim) => claim.ip),
  );
  return pod.endpoint.ipNATs.map((nat) => nat.externalIP).filter((ip) => !byController.has(ip));
}

/** What a pod's annotation text asks for (one that does not parse: nothing). */
export function requestedIn(annotation: string | undefined): string[] {
  try {
    return parseFloatingIps(annotation ?? "[]");
  } catch {
    return [];
  }
}

/**
 * Exactly `requested` (entries as in the annotation) as the pod's floating
 * IPs. `moving`: an address another pod holds now and gives up first (move).
 */
export function planAnnotationSet(
  state: DatastoreState,
  pod: PodInState,
  requested: readonly string[],
  maxFloatingIps: number,
  moving?: string,
): AnnotationChange {
  const { endpoint } = pod;
  const wanted = canonicalFloatingIps(requested);
  validateFloatingIpCount(wanted, maxFloatingIps);
  const pools = state.pools.map((entry) => entry.value);
  validateInPools(wanted, pools);
  const held = new Set(annotationHeld(state, pod));
  const added = wanted.filter((ip) => !held.has(ip));
  const labels =
    state.namespaces?.find((entry) => entry.value.name === endpoint.namespace)?.value.labels ?? {};
  validatePoolNamespaces(added, pools, endpoint.namespace, labels);
  planBindings(
    wanted,
    endpoint.ipNetworks.map((network) => network.split("/")[0] ?? ""),
  );
  refuseFloatingIpResources(state, added);
  checkClaims(
    added.filter((ip) => ip !== moving),
    endpoint,
    snapshotLookup({ pools, blocks: state.blocks, claims: state.claims }),
  );
  return {
    namespace: endpoint.namespace,
    pod: endpoint.pod,
    resourceVersion: pod.object.metadata.resourceVersion ?? "",
    podUID: pod.object.metadata.uid ?? "",
    annotations: { [FLOATING_IPS_ANNOTATION]: wanted.length > 0 ? JSON.stringify(wanted) : null },
    containerID: endpoint.containerID,
    holds: wanted,
    heldBefore: [...held],
  };
}

/** The pod's own connections leave from its first floating IP of each family, or not. */
export function planAnnotationEgress(
  state: DatastoreState,
  pod: PodInState,
  on: boolean,
): AnnotationChange {
  const { endpoint } = pod;
  const held = annotationHeld(state, pod);
  return {
    namespace: endpoint.namespace,
    pod: endpoint.pod,
    resourceVersion: pod.object.metadata.resourceVersion ?? "",
    podUID: pod.object.metadata.uid ?? "",
    annotations: { [FLOATING_IP_EGRESS_ANNOTATION]: on ? "true" : null },
    containerID: endpoint.containerID,
    holds: held,
    heldBefore: held,
  };
}

/**
 * A move of `ipText` to `target`: the holder's annotation without it, then the
 * target's with it (the old node withdraws first: the caller waits between).
 */
export function planAnnotationMove(
  state: DatastoreState,
  pods: ReadonlyMap<string, PodInState["object"]>,
  ipText: string,
  targetRef: string,
  maxFloatingIps: number,
): { release: AnnotationChange; claim: AnnotationChange } {
  const [ip = ""] = canonicalFloatingIps([ipText]);
  const claim = state.claims.find((entry) => entry.value.ip === ip)?.value;
  if (!claim) throw new FloatingIpError(`floating IP ${ip} is not held by any pod; use set or add`);
  if (claim.floatingIP !== undefined) {
    throw new FloatingIpError(
      `floating IP ${ip} is FloatingIP ${claim.floatingIP}'s: its controller chooses the holder (change its podSelector)`,
    );
  }
  const target = findPod(state, pods, targetRef);
  if (target.endpoint.containerID === claim.containerID) {
    throw new FloatingIpError(`floating IP ${ip} is already held by pod ${podRef(claim)}`);
  }
  const source = findPod(state, pods, podRef(claim));
  if (source.endpoint.containerID !== claim.containerID) {
    throw new FloatingIpError(
      `floating IP ${ip} is held by an old sandbox of pod ${podRef(claim)}; try again once it is gone`,
    );
  }
  // Another pod whose annotation asks for it would be claimed for it by its
  // own node the moment the holder lets it go, before the target asks.
  const holderRef = podRef(claim);
  const targetKey = `${target.endpoint.namespace}/${target.endpoint.pod}`;
  const camper = (state.floatingIpRequests ?? []).find(
    (request) => request.ips.includes(ip) && request.pod !== holderRef && request.pod !== targetKey,
  );
  if (camper) {
    throw new FloatingIpError(
      `floating IP ${ip} is also asked for by pod ${camper.pod}: its node would take it once ` +
        `${holderRef} lets it go; remove it from that pod's annotation first`,
    );
  }
  return {
    release: planAnnotationSet(
      state,
      source,
      annotationHeld(state, source).filter((entry) => entry !== ip),
      maxFloatingIps,
    ),
    claim: planAnnotationSet(
      state,
      target,
      [...annotationHeld(state, target), ip],
      maxFloatingIps,
      ip,
    ),
  };
}

function refuseFloatingIpResources(state: DatastoreState, ips: readonly string[]): void {
  for (const ip of ips) {
    const owner = (state.floatingIpResources ?? []).find(
      (entry) => (entry.value.spec.address ?? entry.status?.address) === ip,
    );
    if (owner) {
      throw new FloatingIpError(
        `floating IP ${ip} is the address of FloatingIP ${owner.value.namespace}/${owner.value.name}`,
      );
    }
  }
}
