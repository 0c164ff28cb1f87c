// Reads a kubeconfig (the file Calico's conflist names in
// `kubernetes.kubeconfig`) into what an HTTPS call to the API server needs:
// the server, how to trust it, and how to authenticate. Pure: files the
// kubeconfig points at are read through `readFile`.
import { parse } from "yaml";

export interface KubeCredentials {
  /** `https://host:port`, without a trailing slash. */
  server: string;
  /** PEM of the CA that signed the server's certificate. */
  ca?: string;
  insecureSkipTlsVerify?: boolean;
  /** PEM client certificate and key (both or neither). */
  clientCert?: string;
  clientKey?: string;
  /** Bearer token. */
  token?: string;
  /** The context's namespace, when it names one. */
  namespace?: string;
}

export class KubeconfigError extends Error {
  override readonly name = "KubeconfigError";
}

type Entries = Record<string, unknown>[];

/**
 * The credentials of `context` (default: the kubeconfig's current-context).
 * `where` names the file in error messages; `readFile` reads the files a
 * kubeconfig may point at (certificate-authority, client-certificate, tokenFile).
 */
export function parseKubeconfig(
  text: string,
  where: string,
  readFile: (path: string) => string,
  context?: string,
): KubeCredentials {
  let document: unknown;
  try {
    document = parse(text);
  } catch (error) {
    throw new KubeconfigError(`${where}: not YAML: ${(error as Error).message.split("\n")[0]}`);
  }
  if (!isRecord(document)) throw new KubeconfigError(`${where}: not a kubeconfig (no mapping)`);
  const contextName = context ?? str(document["current-context"]);
  if (!contextName) throw new KubeconfigError(`${where}: no current-context and none given`);
  const ctx = named(document.contexts, contextName, "context", where);
  const clusterName = str(ctx.cluster);
  const userName = str(ctx.user);
  if (!clusterName) throw new KubeconfigError(`${where}: context ${contextName} names no cluster`);
  const cluster = named(document.clusters, clusterName, "cluster", where);
  const user = userName ? named(document.users, userName, "user", where) : {};

  const server = str(cluster.server)?.replace(/\/+$/, "");
  if (!server || !/^https?:\/\/[^/]+/.test(server)) {
    throw new KubeconfigError(`${where}: cluster ${clusterName} has no http(s) server URL`);
  }
  const file = (path: string, what: string) => {
    try {
      return readFile(path);
    } catch (error) {
      throw new KubeconfigError(
        `${where}: cannot read ${what} ${path}: ${(error as NodeJS.ErrnoException).code ?? error}`,
      );
    }
  };
  const pem = (data: unknown, path: unknown, what: string): string | undefined => {
    const inline = str(data);
    if (inline) return Buffer.from(inline, "base64").toString("utf8");
    const onDisk = str(path);
    return onDisk ? file(onDisk, what) : undefined;
  };

  const credentials: KubeCredentials = { server };
  const ca = pem(cluster["certificate-authority-data"], cluster["certificate-authority"], "CA");
  if (ca) credentials.ca = ca;
  if (cluster["insecure-skip-tls-verify"] === true) credentials.insecureSkipTlsVerify = true;
  const cert = pem(
    user["client-certificate-data"],
    user["client-certificate"],
    "client certificate",
  );
  const key = pem(user["client-key-data"], user["client-key"], "client key");
  if ((cert === undefined) !== (key === undefined)) {
    throw new KubeconfigError(
      `${where}: user ${userName} has a client certificate or key without the other`,
    );
  }
  if (cert && key) {
    credentials.clientCert = cert;
    credentials.clientKey = key;
  }
  const token =
    str(user.token) ??
    (str(user.tokenFile) ? file(str(user.tokenFile)!, "token file").trim() : undefined);
  if (token) credentials.token = token;
  const namespace = str(ctx.namespace);
  if (namespace) credentials.namespace = namespace;
  return credentials;
}

/** The `name`d entry's inner object (`contexts[].context`, ...). */
function named(list: unknown, name: string, kind: string, where: string): Record<string, unknown> {
  const entries: Entries = Array.isArray(list) ? list.filter(isRecord) : [];
  const entry = entries.find((candidate) => candidate.name === name);
  if (!entry) {
    const known = entries.map((candidate) => String(candidate.name)).join(", ") || "none";
    throw new KubeconfigError(`${where}: no ${kind} named ${name} (${kind}s: ${known})`);
  }
  const inner = entry[kind];
  return isRecord(inner) ? inner : {};
}

function str(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
