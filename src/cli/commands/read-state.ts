// What the read-only commands (get, ipam show) read: every record, in one
// pass, from whichever datastore the command line and environment name; and
// the client to the Kubernetes API server the writes on it use.
import type { Command } from "commander";
import type { DatastoreState } from "../../datastore/datastore-state.js";
import type { KubeHttp } from "../../kube/http.js";
import { readDatastoreState } from "../../etcd/etcd-state.js";
import { CliError, UsageError } from "../cli-error.js";
import type { Session } from "./session.js";
import { parseLeaseNamespace } from "../lease-namespace.js";

export async function readState(session: Session, command: Command): Promise<DatastoreState> {
  const datastore = session.datastoreConfig(command);
  return datastore.type === "kubernetes"
    ? readKubernetesState(session, datastore.kubeconfig)
    : readDatastoreState(session.openStore(command));
}

/** The kubernetes datastore's records; its client is loaded only here. */
async function readKubernetesState(
  session: Session,
  kubeconfig: string | undefined,
): Promise<DatastoreState> {
  const [{ http, leaseNamespace }, { readKubeState }] = await Promise.all([
    openKube(session, kubeconfig),
    import("../../kube/kube-state.js"),
  ]);
  return readKubeState(http, leaseNamespace);
}

/** buoy's HTTPS client to the API server the kubeconfig (or the pod's service account) names. */
export async function openKube(
  session: Session,
  kubeconfig: string | undefined,
): Promise<{ http: KubeHttp; leaseNamespace: string }> {
  const { env } = session.request;
  const leases = parseLeaseNamespace(undefined, env);
  if (!leases.ok) throw new UsageError(leases.problem);
  if (kubeconfig === undefined && !env.KUBERNETES_SERVICE_HOST) {
    throw new UsageError(
      "DATASTORE_TYPE=kubernetes needs KUBECONFIG, or to run in a pod (KUBERNETES_SERVICE_HOST)",
    );
  }
  const [{ readKubeCredentials }, { createKubeHttp }] = await Promise.all([
    import("../../kube/kube-credentials.js"),
    import("../../kube/http.js"),
  ]);
  let credentials;
  try {
    credentials = readKubeCredentials({ ...env, KUBECONFIG: kubeconfig });
  } catch (error) {
    throw new CliError((error as Error).message);
  }
  return { http: createKubeHttp(credentials), leaseNamespace: leases.namespace };
}
