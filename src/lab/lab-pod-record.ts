// A lab pod's Pod record (issue 15: what a FloatingIP's selector and the
// controller read on etcd): the lab plays the part of the API server and the
// kubelet, writing the pod's uid (the one its CNI calls pass as
// K8S_POD_UID), labels, node and Ready condition; and the FloatingIP that
// selects such pods. Pure: the manifest text for `buoy apply -f -` and
// `buoy delete -f -`.
import type { LabPod } from "./lab-state.js";

/** A stable UUID-shaped pod UID from the container ID. */
export function podUidOf(containerID: string): string {
  const hex = containerID.padEnd(32, "0");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** The Pod manifest of `pod`, Ready or not since `since`; `deleting`: marked for deletion. */
export function podRecordManifest(
  pod: LabPod,
  ready: boolean,
  since: Date,
  deleting = false,
): string {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: pod.name,
      namespace: pod.namespace,
      uid: podUidOf(pod.containerID),
      labels: pod.labels ?? {},
      creationTimestamp: pod.createdAt ?? since.toISOString(),
      ...(deleting ? { deletionTimestamp: since.toISOString() } : {}),
    },
    spec: { nodeName: pod.nodeName },
    status: {
      phase: "Running",
      conditions: [
        {
          type: "Ready",
          status: ready ? "True" : "False",
          lastTransitionTime: since.toISOString(),
        },
      ],
    },
  });
}

/** A FloatingIP (buoy.dev/v1) for `address`, selecting the pods of `namespace` with `labels`. */
export function floatingIpManifest(
  name: string,
  address: string,
  labels: Record<string, string>,
  namespace = "default",
): string {
  return JSON.stringify({
    apiVersion: "buoy.dev/v1",
    kind: "FloatingIP",
    metadata: { name, namespace },
    spec: { address, podSelector: { matchLabels: labels } },
  });
}
