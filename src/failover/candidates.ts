// The pods a FloatingIP may go to, joined with what buoy and the kubelet
// recorded about them (issue 15). Pure. Which pods: those of the
// FloatingIP's own namespace its selector matches, not finished. What is
// trusted about each: its sandbox and addresses from its endpoint object
// (written with its node's credentials, ADR 0008), which must name the pod's
// uid and the node the pod is bound to; its readiness from the Ready
// condition (the kubelet's, in the pod's status); its node's liveness from
// the node's status Lease. Nothing here reads an annotation or a label
// beyond the selector's.
import { parseAddress } from "../net/address.js";
import type { WorkloadEndpoint } from "../model/records.js";
import type { Candidate } from "./choose-holder.js";
import { matchesLabels, type LabelSelector } from "./label-selector.js";

/** The parts of a Pod the controller reads. */
export interface PodView {
  metadata: {
    namespace?: string;
    name?: string;
    uid?: string;
    labels?: Record<string, string>;
    creationTimestamp?: string | Date;
    deletionTimestamp?: string | Date;
  };
  spec?: { nodeName?: string };
  status?: {
    phase?: string;
    conditions?: { type?: string; status?: string; lastTransitionTime?: string | Date }[];
  };
}

/** The candidates among `pods` (all of `namespace`) for `address`. */
export function candidatesFor(
  address: string,
  selector: LabelSelector,
  namespace: string,
  pods: Iterable<PodView>,
  endpointsOf: (podUID: string) => readonly WorkloadEndpoint[],
  nodeLive: (node: string) => boolean,
): Candidate[] {
  const family = parseAddress(address)?.family;
  const candidates: Candidate[] = [];
  for (const pod of pods) {
    const { metadata, spec, status } = pod;
    if ((metadata.namespace ?? "default") !== namespace) continue;
    if (status?.phase === "Succeeded" || status?.phase === "Failed") continue;
    if (!matchesLabels(selector, metadata.labels ?? {})) continue;
    const node = spec?.nodeName;
    const uid = metadata.uid;
    if (!node || !uid || !metadata.name) continue;
    const endpoint = endpointsOf(uid)
      .filter(
        (endpoint) =>
          endpoint.podUID === uid &&
          endpoint.node === node &&
          endpoint.namespace === namespace &&
          endpoint.pod === metadata.name,
      )
      .sort((a, b) => Number(b.endpoint === "eth0") - Number(a.endpoint === "eth0"))[0];
    const internalIP = endpoint?.ipNetworks
      .map((network) => network.split("/")[0] ?? "")
      .find((ip) => parseAddress(ip)?.family === family);
    if (!endpoint || internalIP === undefined) continue;
    const ready = status?.conditions?.find((condition) => condition.type === "Ready");
    candidates.push({
      namespace,
      pod: metadata.name,
      podUID: uid,
      node,
      containerID: endpoint.containerID,
      endpoint: endpoint.endpoint,
      network: endpoint.network,
      internalIP,
      readySince: ready?.status === "True" ? millis(ready.lastTransitionTime) : undefined,
      createdAt: millis(metadata.creationTimestamp),
      terminating: metadata.deletionTimestamp !== undefined,
      nodeLive: nodeLive(node),
    });
  }
  return candidates;
}

function millis(time: string | Date | undefined): number {
  if (time === undefined) return 0;
  const value = new Date(time).getTime();
  return Number.isNaN(value) ? 0 : value;
}
