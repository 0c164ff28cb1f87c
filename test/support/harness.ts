// Shared by integration tests, the benchmark and the walk-through. Everything
// here assumes it runs inside the node namespace made by scripts/netns-run.sh
// (BUOY_RUN_PREFIX set): etcd listens on that namespace's loopback, and every
// namespace created gets the run's prefix.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EtcdKv, type EtcdKvOptions } from "../../src/etcd/etcd-kv.js";
import { Store } from "../../src/etcd/store.js";
import type { IpPool } from "../../src/model/records.js";
import { validatePool } from "../../src/ipam/pool.js";

export const ROOT = new URL("../..", import.meta.url).pathname;
export const CNI_DIR = join(ROOT, "dist/cni");
export const SYSTEM_CNI_DIR = "/usr/lib/cni";

export function runPrefix(): string {
  const prefix = process.env.BUOY_RUN_PREFIX;
  if (!prefix) {
    throw new Error(
      "BUOY_RUN_PREFIX is not set: run through scripts/netns-run.sh (npm run test:integration)",
    );
  }
  return prefix;
}

// ---- etcd -----------------------------------------------------------------

export interface Etcd {
  endpoint: string;
  store: Store;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(),
      );
    });
  });
}

export interface EtcdStartOptions {
  /** Serve clients over https with this certificate, and require client certificates from this CA. */
  tls?: { certFile: string; keyFile: string; trustedCaFile: string };
  /** How the harness itself (and `store`) speaks to it. */
  client?: Omit<EtcdKvOptions, "endpoints">;
}

export async function startEtcd(options: EtcdStartOptions = {}): Promise<Etcd> {
  const dir = mkdtempSync(join(tmpdir(), `${runPrefix()}-etcd-`));
  const [client, peer] = [await freePort(), await freePort()];
  const endpoint = `${options.tls ? "https" : "http"}://127.0.0.1:${client}`;
  const tlsArgs = options.tls
    ? [
        "--cert-file",
        options.tls.certFile,
        "--key-file",
        options.tls.keyFile,
        "--client-cert-auth",
        "--trusted-ca-file",
        options.tls.trustedCaFile,
      ]
    : [];
  const child: ChildProcess = spawn(
    "etcd",
    [
      "--name",
      "buoy-test",
      "--data-dir",
      join(dir, "data"),
      "--listen-client-urls",
      endpoint,
      "--advertise-client-urls",
      endpoint,
      "--listen-peer-urls",
      `http://127.0.0.1:${peer}`,
      "--initial-advertise-peer-urls",
      `http://127.0.0.1:${peer}`,
      "--initial-cluster",
      `buoy-test=http://127.0.0.1:${peer}`,
      "--log-level",
      "error",
      ...tlsArgs,
    ],
    { stdio: "ignore" },
  );
  const kv = new EtcdKv({ timeoutMs: 1000, ...options.client, endpoints: [endpoint] });
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      await kv.ping();
      break;
    } catch (error) {
      if (Date.now() > deadline || child.exitCode !== null) {
        child.kill("SIGKILL");
        throw new Error(`etcd did not start: ${(error as Error).message}`, { cause: error });
      }
      await sleep(100);
    }
  }
  return {
    endpoint,
    store: new Store(kv),
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGTERM");
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A conflist entry for buoy's plugin against this run's etcd, as the tests,
 * the benchmark and the walk-through use it; `extra` overrides any key.
 */
export function etcdPluginConf(
  etcd: Etcd,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    cniVersion: "1.0.0",
    name: "k8s-pod-network",
    type: "calico",
    datastore_type: "etcdv3",
    etcd_endpoints: etcd.endpoint,
    nodename: "node-1",
    log_file_path: `/tmp/${runPrefix()}-cni.log`,
    ipam: { type: "calico-ipam" },
    ...extra,
  };
}

export async function createPool(
  store: Store,
  name: string,
  spec: Partial<IpPool>,
): Promise<IpPool> {
  const pool = validatePool(name, spec);
  await store.putPool(pool);
  return pool;
}

// ---- namespaces and commands ----------------------------------------------

export function sh(
  argv: string[],
  input?: string,
): { stdout: string; stderr: string; status: number } {
  const [file, ...args] = argv;
  const result = spawnSync(file as string, args, { input: input ?? "", encoding: "utf8" });
  return { stdout: result.stdout ?? "", stderr: result.stderr ?? "", status: result.status ?? -1 };
}

/** Runs a command and throws with its stderr when it fails. */
export function must(argv: string[], input?: string): string {
  const result = sh(argv, input);
  if (result.status !== 0)
    throw new Error(`${argv.join(" ")} failed: ${result.stderr || result.stdout}`);
  return result.stdout;
}

export function addNetns(name: string): string {
  must(["ip", "netns", "add", name]);
  must(["ip", "-n", name, "link", "set", "lo", "up"]);
  return `/var/run/netns/${name}`;
}

export function deleteNetns(name: string): void {
  sh(["ip", "netns", "del", name]);
}

/** Host-side interfaces in this (the node's) namespace with the given prefix. */
export function hostInterfaces(prefix = "cali"): string[] {
  const links = JSON.parse(must(["ip", "-json", "link", "show"])) as { ifname: string }[];
  return links.map((link) => link.ifname).filter((name) => name.startsWith(prefix));
}

// ---- the plugin -----------------------------------------------------------

export interface PluginCall {
  command: "ADD" | "DEL" | "CHECK" | "VERSION" | "STATUS" | "GC";
  conf: Record<string, unknown>;
  containerID?: string;
  netns?: string;
  ifname?: string;
  pod?: { namespace: string; name: string };
  binary?: string;
  cniPath?: string;
  /** More environment for the plugin (ETCD_USERNAME, ...). */
  env?: Record<string, string>;
}

export interface PluginOutcome {
  exitCode: number;
  output: Record<string, unknown>;
  raw: string;
  stderr: string;
}

export async function runPlugin(call: PluginCall): Promise<PluginOutcome> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
    CNI_COMMAND: call.command,
    CNI_CONTAINERID: call.containerID ?? "",
    CNI_NETNS: call.netns ?? "",
    CNI_IFNAME: call.ifname ?? "eth0",
    CNI_PATH: call.cniPath ?? `${CNI_DIR}:${SYSTEM_CNI_DIR}`,
    CNI_ARGS: call.pod
      ? `IgnoreUnknown=1;K8S_POD_NAMESPACE=${call.pod.namespace};K8S_POD_NAME=${call.pod.name};K8S_POD_INFRA_CONTAINER_ID=${call.containerID ?? ""}`
      : "",
    ...call.env,
  };
  const binary = call.binary ?? join(CNI_DIR, "calico");
  return new Promise((resolve, reject) => {
    const child = spawn(binary, [], { env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    child.on("error", reject);
    // A plugin may exit without reading its config (bridge's VERSION does):
    // the write then fails with EPIPE, which says nothing its exit does not.
    child.stdin.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code !== "EPIPE") reject(error);
    });
    child.on("close", (code) => {
      let output: Record<string, unknown>;
      try {
        output = stdout.trim() ? (JSON.parse(stdout) as Record<string, unknown>) : {};
      } catch {
        output = { unparsable: stdout };
      }
      resolve({ exitCode: code ?? -1, output, raw: stdout, stderr });
    });
    child.stdin.end(JSON.stringify(call.conf));
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---- a runtime's view: conflists, as libcni executes them ------------------

export interface Conflist {
  name: string;
  cniVersion?: string;
  plugins: Record<string, unknown>[];
}

/**
 * Runs a conflist the way libcni does: ADD through the plugins in order with
 * each one's prevResult, DEL in reverse; runtimeConfig is filtered by each
 * plugin's declared capabilities.
 */
export async function execConflist(
  conflist: Conflist,
  command: "ADD" | "DEL" | "CHECK",
  call: Omit<PluginCall, "command" | "conf" | "binary">,
  runtimeConfig: Record<string, unknown> = {},
  prevResult?: Record<string, unknown>,
): Promise<PluginOutcome> {
  const order = command === "DEL" ? [...conflist.plugins].reverse() : conflist.plugins;
  let previous = prevResult;
  let last: PluginOutcome = { exitCode: 0, output: {}, raw: "", stderr: "" };
  for (const plugin of order) {
    const capabilities = (plugin.capabilities ?? {}) as Record<string, boolean>;
    const granted = Object.fromEntries(
      Object.entries(runtimeConfig).filter(([key]) => capabilities[key] === true),
    );
    const conf: Record<string, unknown> = {
      ...plugin,
      name: conflist.name,
      cniVersion: conflist.cniVersion ?? "0.2.0",
      ...(Object.keys(granted).length > 0 ? { runtimeConfig: granted } : {}),
      ...(previous && command !== "DEL" ? { prevResult: previous } : {}),
    };
    const type = String(plugin.type);
    const dir = [CNI_DIR, SYSTEM_CNI_DIR].find(
      (d) => sh(["test", "-x", join(d, type)]).status === 0,
    );
    last = await runPlugin({ ...call, command, conf, binary: join(dir ?? CNI_DIR, type) });
    if (last.exitCode !== 0) return last;
    if (command === "ADD") previous = last.output;
  }
  return command === "ADD" ? { ...last, output: previous ?? {} } : last;
}

/** Renders the seed page's cni_network_config the way the installer would. */
export function renderSeedConflist(values: Record<string, string>): Conflist {
  const template = readFileSync(join(ROOT, "test/fixtures/seed-cni-network-config.json"), "utf8");
  const rendered = template.replace(
    /__([A-Z_]+)__/g,
    (match, name: string) => values[name] ?? match,
  );
  return JSON.parse(rendered) as Conflist;
}

// ---- traffic ---------------------------------------------------------------

/** Pings from inside a namespace until one answer or the deadline. */
export function ping(fromNetns: string, to: string, deadlineSeconds = 5): boolean {
  return (
    sh([
      "ip",
      "netns",
      "exec",
      fromNetns,
      "ping",
      "-c",
      "1",
      "-w",
      String(deadlineSeconds),
      "-q",
      to,
    ]).status === 0
  );
}

/** Connects from inside a namespace to ip:port over TCP and returns what the server sent ("" on failure). */
export function tcpRequest(
  fromNetns: string,
  ip: string,
  port: number,
  timeoutSeconds = 2,
): string {
  const target = ip.includes(":") ? `TCP6:[${ip}]:${port}` : `TCP:${ip}:${port}`;
  return sh([
    "ip",
    "netns",
    "exec",
    fromNetns,
    "socat",
    "-T",
    String(timeoutSeconds),
    "-",
    `${target},connect-timeout=${timeoutSeconds}`,
  ]).stdout;
}

/** Starts a long-running process inside a namespace; returns a stopper that kills it by PID. */
export function startIn(netns: string, argv: string[]): { pid: number; stop(): void } {
  const child = spawn("ip", ["netns", "exec", netns, ...argv], { stdio: "ignore" });
  return {
    pid: child.pid ?? -1,
    stop() {
      if (child.exitCode === null) child.kill("SIGKILL");
    },
  };
}

// ---- a client routed to the node --------------------------------------------

export interface Uplink {
  /** Interface name on the node's side. */
  nodeIfname: string;
  /** Addresses with prefix length: the node's side, then the client's. */
  node: string[];
  client: string[];
}

/**
 * Connects a new namespace (a client outside the cluster) to this node's
 * namespace by a veth pair, `eth0` on the client's side, and gives the client
 * default routes through the node for each family it has an address of.
 * Neither end runs duplicate address detection.
 */
export function addClientNetns(name: string, uplink: Uplink): string {
  const path = addNetns(name);
  must([
    "ip",
    "link",
    "add",
    uplink.nodeIfname,
    "type",
    "veth",
    "peer",
    "name",
    "eth0",
    "netns",
    name,
  ]);
  // A forwarded packet's neighbour solicitation leaves from the link-local
  // address, and the kernel sends none while that address is tentative: with
  // DAD on, the first forwarded IPv6 packet can wait 1-3 s for the link to settle.
  must(["sysctl", "-qw", `net.ipv6.conf.${uplink.nodeIfname}.accept_dad=0`]);
  must(["ip", "netns", "exec", name, "sysctl", "-qw", "net.ipv6.conf.eth0.accept_dad=0"]);
  const nodad = (cidr: string) => (cidr.includes(":") ? ["nodad"] : []);
  for (const cidr of uplink.node) {
    must(["ip", "address", "add", cidr, "dev", uplink.nodeIfname, ...nodad(cidr)]);
  }
  for (const cidr of uplink.client) {
    must(["ip", "-n", name, "address", "add", cidr, "dev", "eth0", ...nodad(cidr)]);
  }
  must(["ip", "link", "set", uplink.nodeIfname, "up"]);
  must(["ip", "-n", name, "link", "set", "eth0", "up"]);
  for (const cidr of uplink.node) {
    const family = cidr.includes(":") ? "-6" : "-4";
    const via = cidr.split("/")[0] as string;
    must(["ip", "-n", name, family, "route", "replace", "default", "via", via, "dev", "eth0"]);
  }
  return path;
}

/** Polls `check` every 50 ms until it holds or `timeoutMs` passes; resolves to its last result. */
export async function eventually(check: () => boolean, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (check()) return true;
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
}

/**
 * Polls `check` every 50 ms until it holds; after `ms`, throws naming `what`
 * with `detail()` (the agent's last log lines, say) for the reader.
 */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  ms: number,
  detail: () => string,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}; ${detail()}`);
}

/** The elements of one of buoy's nft maps (`ip buoy <name>`), key -> value; empty if absent. */
export function readNftMap(name: string): Map<string, string> {
  const listing = sh(["nft", "-j", "list", "map", "ip", "buoy", name]);
  const map = new Map<string, string>();
  if (listing.status !== 0) return map;
  const parsed = JSON.parse(listing.stdout) as { nftables: { map?: { elem?: unknown[] } }[] };
  for (const entry of parsed.nftables) {
    for (const elem of entry.map?.elem ?? []) {
      const [key, value] = elem as [unknown, unknown];
      map.set(String(key), String(value));
    }
  }
  return map;
}

// ---- the node agent as a process -------------------------------------------

export interface AgentProcess {
  child: ChildProcess;
  /** host:port of /healthz, /readyz, /metrics. */
  address: string;
  /** Every line it wrote (JSON events on stdout, anything on stderr). */
  log: string[];
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Starts `dist/buoy agent` in this (the node's) namespace and waits until it
 * listens: on `etcd`, or with `env` naming the datastore (DATASTORE_TYPE, KUBECONFIG).
 */
export async function startAgent(
  datastore: Etcd | { env: Record<string, string> },
  args: string[],
): Promise<AgentProcess> {
  const log: string[] = [];
  const env = "env" in datastore ? datastore.env : { ETCD_ENDPOINTS: datastore.endpoint };
  const child = spawn(
    "node",
    [join(ROOT, "dist/buoy"), "agent", "--listen", "127.0.0.1:0", ...args],
    { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] },
  );
  let address = "";
  // A line can arrive in two chunks: keep the unfinished tail for the next one.
  let pending = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    const lines = (pending + chunk.toString()).split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines.filter(Boolean)) {
      log.push(line);
      try {
        const event = JSON.parse(line) as { event?: string; address?: string };
        if (event.event === "agent.listening") address = event.address ?? "";
      } catch {
        // not an event line
      }
    }
  });
  child.stderr?.on("data", (chunk: Buffer) => log.push(chunk.toString()));
  for (let i = 0; i < 100 && !address && child.exitCode === null; i++) await sleep(50);
  if (!address) {
    child.kill("SIGKILL");
    throw new Error(`agent did not start: ${log.join("")}`);
  }
  return {
    child,
    address,
    log,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill(signal);
      await exited;
    },
  };
}
