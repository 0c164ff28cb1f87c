// The kinds `buoy apply` takes for FloatingIPs on the etcd datastore (issue
// 15 item 4): FloatingIP (buoy.dev/v1, namespaced, the same spec as the
// Kubernetes resource) and Pod (v1: the parts of a Pod the controller reads,
// etcd's stand-in for the API server's Pods, as Namespace is for
// Namespaces). Pure.
import type { PodView } from "../failover/candidates.js";
import { parseFloatingIpSpec, type FloatingIpSpec } from "../failover/floating-ip.js";
import { CliError } from "./cli-error.js";
import { decodeLabels, isMapping as isRecord } from "./manifest-labels.js";

/** A FloatingIP as applied: what the datastore's record holds but its uid and generation. */
export interface AppliedFloatingIp {
  namespace: string;
  name: string;
  spec: FloatingIpSpec;
}

const OBJECT_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const NAMESPACE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** The namespace and name of a namespaced object, checked as the API server checks them. */
export function namespacedName(
  kind: string,
  name: string,
  metadata: Record<string, unknown>,
  where: string,
): { namespace: string; name: string } {
  const namespace = metadata.namespace ?? "default";
  if (typeof namespace !== "string" || !NAMESPACE_NAME.test(namespace) || namespace.length > 63) {
    throw new CliError(
      `${where}: ${kind} ${name}: metadata.namespace must be lower-case letters, digits and '-'`,
    );
  }
  if (!OBJECT_NAME.test(name) || name.length > 253) {
    throw new CliError(
      `${where}: ${kind} name '${name}' must be lower-case letters, digits, '-' and '.'`,
    );
  }
  return { namespace, name };
}

export function decodeFloatingIp(
  name: string,
  metadata: Record<string, unknown>,
  spec: Record<string, unknown>,
  where: string,
): AppliedFloatingIp {
  const id = namespacedName("FloatingIP", name, metadata, where);
  const parsed = parseFloatingIpSpec(spec);
  if ("problem" in parsed) {
    throw new CliError(`${where}: FloatingIP ${id.namespace}/${name}: ${parsed.problem}`);
  }
  return { ...id, spec: parsed };
}

/**
 * A Pod's labels, node, uid and Ready condition. The uid must be the one the
 * runtime passes the CNI plugin (K8S_POD_UID): the controller gives a
 * FloatingIP only to a pod whose endpoint names it.
 */
export function decodePod(
  name: string,
  value: Record<string, unknown>,
  metadata: Record<string, unknown>,
  where: string,
): PodView {
  const id = namespacedName("Pod", name, metadata, where);
  const what = `Pod ${id.namespace}/${name}`;
  const { uid, creationTimestamp, deletionTimestamp } = metadata;
  if (typeof uid !== "string" || uid === "" || uid.length > 128) {
    throw new CliError(`${where}: ${what}: metadata.uid must be the pod's uid (K8S_POD_UID)`);
  }
  const created = timestamp(creationTimestamp, `${what}: metadata.creationTimestamp`, where);
  // Being deleted (the API server's mark before the kubelet stops it): no longer a holder.
  const deleted = timestamp(deletionTimestamp, `${what}: metadata.deletionTimestamp`, where);
  const spec = isRecord(value.spec) ? value.spec : {};
  const { nodeName } = spec;
  if (nodeName !== undefined && (typeof nodeName !== "string" || !OBJECT_NAME.test(nodeName))) {
    throw new CliError(`${where}: ${what}: spec.nodeName must be a node's name`);
  }
  const status = isRecord(value.status) ? value.status : {};
  const conditions = status.conditions ?? [];
  if (!Array.isArray(conditions)) {
    throw new CliError(`${where}: ${what}: status.conditions must be a list`);
  }
  const ready = conditions.find(
    (condition): condition is Record<string, unknown> =>
      isRecord(condition) && condition.type === "Ready",
  );
  if (ready && ready.status !== "True" && ready.status !== "False") {
    throw new CliError(`${where}: ${what}: the Ready condition's status must be True or False`);
  }
  const since =
    ready && timestamp(ready.lastTransitionTime, `${what}: Ready's lastTransitionTime`, where);
  const phase = status.phase;
  if (phase !== undefined && typeof phase !== "string") {
    throw new CliError(`${where}: ${what}: status.phase must be a string`);
  }
  return {
    metadata: {
      ...id,
      uid,
      labels: decodeLabels(metadata.labels, what, where),
      ...(created !== undefined ? { creationTimestamp: created } : {}),
      ...(deleted !== undefined ? { deletionTimestamp: deleted } : {}),
    },
    spec: typeof nodeName === "string" ? { nodeName } : {},
    status: {
      ...(phase !== undefined ? { phase } : {}),
      conditions: ready
        ? [
            {
              type: "Ready",
              status: String(ready.status),
              ...(since !== undefined ? { lastTransitionTime: since } : {}),
            },
          ]
        : [],
    },
  };
}

function timestamp(value: unknown, what: string, where: string): string | undefined {
  if (value === undefined) return undefined;
  const text = value instanceof Date ? value.toISOString() : value;
  if (typeof text !== "string" || Number.isNaN(Date.parse(text))) {
    throw new CliError(`${where}: ${what} must be an RFC 3339 time`);
  }
  return new Date(text).toISOString();
}
