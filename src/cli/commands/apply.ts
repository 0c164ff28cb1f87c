// `buoy apply -f FILE`: create or update IP pools, nodes, BGP peers and
// FloatingIPs from a manifest: on etcd in one transaction when it fits in
// one, on Kubernetes one object after the other (kube/kube-writes.ts); and
// its help.
import type { Command } from "commander";
import { applyInParts } from "../../etcd/apply-in-parts.js";
import { renderSummary } from "../manifest.js";
import { openKube } from "./read-state.js";
import type { Session } from "./session.js";

/** Adds `apply` to the program. */
export function addApplyCommand(program: Command, session: Session): void {
  program
    .command("apply")
    .description(
      "Create or update IP pools, nodes, BGP peers, namespaces, FloatingIPs and pods from a manifest",
    )
    .requiredOption(
      "-f, --filename <file>",
      "the manifest: YAML (one or more documents) or JSON; '-' reads stdin",
    )
    .addHelpText("after", APPLY_HELP)
    .action(async (options: { filename: string }, command: Command) => {
      const { label, resources } = await session.readManifests(options.filename);
      const progress = (applied: number, total: number) =>
        session.request.stderr.write(`applied ${applied} of ${total}\n`);
      const datastore = session.datastoreConfig(command);
      if (datastore.type === "kubernetes") {
        const [{ http, leaseNamespace }, { applyToKube }] = await Promise.all([
          openKube(session, datastore.kubeconfig),
          import("../../kube/kube-writes.js"),
        ]);
        await applyToKube(http, leaseNamespace, resources, progress);
      } else {
        await applyInParts(session.openStore(command), resources, `apply ${label}`, progress);
      }
      session.write(
        renderSummary(
          "applied",
          resources.map((resource) => resource.kind),
        ),
      );
    });
}

const APPLY_HELP = `
Resources:
  IPPool   apiVersion projectcalico.org/v3 (calicoctl manifests work unchanged)
           or buoy.dev/v1; spec fields cidr, blockSize, disabled, nodeSelector,
           namespaceSelector, natOutgoing, disableBGPExport (other Calico
           fields are ignored); a selector that does not parse is refused
  Node     apiVersion buoy.dev/v1; spec.addresses (IP addresses), spec.asNumber
           (etcd only: on kubernetes the Node is the Kubernetes Node)
  BGPPeer  apiVersion projectcalico.org/v3 or buoy.dev/v1; spec.peerIP (an IP
           address, no port), spec.asNumber, spec.node (only this node peers
           with it; left out: every node does). nodeSelector, peerSelector and
           password are refused; other Calico fields are ignored
  Namespace apiVersion buoy.dev/v1; metadata.labels: what pools'
           namespaceSelector reads (etcd has no Namespace objects; a namespace
           without one has no labels; etcd only)
  FloatingIP apiVersion buoy.dev/v1, namespaced: spec.address (inside a pool
           the namespace may use, no other FloatingIP's) or spec.pool (a
           pool the namespace may use: the controller picks the address and
           names it in its status), spec.podSelector
           (pods of its namespace), spec.egress; 'buoy controller' gives it
           to one Ready pod it selects and moves it when that pod fails
  Pod      apiVersion v1: metadata.uid (the runtime's K8S_POD_UID), labels,
           spec.nodeName, and the Ready condition in status.conditions: what
           a FloatingIP's selector and its controller read (etcd has no Pod
           objects; whoever starts pods writes these, as the lab does; etcd
           only)
  List, IPPoolList, NodeList, BGPPeerList, NamespaceList, FloatingIPList,
  PodList with items, as 'buoy get -o yaml' prints them

AS numbers are integers from 1 to 4294967295, or dotted like '1.10'.

The whole file is checked before anything is written: a pool that overlaps
another pool is refused, and so is a change of cidr or blockSize while
addresses are allocated from the pool, and a FloatingIP the controller would
refuse. On etcd, a file that fits in one transaction (128 operations) is
applied in one, or not at all; a larger one is applied in parts, the IP
pools all in the first, with progress on stderr. On kubernetes
(DATASTORE_TYPE=kubernetes, KUBECONFIG) each object is created or replaced
in turn, IP pools first; a write the API server refuses (buoy's admission
webhook among others) stops the rest, and says how many were made.

Examples:
  buoy apply -f pools.yaml
  buoy get ippools -o yaml > pools.yaml && buoy apply -f pools.yaml
  cat <<EOF | buoy apply -f -
  apiVersion: projectcalico.org/v3
  kind: IPPool
  metadata:
    name: floating-v4
  spec:
    cidr: 10.0.0.0/24
    disabled: true
  EOF`;
