// A real Kubernetes API server for tests: etcd and kube-apiserver v1.20.2
// (built by scripts/kube/build.sh into BUOY_KUBE_CACHE), each on a free port
// of 127.0.0.1 in the node namespace scripts/netns-run.sh made, with a
// throwaway PKI (openssl) in /tmp/PREFIX-kube-*: a CA, the serving cert, an
// admin client cert (group system:masters), a static admin token and a
// service-account signing key, so TokenRequest tokens, RBAC and the Node
// authorizer work as in a cluster. Optionally kube-controller-manager
// (namespace deletion, garbage collection). stop() ends exactly the processes
// started here. A small HTTPS client (node:https, no dependency) comes with
// it. docs/kube-testing.md.
import { spawn, type ChildProcess } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { Agent, request as httpsRequest, type RequestOptions } from "node:https";
import type { IncomingMessage } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { freePort, must, runPrefix, sleep, startEtcd, type Etcd } from "./harness.js";

export const KUBE_CACHE = process.env.BUOY_KUBE_CACHE ?? "/var/cache/buoy-kube-1.20";
export const KUBE_BIN = join(KUBE_CACHE, "bin");
const SERVICE_CIDR = "10.96.0.0/12";
export const SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local";

// ---- objects ------------------------------------------------------------------

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: Record<string, unknown>[];
  finalizers?: string[];
  deletionTimestamp?: string;
  [key: string]: unknown;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  [key: string]: unknown;
}

export interface KubeList<T = KubeObject> extends KubeObject {
  items: T[];
}

export interface KubeResponse<T = KubeObject> {
  status: number;
  /** The JSON body, or the text when it is not JSON. */
  body: T;
  text: string;
}

export interface WatchEvent<T = KubeObject> {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: T;
}

// ---- the client -----------------------------------------------------------------

/** Who a client is: a bearer token, or a client certificate (PEM). */
export type KubeCredentials = { token: string } | { cert: string; key: string };

export class KubeError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    what: string,
  ) {
    const message = (body as { message?: string } | undefined)?.message ?? String(body);
    super(`${what}: ${status} ${message}`);
  }
}

export class KubeClient {
  readonly server: string;
  readonly #agent: Agent;
  readonly #headers: Record<string, string>;

  constructor(server: string, ca: string, credentials: KubeCredentials) {
    this.server = server;
    this.#agent = new Agent({
      ca,
      keepAlive: true,
      ...("cert" in credentials ? { cert: credentials.cert, key: credentials.key } : {}),
    });
    this.#headers = "token" in credentials ? { authorization: `Bearer ${credentials.token}` } : {};
  }

  /** Any request; the status and body whatever they are. */
  request<T = KubeObject>(
    method: string,
    path: string,
    body?: unknown,
    options: { contentType?: string; timeoutMs?: number } = {},
  ): Promise<KubeResponse<T>> {
    const payload =
      body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const request = httpsRequest(
        new URL(path, this.server),
        this.#options(method, payload, options.contentType),
        (response) => {
          const chunks: Buffer[] = [];
          response.on("data", (chunk: Buffer) => chunks.push(chunk));
          response.on("error", reject);
          response.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            let parsed: unknown = text;
            try {
              parsed = JSON.parse(text);
            } catch {
              // not JSON (e.g. /readyz says "ok")
            }
            resolve({ status: response.statusCode ?? 0, body: parsed as T, text });
          });
        },
      );
      request.setTimeout(options.timeoutMs ?? 10_000, () =>
        request.destroy(new Error(`${method} ${path}: timed out`)),
      );
      request.on("error", reject);
      request.end(payload);
    });
  }

  /** A request that must succeed (2xx): its JSON body; otherwise a KubeError. */
  async json<T = KubeObject>(
    method: string,
    path: string,
    body?: unknown,
    contentType?: string,
  ): Promise<T> {
    const response = await this.request<T>(method, path, body, contentType ? { contentType } : {});
    if (response.status < 200 || response.status > 299) {
      throw new KubeError(response.status, response.body, `${method} ${path}`);
    }
    return response.body;
  }

  /**
   * Starts a watch (`path` without `watch=1`, which is added) and resolves
   * once the API server accepted it. For no missed events, list first and
   * pass the list's `resourceVersion` in the query.
   */
  watch<T = KubeObject>(path: string): Promise<KubeWatch<T>> {
    const url = new URL(path, this.server);
    url.searchParams.set("watch", "1");
    return new Promise((resolve, reject) => {
      const request = httpsRequest(url, this.#options("GET", undefined), (response) => {
        if (response.statusCode !== 200) {
          let text = "";
          response.on("data", (chunk: Buffer) => (text += chunk.toString("utf8")));
          response.on("end", () => reject(new KubeError(response.statusCode ?? 0, text, path)));
          return;
        }
        resolve(new KubeWatch<T>(response, () => request.destroy()));
      });
      request.on("error", reject);
      request.end();
    });
  }

  close(): void {
    this.#agent.destroy();
  }

  #options(method: string, payload: string | undefined, contentType?: string): RequestOptions {
    const headers: Record<string, string> = { accept: "application/json", ...this.#headers };
    if (payload !== undefined) {
      headers["content-type"] = contentType ?? "application/json";
      headers["content-length"] = String(Buffer.byteLength(payload));
    }
    return { method, agent: this.#agent, headers };
  }
}

/** The events of one watch, in order; next() takes them one at a time. */
export class KubeWatch<T = KubeObject> {
  readonly events: WatchEvent<T>[] = [];
  #cursor = 0;
  #ended = false;
  #wake: (() => void) | undefined;
  readonly #close: () => void;

  constructor(response: IncomingMessage, close: () => void) {
    this.#close = close;
    let pending = "";
    response.setEncoding("utf8");
    response.on("data", (chunk: string) => {
      pending += chunk;
      let newline: number;
      while ((newline = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, newline).trim();
        pending = pending.slice(newline + 1);
        if (line) this.events.push(JSON.parse(line) as WatchEvent<T>);
      }
      this.#wake?.();
    });
    const end = () => {
      this.#ended = true;
      this.#wake?.();
    };
    response.on("end", end);
    response.on("error", end);
    response.on("close", end);
  }

  /** The next event (after those already taken) that `matches`, skipping the others. */
  async next(
    matches: (event: WatchEvent<T>) => boolean = () => true,
    timeoutMs = 10_000,
  ): Promise<WatchEvent<T>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.#cursor < this.events.length) {
        const event = this.events[this.#cursor++] as WatchEvent<T>;
        if (matches(event)) return event;
      }
      if (this.#ended) throw new Error("watch ended");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching watch event within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  close(): void {
    this.#close();
  }
}

// ---- the API server -------------------------------------------------------------

export interface KubeApiserverOptions {
  /** Where PKI, kubeconfig and logs go; default a fresh /tmp/PREFIX-kube-* (removed by stop()). */
  dir?: string;
  /** Also run kube-controller-manager (build it with KCM=1 scripts/kube/build.sh). */
  controllerManager?: boolean;
  /** More kube-apiserver flags (a later flag overrides an earlier one). */
  apiserverArgs?: string[];
  /**
   * Keep the ServiceAccount admission plugin (pods get their account's token
   * mounted); off by default, as without kube-controller-manager no `default`
   * account exists to satisfy it.
   */
  serviceAccountAdmission?: boolean;
  /**
   * More users with a static bearer token each (the token file is read at
   * start only): `tokens` has them by name. RBAC grants them nothing unless
   * a test binds a role.
   */
  users?: { name: string; groups?: string[] }[];
  timeoutMs?: number;
}

export interface KubeApiserver {
  /** https://127.0.0.1:PORT (in this network namespace only). */
  server: string;
  /** A kubeconfig file for the admin (client certificate, group system:masters). */
  kubeconfig: string;
  /** A static bearer token of the same admin. */
  token: string;
  /** The static bearer tokens of `options.users`, by name. */
  tokens: Record<string, string>;
  /** The cluster CA (PEM). */
  ca: string;
  /** A client as the admin (client certificate). */
  admin: KubeClient;
  dir: string;
  etcd: Etcd;
  /** PIDs of the processes started: etcd, kube-apiserver, kube-controller-manager. */
  pids: number[];
  /** Milliseconds from spawning kube-apiserver to /readyz "ok", and for the whole start. */
  timings: { apiserverReadyMs: number; totalMs: number };
  /** A client for any credentials; closed by stop(). */
  client(credentials: KubeCredentials): KubeClient;
  /** A client certificate signed by the cluster CA: user `name`, groups `groups`. */
  issueClientCert(name: string, groups?: string[]): { cert: string; key: string };
  /** A service account's token from the TokenRequest API (the account must exist). */
  serviceAccountToken(namespace: string, name: string, expirationSeconds?: number): Promise<string>;
  /** Writes a kubeconfig for `credentials` to `path` (mode 0600). */
  writeKubeconfig(path: string, credentials: KubeCredentials): string;
  /**
   * Stops kube-apiserver and starts it again on the same port and etcd
   * (watches break, resource versions stay valid); resolves when /readyz says
   * ok. `downMs`: how long it stays down.
   */
  restartApiserver(downMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts etcd and kube-apiserver (and kube-controller-manager on request)
 * in this network namespace and resolves when /readyz says ok.
 */
export async function startKubeApiserver(
  options: KubeApiserverOptions = {},
): Promise<KubeApiserver> {
  const began = Date.now();
  const prefix = runPrefix();
  assertInRunNamespace(prefix);
  const apiserverBinary = join(KUBE_BIN, "kube-apiserver");
  const kcmBinary = join(KUBE_BIN, "kube-controller-manager");
  if (!existsSync(apiserverBinary)) {
    throw new Error(`${apiserverBinary} missing: run scripts/kube/build.sh`);
  }
  if (options.controllerManager && !existsSync(kcmBinary)) {
    throw new Error(`${kcmBinary} missing: run KCM=1 scripts/kube/build.sh`);
  }
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), `${prefix}-kube-`));
  mkdirSync(dir, { recursive: true });
  const timeoutMs = options.timeoutMs ?? 60_000;

  const pki = makePki(join(dir, "pki"), options.users ?? []);
  const children: ChildProcess[] = [];
  const clients: KubeClient[] = [];
  let etcd: Etcd | undefined;
  const stop = async () => {
    for (const client of clients.splice(0)) client.close();
    for (const child of children.splice(0).reverse()) await stopChild(child);
    await etcd?.stop();
    etcd = undefined;
    if (ownDir) rmSync(dir, { recursive: true, force: true });
  };

  try {
    etcd = await startEtcd();
    const port = await freePort();
    const server = `https://127.0.0.1:${port}`;
    const apiserverLog = join(dir, "kube-apiserver.log");
    const spawnedAt = Date.now();
    const apiserverArgs = [
      "--bind-address=127.0.0.1",
      "--advertise-address=127.0.0.1",
      `--secure-port=${port}`,
      "--insecure-port=0",
      `--etcd-servers=${etcd.endpoint}`,
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      `--tls-cert-file=${pki.path("apiserver.crt")}`,
      `--tls-private-key-file=${pki.path("apiserver.key")}`,
      `--client-ca-file=${pki.path("ca.crt")}`,
      `--token-auth-file=${pki.path("tokens.csv")}`,
      `--service-account-key-file=${pki.path("sa.pub")}`,
      `--service-account-signing-key-file=${pki.path("sa.key")}`,
      `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
      "--authorization-mode=Node,RBAC",
      "--allow-privileged=true",
      // Without kube-controller-manager no ServiceAccount `default` appears
      // in new namespaces, and this admission plugin would refuse pods.
      ...(options.serviceAccountAdmission ? [] : ["--disable-admission-plugins=ServiceAccount"]),
      // No kubelet, no endpoints for the `kubernetes` Service to keep.
      "--endpoint-reconciler-type=none",
      `--cert-dir=${join(dir, "apiserver-certs")}`,
      "--profiling=false",
      "--logtostderr=true",
      "--v=1",
      ...(options.apiserverArgs ?? []),
    ];
    let apiserver = spawnLogged(apiserverBinary, apiserverArgs, apiserverLog);
    children.push(apiserver);

    const admin = new KubeClient(server, pki.ca, pki.admin);
    clients.push(admin);
    await waitFor(
      async () =>
        (await admin.request("GET", "/readyz", undefined, { timeoutMs: 2000 })).text === "ok",
      apiserver,
      apiserverLog,
      timeoutMs,
      "kube-apiserver /readyz",
    );
    // /readyz can say ok a moment before the bootstrap controller has made
    // the default and kube-system namespaces; tests create objects in them.
    await waitFor(
      async () =>
        (await admin.request("GET", "/api/v1/namespaces/default", undefined, { timeoutMs: 2000 }))
          .status === 200 &&
        (
          await admin.request("GET", "/api/v1/namespaces/kube-system", undefined, {
            timeoutMs: 2000,
          })
        ).status === 200,
      apiserver,
      apiserverLog,
      timeoutMs,
      "the default and kube-system namespaces",
    );
    const apiserverReadyMs = Date.now() - spawnedAt;

    const writeKubeconfig = (path: string, credentials: KubeCredentials) => {
      writeFileSync(path, kubeconfigYaml(server, pki.ca, credentials), { mode: 0o600 });
      return path;
    };
    const kubeconfig = writeKubeconfig(join(dir, "kubeconfig"), pki.admin);

    if (options.controllerManager) {
      const kcmPort = await freePort();
      const kcmLog = join(dir, "kube-controller-manager.log");
      const kcm = spawnLogged(
        kcmBinary,
        [
          `--kubeconfig=${kubeconfig}`,
          `--authentication-kubeconfig=${kubeconfig}`,
          `--authorization-kubeconfig=${kubeconfig}`,
          "--bind-address=127.0.0.1",
          `--secure-port=${kcmPort}`,
          "--port=0",
          `--cert-dir=${join(dir, "kcm-certs")}`,
          `--service-account-private-key-file=${pki.path("sa.key")}`,
          `--root-ca-file=${pki.path("ca.crt")}`,
          `--cluster-signing-cert-file=${pki.path("ca.crt")}`,
          `--cluster-signing-key-file=${pki.path("ca.key")}`,
          `--service-cluster-ip-range=${SERVICE_CIDR}`,
          "--leader-elect=false",
          "--profiling=false",
          "--logtostderr=true",
          "--v=1",
        ],
        kcmLog,
      );
      children.push(kcm);
      // Its /healthz is open to anyone; its serving cert is self-signed.
      const probe = new Agent({ rejectUnauthorized: false });
      try {
        await waitFor(
          () => httpsStatus(`https://127.0.0.1:${kcmPort}/healthz`, probe).then((s) => s === 200),
          kcm,
          kcmLog,
          timeoutMs,
          "kube-controller-manager /healthz",
        );
      } finally {
        probe.destroy();
      }
    }

    const client = (credentials: KubeCredentials) => {
      const made = new KubeClient(server, pki.ca, credentials);
      clients.push(made);
      return made;
    };
    return {
      server,
      kubeconfig,
      token: pki.token,
      tokens: pki.tokens,
      ca: pki.ca,
      admin,
      dir,
      etcd,
      pids: children.map((child) => child.pid ?? -1),
      timings: { apiserverReadyMs, totalMs: Date.now() - began },
      client,
      issueClientCert: (name, groups = []) => pki.issueClientCert(name, groups),
      async serviceAccountToken(namespace, name, expirationSeconds = 3600) {
        const review = await admin.json<{ status: { token: string } }>(
          "POST",
          `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`,
          {
            apiVersion: "authentication.k8s.io/v1",
            kind: "TokenRequest",
            spec: { audiences: [SERVICE_ACCOUNT_ISSUER], expirationSeconds },
          },
        );
        return review.status.token;
      },
      writeKubeconfig,
      async restartApiserver(downMs = 0) {
        await stopChild(apiserver);
        await new Promise((resolve) => setTimeout(resolve, downMs));
        const index = children.indexOf(apiserver);
        apiserver = spawnLogged(apiserverBinary, apiserverArgs, apiserverLog);
        children[index] = apiserver;
        await waitFor(
          async () =>
            (await admin.request("GET", "/readyz", undefined, { timeoutMs: 2000 })).text === "ok",
          apiserver,
          apiserverLog,
          timeoutMs,
          "kube-apiserver /readyz after a restart",
        );
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

// ---- processes ------------------------------------------------------------------

/** Throws unless this process is in one of the run's namespaces (/run/netns/PREFIX-*). */
function assertInRunNamespace(prefix: string): void {
  const self = statSync("/proc/self/ns/net");
  const ours = (existsSync("/run/netns") ? readdirSync("/run/netns") : [])
    .filter((name) => name.startsWith(`${prefix}-`))
    .some((name) => {
      const ns = statSync(join("/run/netns", name));
      return ns.ino === self.ino && ns.dev === self.dev;
    });
  if (!ours) {
    throw new Error(
      `not inside a network namespace /run/netns/${prefix}-*: run through scripts/netns-run.sh`,
    );
  }
}

function spawnLogged(binary: string, args: string[], logFile: string): ChildProcess {
  const fd = openSync(logFile, "a");
  try {
    return spawn(binary, args, { stdio: ["ignore", fd, fd] });
  } finally {
    closeSync(fd);
  }
}

/** SIGTERM to this one PID, SIGKILL after 10 s; resolves when it exited. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

async function waitFor(
  check: () => Promise<boolean>,
  child: ChildProcess,
  logFile: string,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    try {
      if (await check()) return;
    } catch (error) {
      last = (error as Error).message;
    }
    const exited = child.exitCode !== null || child.signalCode !== null;
    if (exited || Date.now() > deadline) {
      const tail = readFileSync(logFile, "utf8").split("\n").slice(-25).join("\n");
      throw new Error(
        `${what}: ${exited ? `exited (${child.exitCode ?? child.signalCode})` : `not ready in ${timeoutMs} ms`}` +
          `${last ? ` (last: ${last})` : ""}; ${logFile}:\n${tail}`,
      );
    }
    await sleep(100);
  }
}

function httpsStatus(url: string, agent: Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = httpsRequest(url, { agent }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    request.setTimeout(2000, () => request.destroy(new Error("timed out")));
    request.on("error", reject);
    request.end();
  });
}

// ---- PKI ----------------------------------------------------------------------

interface Pki {
  ca: string;
  admin: { cert: string; key: string };
  token: string;
  tokens: Record<string, string>;
  path(name: string): string;
  issueClientCert(name: string, groups: string[]): { cert: string; key: string };
}

/** A throwaway CA and what the API server and its admin need, made with openssl. */
function makePki(dir: string, users: readonly { name: string; groups?: string[] }[]): Pki {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => must(["openssl", ...args]);
  // ECDSA P-256 for TLS (instant; RSA 2048 takes ~0.2 s a key), RSA for the
  // service-account key: RS256 tokens, as clusters issue them.
  const newKey = (name: string, rsa = false) =>
    rsa
      ? openssl(
          "genpkey",
          "-algorithm",
          "RSA",
          "-pkeyopt",
          "rsa_keygen_bits:2048",
          "-out",
          path(name),
        )
      : openssl(
          "genpkey",
          "-algorithm",
          "EC",
          "-pkeyopt",
          "ec_paramgen_curve:P-256",
          "-out",
          path(name),
        );
  let serial = 0;
  const sign = (name: string, subject: string, extensions: string[]) => {
    newKey(`${name}.key`);
    openssl(
      "req",
      "-new",
      "-key",
      path(`${name}.key`),
      "-subj",
      subject,
      "-out",
      path(`${name}.csr`),
    );
    writeFileSync(path(`${name}.ext`), extensions.join("\n") + "\n");
    openssl(
      "x509",
      "-req",
      "-in",
      path(`${name}.csr`),
      "-CA",
      path("ca.crt"),
      "-CAkey",
      path("ca.key"),
      "-set_serial",
      String(++serial + 1000),
      "-days",
      "30",
      "-sha256",
      "-extfile",
      path(`${name}.ext`),
      "-out",
      path(`${name}.crt`),
    );
    return {
      cert: readFileSync(path(`${name}.crt`), "utf8"),
      key: readFileSync(path(`${name}.key`), "utf8"),
    };
  };
  const clientExtensions = [
    "basicConstraints=CA:FALSE",
    "keyUsage=critical,digitalSignature",
    "extendedKeyUsage=clientAuth",
  ];

  newKey("ca.key");
  openssl(
    "req",
    "-x509",
    "-new",
    "-key",
    path("ca.key"),
    "-subj",
    "/CN=buoy-test-ca",
    "-days",
    "30",
    "-sha256",
    "-out",
    path("ca.crt"),
  );
  sign("apiserver", "/CN=kube-apiserver", [
    "basicConstraints=CA:FALSE",
    "keyUsage=critical,digitalSignature",
    "extendedKeyUsage=serverAuth",
    "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default," +
      "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local",
  ]);
  const admin = sign("admin", "/O=system:masters/CN=admin", clientExtensions);
  newKey("sa.key", true);
  openssl("pkey", "-in", path("sa.key"), "-pubout", "-out", path("sa.pub"));
  const token = openssl("rand", "-hex", "16").trim();
  const tokens = Object.fromEntries(
    users.map((user) => [user.name, openssl("rand", "-hex", "16").trim()]),
  );
  // token,user,uid,"group1,group2"
  const lines = [
    `${token},admin,admin,"system:masters"`,
    ...users.map(
      (user) =>
        `${tokens[user.name]},${user.name},${user.name}` +
        (user.groups?.length ? `,"${user.groups.join(",")}"` : ""),
    ),
  ];
  writeFileSync(path("tokens.csv"), lines.join("\n") + "\n", { mode: 0o600 });

  let issued = 0;
  return {
    ca: readFileSync(path("ca.crt"), "utf8"),
    admin,
    token,
    tokens,
    path,
    issueClientCert(name, groups) {
      const subject = [...groups.map((group) => `/O=${group}`), `/CN=${name}`].join("");
      return sign(`client-${++issued}`, subject, clientExtensions);
    },
  };
}

function kubeconfigYaml(server: string, ca: string, credentials: KubeCredentials): string {
  const base64 = (text: string) => Buffer.from(text).toString("base64");
  const user =
    "token" in credentials
      ? { token: credentials.token }
      : {
          "client-certificate-data": base64(credentials.cert),
          "client-key-data": base64(credentials.key),
        };
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      { name: "buoy-test", cluster: { server, "certificate-authority-data": base64(ca) } },
    ],
    users: [{ name: "buoy-test", user }],
    contexts: [{ name: "buoy-test", context: { cluster: "buoy-test", user: "buoy-test" } }],
    "current-context": "buoy-test",
  });
}
