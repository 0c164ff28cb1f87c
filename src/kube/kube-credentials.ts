// Credentials for the API server (the webhook's, buoy get's): the file KUBECONFIG names, or
// the pod's own service account (in-cluster: KUBERNETES_SERVICE_HOST and the
// token, CA and namespace mounted under /var/run/secrets/kubernetes.io).
import { readFileSync } from "node:fs";
import { parseKubeconfig, type KubeCredentials } from "./kubeconfig.js";

const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

export function readKubeCredentials(
  env: Readonly<Record<string, string | undefined>>,
): KubeCredentials {
  const kubeconfig = env.KUBECONFIG;
  if (kubeconfig) {
    return parseKubeconfig(readText(kubeconfig, "KUBECONFIG"), kubeconfig, (path) =>
      readText(path, kubeconfig),
    );
  }
  const host = env.KUBERNETES_SERVICE_HOST;
  if (!host) {
    throw new Error("the webhook needs KUBECONFIG, or to run in a pod (KUBERNETES_SERVICE_HOST)");
  }
  const server = `https://${host.includes(":") ? `[${host}]` : host}:${env.KUBERNETES_SERVICE_PORT ?? "443"}`;
  return {
    server,
    ca: readText(`${SERVICE_ACCOUNT_DIR}/ca.crt`, "the service account"),
    // The kubelet rotates the projected token in place: callers re-read
    // (the webhook does every minute).
    token: readText(`${SERVICE_ACCOUNT_DIR}/token`, "the service account").trim(),
  };
}

function readText(path: string, named: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    throw new Error(`cannot read ${path} (${named}): ${(error as NodeJS.ErrnoException).code}`, {
      cause: error,
    });
  }
}
