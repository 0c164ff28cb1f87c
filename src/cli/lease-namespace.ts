// Where the nodes' status Leases live on the kubernetes datastore: a
// namespace of buoy's own (manifests/rbac.yaml creates it), where only the
// agents' account may write Leases, so that no tenant and no other
// component can forge a node's acknowledgements (docs/security.md).
// `buoy agent --lease-namespace`, else BUOY_LEASE_NAMESPACE, else buoy-system;
// `buoy get` reads the same variable.
import { truncateEcho } from "../floating/truncate-echo.js";

export const DEFAULT_LEASE_NAMESPACE = "buoy-system";
export const LEASE_NAMESPACE_ENV = "BUOY_LEASE_NAMESPACE";

export type LeaseNamespace = { ok: true; namespace: string } | { ok: false; problem: string };

/** The Lease namespace from the flag, the environment or the default, checked as Kubernetes names a namespace. */
export function parseLeaseNamespace(
  flag: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): LeaseNamespace {
  const [source, value] =
    flag !== undefined
      ? ["--lease-namespace", flag]
      : env[LEASE_NAMESPACE_ENV] !== undefined && env[LEASE_NAMESPACE_ENV] !== ""
        ? [LEASE_NAMESPACE_ENV, env[LEASE_NAMESPACE_ENV]]
        : [undefined, DEFAULT_LEASE_NAMESPACE];
  // A namespace's name is an RFC 1123 label: it becomes a path segment.
  if (value.length > 63 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(value)) {
    return {
      ok: false,
      problem: `${source ?? "lease namespace"} '${truncateEcho(value)}': not a namespace name (lower-case letters, digits and '-', at most 63)`,
    };
  }
  return { ok: true, namespace: value };
}
