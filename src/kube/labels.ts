// The labels and annotations on Kubernetes objects that the Kubernetes
// datastore reads and writes, named once: buoy's own (under its API group,
// src/model/api-group.ts) and Calico's that buoy keeps compatible with.
import { BUOY_API_GROUP } from "../model/api-group.js";

/**
 * Calico's pod annotations, written by the plugin at ADD and removed at DEL
 * for tools that read them. A tenant who may edit its pod may edit them too,
 * so nothing that decides reads them (ADR 0008): the endpoint objects do.
 */
export const POD_IP_ANNOTATION = "cni.projectcalico.org/podIP";
export const POD_IPS_ANNOTATION = "cni.projectcalico.org/podIPs";
export const CONTAINER_ID_ANNOTATION = "cni.projectcalico.org/containerID";

/** Calico's annotation for a node's own AS number (Kubernetes datastore). */
export const AS_NUMBER_ANNOTATION = "projectcalico.org/ASNumber";

/** The label naming the container a claim is held by: DEL selects its claims by it. */
export const CONTAINER_LABEL = `${BUOY_API_GROUP}/container`;

/** The label naming the node an endpoint object is on: each agent watches its own by it. */
export const NODE_LABEL = `${BUOY_API_GROUP}/node`;

/** The label of the nodes' status Leases (ADR 0004): the agents watch them by it. */
export const STATUS_LABEL = `${BUOY_API_GROUP}/floating-ip-status`;

/** A status Lease's annotation: the floating IPs its node translates, as JSON. */
export const PROGRAMMED_ANNOTATION = `${BUOY_API_GROUP}/programmed`;

/**
 * The prefix of a block's node labels: `node.buoy.dev/<node>` on every
 * IPAMBlock for its affine node and each node it lent an address to, so a
 * node lists its own blocks by a selector, not every block (issue 14).
 */
export const BLOCK_NODE_LABEL_PREFIX = `node.${BUOY_API_GROUP}/`;
