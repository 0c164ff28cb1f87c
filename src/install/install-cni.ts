// `buoy install-cni`, the I/O: reads the template, the service account and the
// node's default route, renders and checks everything (render.ts) before it
// touches the host, then installs the plugin executables, the kubeconfig and
// the conflist, each atomically (a temp file in the same directory, then
// rename), so a kubelet never execs or reads a half-written file. The conflist
// comes last: once it is there, the runtime uses everything it names.
//
// What it wrote is recorded (name and SHA-256 of each file) in
// `<conf dir>/.buoy-install-cni.record`; `--uninstall` removes exactly those
// files, and only where they are unchanged, and a reinstall removes the ones
// it no longer writes (e.g. after CNI_CONF_NAME changed).
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import {
  chmod,
  copyFile,
  link,
  mkdir,
  open,
  readFile,
  rename,
  rm,
  stat,
  unlink,
  writeFile,
} from "node:fs/promises";
import { join } from "node:path";
import {
  DEFAULT_CONF_NAME,
  KUBECONFIG_NAME,
  PLUGIN_NAMES,
  parseDefaultRouteInterface,
  planPlaceholderValues,
  renderCniNetworkConfig,
  renderKubeconfig,
  serverUrl,
  validateConflist,
  type ConflistSummary,
} from "./render.js";
import { requestServiceAccountToken } from "./token-request.js";
import { refreshDue, tokenTimes } from "./token-times.js";
import { KubeconfigError, parseKubeconfig } from "../kube/kubeconfig.js";

type Env = Readonly<Record<string, string | undefined>>;

export interface InstallSettings {
  /** The plugin executable to install (in the image: /opt/buoy/cni/buoy). */
  pluginPath: string;
  /** Where the executables go: the host's CNI bin dir as mounted here. */
  binDir: string;
  /** Where the conflist and kubeconfig go: the host's CNI conf dir as mounted here. */
  confDir: string;
  /** The pod's service account: token, ca.crt, namespace. */
  serviceAccountDir: string;
  /** Read for the default route's MTU (CNI_MTU 0); tests point them elsewhere. */
  procNetRoute: string;
  sysClassNet: string;
  hostname: string;
  env: Env;
  /** One line of the report at a time. */
  write(line: string): void;
  /** The clock token refreshes go by (tests). */
  now?: () => Date;
}

export class InstallError extends Error {
  override readonly name = "InstallError";
}

export const INSTALL_RECORD_NAME = ".buoy-install-cni.record";
/** A year: the lifetime of a kubelet-mounted token with extended expiration. */
export const DEFAULT_TOKEN_TTL_SECONDS = 365 * 24 * 3600;

type FileKind = "bin" | "conf";

interface RecordEntry {
  dir: FileKind;
  name: string;
  sha256: string;
}

interface InstallRecord {
  installedBy: string;
  installedAt: string;
  files: RecordEntry[];
}

export async function installCni(settings: InstallSettings, version: string): Promise<void> {
  const { env, write } = settings;
  const confName = env.CNI_CONF_NAME || DEFAULT_CONF_NAME;
  // A runtime reads a .conf or .json file as one plugin's config, not as a list.
  if (confName.includes("/") || !/^[^.].*\.conflist$/.test(confName)) {
    throw new InstallError(
      `CNI_CONF_NAME must be a file name ending in .conflist, got '${confName}'`,
    );
  }

  // Everything is read and checked before anything is written.
  const template = await readTemplate(env);
  const account = await readServiceAccount(settings);
  const plugin = await describePlugin(settings.pluginPath);
  const defaultRouteMtu = await readDefaultRouteMtu(settings);
  const kube = account ? await planKubeconfig(settings, account) : undefined;
  const planned = planPlaceholderValues(env, {
    hostname: settings.hostname,
    pluginToken: kube?.token,
    defaultRouteMtu,
  });
  const rendered = renderCniNetworkConfig(template.text, planned.values);
  const problems = [...planned.errors, ...(rendered.ok ? [] : rendered.errors)];
  let summary: ConflistSummary | undefined;
  if (rendered.ok && planned.errors.length === 0) {
    const check = validateConflist(rendered.text);
    if (check.ok) summary = check.summary;
    else problems.push(...check.errors);
  }
  if (problems.length > 0 || !rendered.ok || !summary) {
    throw new InstallError(
      `cannot install the CNI config from ${template.source}:\n` +
        problems.map((problem) => `  - ${problem}`).join("\n"),
    );
  }
  if (summary.datastoreType === "kubernetes" && !kube) {
    throw new InstallError(
      `the config's datastore is kubernetes, but there is no service account token at ` +
        `${join(settings.serviceAccountDir, "token")} to write the plugin's kubeconfig from ` +
        `(install-cni runs as a pod's container)`,
    );
  }

  const previous = await readRecord(settings.confDir);
  const files: RecordEntry[] = [];

  // 1. The executables: one copy, hard links for the other names.
  await mkdir(settings.binDir, { recursive: true });
  const [primary, ...aliases] = PLUGIN_NAMES;
  await placeFile(settings.binDir, primary, 0o755, (tmp) => copyFile(settings.pluginPath, tmp));
  const copied: string[] = [];
  for (const alias of aliases) {
    await placeFile(settings.binDir, alias, 0o755, async (tmp) => {
      try {
        await link(join(settings.binDir, primary), tmp);
      } catch {
        copied.push(alias); // a file system without hard links: a copy of its own
        await copyFile(settings.pluginPath, tmp);
      }
    });
  }
  for (const name of PLUGIN_NAMES) files.push({ dir: "bin", name, sha256: plugin.sha256 });
  write(
    `installed ${join(settings.binDir, primary)} (from ${settings.pluginPath}, ` +
      `${(plugin.size / 1e6).toFixed(1)} MB) and ${aliases
        .map((alias) => alias + (copied.includes(alias) ? " (a copy)" : ""))
        .join(", ")} ${copied.length === aliases.length ? "beside it" : "as hard links to it"}`,
  );

  // 2. The plugin's kubeconfig, readable by root only: it holds a token.
  await mkdir(settings.confDir, { recursive: true });
  if (kube) {
    const text = renderKubeconfig(kube.input);
    await placeFile(settings.confDir, KUBECONFIG_NAME, 0o600, (tmp) => writeNew(tmp, text, 0o600));
    files.push({ dir: "conf", name: KUBECONFIG_NAME, sha256: sha256(text) });
    write(
      `wrote ${join(settings.confDir, KUBECONFIG_NAME)} (mode 600): API server ${kube.input.server}, ` +
        `${kube.describe}`,
    );
  } else {
    write(
      `no service account token at ${join(settings.serviceAccountDir, "token")}: ` +
        `no kubeconfig written (not running in a pod; the datastore is ${summary.datastoreType})`,
    );
  }

  // 3. The conflist, last.
  const conflist = rendered.text.endsWith("\n") ? rendered.text : `${rendered.text}\n`;
  await placeFile(settings.confDir, confName, 0o644, (tmp) => writeNew(tmp, conflist, 0o644));
  files.push({ dir: "conf", name: confName, sha256: sha256(conflist) });
  write(
    `wrote ${join(settings.confDir, confName)} from ${template.source}: network ` +
      `${summary.name} (CNI ${summary.cniVersion}), plugins ${summary.pluginTypes.join(" -> ")}, ` +
      `node ${summary.nodename ?? "(hostname)"}, MTU ${summary.mtu}, datastore ` +
      `${summary.datastoreType}, floating IPs ${summary.floatingIps ? "on" : "off"}`,
  );
  if (rendered.used.includes("CNI_MTU")) write(`  MTU: ${planned.mtuSource}`);

  // 4. Files an earlier install wrote and this one did not: gone, if unchanged.
  const kept = new Set(files.map((file) => `${file.dir}/${file.name}`));
  for (const old of previous?.files ?? []) {
    if (kept.has(`${old.dir}/${old.name}`)) continue;
    write(await removeIfUnchanged(settings, old, "no longer installed"));
  }
  await writeRecord(settings.confDir, {
    installedBy: `buoy install-cni ${version}`,
    installedAt: new Date().toISOString(),
    files,
  });
  write(`done: the node's CNI network is buoy's`);
}

/**
 * Gives the plugin's kubeconfig a new token once half the current one's
 * lifetime has passed (the DaemonSet's cni-token container runs this every
 * few minutes). Only a kubeconfig as install-cni left it is replaced, and the
 * install record follows, so --uninstall still knows it. Resolves to whether
 * it wrote one.
 */
export async function refreshPluginToken(settings: InstallSettings): Promise<boolean> {
  const { write } = settings;
  const now = settings.now?.() ?? new Date();
  const path = join(settings.confDir, KUBECONFIG_NAME);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new InstallError(`no kubeconfig at ${path} to refresh: run install-cni first`, {
      cause: error,
    });
  }
  let token: string | undefined;
  try {
    token = parseKubeconfig(text, path, () => "").token;
  } catch (error) {
    if (!(error instanceof KubeconfigError)) throw error;
    throw new InstallError(`cannot read ${path}: ${error.message}`);
  }
  const times = token === undefined ? undefined : tokenTimes(token);
  if (!times) {
    write(`${path}: its token says no expiry (not a service-account JWT); left as it is`);
    return false;
  }
  if (!refreshDue(times, now)) {
    write(`${path}: token valid until ${times.expiresAt.toISOString()}; not due yet`);
    return false;
  }
  const record = await readRecord(settings.confDir);
  const entry = record?.files.find((file) => file.dir === "conf" && file.name === KUBECONFIG_NAME);
  if (!record || entry?.sha256 !== sha256(text)) {
    write(`${path} changed since install-cni wrote it: left alone (run install-cni to replace it)`);
    return false;
  }
  const account = await readServiceAccount(settings);
  if (!account) {
    throw new InstallError(
      `no service account token at ${join(settings.serviceAccountDir, "token")} to ask for a new one`,
    );
  }
  const kube = await planKubeconfig(settings, account);
  const fresh = renderKubeconfig(kube.input);
  await placeFile(settings.confDir, KUBECONFIG_NAME, 0o600, (tmp) => writeNew(tmp, fresh, 0o600));
  entry.sha256 = sha256(fresh);
  await writeRecord(settings.confDir, record);
  write(
    `refreshed ${path}: the token was due (valid until ${times.expiresAt.toISOString()}); ` +
      `now ${kube.describe}`,
  );
  return true;
}

/** Removes the files the last install recorded, where they are as it left them. */
export async function uninstallCni(settings: InstallSettings): Promise<void> {
  const record = await readRecord(settings.confDir);
  const path = join(settings.confDir, INSTALL_RECORD_NAME);
  if (!record) {
    settings.write(`nothing to uninstall: no install record at ${path}`);
    return;
  }
  // The conflist first, so the runtime stops using the network before its executables go.
  const order = (entry: RecordEntry) =>
    entry.dir === "conf" ? (entry.name === KUBECONFIG_NAME ? 1 : 0) : 2;
  const entries = [...record.files].sort((a, b) => order(a) - order(b));
  for (const entry of entries) {
    settings.write(await removeIfUnchanged(settings, entry, "uninstalled"));
  }
  await rm(path, { force: true });
  settings.write(`removed ${path}`);
}

async function removeIfUnchanged(
  settings: InstallSettings,
  entry: RecordEntry,
  why: string,
): Promise<string> {
  const path = join(entry.dir === "bin" ? settings.binDir : settings.confDir, entry.name);
  let current: string;
  try {
    current = await hashFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return `${path}: already gone`;
    throw error;
  }
  if (current !== entry.sha256) return `left ${path}: changed since buoy installed it`;
  await unlink(path);
  return `removed ${path} (${why})`;
}

async function readTemplate(env: Env): Promise<{ text: string; source: string }> {
  const file = env.CNI_NETWORK_CONFIG_FILE;
  if (file) {
    try {
      return { text: await readFile(file, "utf8"), source: file };
    } catch (error) {
      throw new InstallError(`cannot read CNI_NETWORK_CONFIG_FILE ${file}`, { cause: error });
    }
  }
  const text = env.CNI_NETWORK_CONFIG;
  if (text === undefined || text.trim() === "") {
    throw new InstallError(
      "no CNI network config: set CNI_NETWORK_CONFIG (the calico-config ConfigMap's " +
        "cni_network_config) or CNI_NETWORK_CONFIG_FILE",
    );
  }
  return { text, source: "CNI_NETWORK_CONFIG" };
}

interface ServiceAccount {
  token: string;
  caPem: string | undefined;
  namespace: string | undefined;
}

/** The pod's service account; undefined when there is no token (not in a pod). */
async function readServiceAccount(settings: InstallSettings): Promise<ServiceAccount | undefined> {
  const read = async (name: string) => {
    try {
      return await readFile(join(settings.serviceAccountDir, name), "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw new InstallError(`cannot read ${join(settings.serviceAccountDir, name)}`, {
        cause: error,
      });
    }
  };
  const token = (await read("token"))?.trim();
  if (!token) return undefined;
  return {
    token,
    caPem: await read("ca.crt"),
    namespace: (await read("namespace"))?.trim() || undefined,
  };
}

async function planKubeconfig(
  settings: InstallSettings,
  account: ServiceAccount,
): Promise<{ token: string; input: Parameters<typeof renderKubeconfig>[0]; describe: string }> {
  const { env } = settings;
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) {
    throw new InstallError(
      "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set to write the plugin's " +
        "kubeconfig (the kubelet sets them in every pod)",
    );
  }
  const skipTlsVerify = env.SKIP_TLS_VERIFY === "true";
  if (!skipTlsVerify && account.caPem === undefined) {
    throw new InstallError(
      `no CA certificate at ${join(settings.serviceAccountDir, "ca.crt")} ` +
        "(set SKIP_TLS_VERIFY=true to connect without checking the API server)",
    );
  }
  const server = serverUrl(env.KUBERNETES_SERVICE_PROTOCOL || "https", host, port);
  const base = { server, caPem: account.caPem, skipTlsVerify };
  const wanted = env.CNI_SERVICE_ACCOUNT?.trim();
  if (!wanted) {
    return {
      token: account.token,
      input: { ...base, token: account.token },
      describe: "the pod's own service account token",
    };
  }
  const [namespace, name] = wanted.includes("/")
    ? wanted.split("/", 2)
    : [account.namespace ?? "kube-system", wanted];
  const ttlText = env.CNI_TOKEN_TTL_SECONDS?.trim() || String(DEFAULT_TOKEN_TTL_SECONDS);
  const ttl = Number(ttlText);
  if (!/^\d+$/.test(ttlText) || ttl < 600) {
    throw new InstallError(
      `CNI_TOKEN_TTL_SECONDS must be a whole number of seconds, 600 or more, got '${ttlText}'`,
    );
  }
  if (!namespace || !name) {
    throw new InstallError(`CNI_SERVICE_ACCOUNT must be NAME or NAMESPACE/NAME, got '${wanted}'`);
  }
  const issued = await requestServiceAccountToken({
    ...base,
    bearerToken: account.token,
    namespace,
    serviceAccount: name,
    expirationSeconds: ttl,
  });
  return {
    token: issued.token,
    input: { ...base, token: issued.token },
    describe:
      `a token for service account ${namespace}/${name}` +
      (issued.expirationTimestamp ? ` valid until ${issued.expirationTimestamp}` : ""),
  };
}

async function describePlugin(path: string): Promise<{ size: number; sha256: string }> {
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new InstallError(`the plugin ${path} is not a file`);
    return { size: info.size, sha256: await hashFile(path) };
  } catch (error) {
    if (error instanceof InstallError) throw error;
    throw new InstallError(`cannot read the plugin executable ${path} (--plugin)`, {
      cause: error,
    });
  }
}

/** The MTU of the default route's interface; undefined when there is none to read. */
async function readDefaultRouteMtu(settings: InstallSettings): Promise<number | undefined> {
  try {
    const iface = parseDefaultRouteInterface(await readFile(settings.procNetRoute, "utf8"));
    if (iface === undefined || iface.includes("/")) return undefined;
    const mtu = Number((await readFile(join(settings.sysClassNet, iface, "mtu"), "utf8")).trim());
    return Number.isInteger(mtu) ? mtu : undefined;
  } catch {
    return undefined;
  }
}

let tmpCounter = 0;

/**
 * Creates `name` in `dir` atomically: `fill` makes a temp file in the same
 * directory (never ending in .conf/.conflist/.json, so a runtime watching the
 * directory does not load it), which gets `mode`, is flushed to disk and
 * renamed over `name`.
 */
async function placeFile(
  dir: string,
  name: string,
  mode: number,
  fill: (tmp: string) => Promise<void>,
): Promise<void> {
  const tmp = join(
    dir,
    `.${name}.buoy-tmp-${process.pid}-${++tmpCounter}-${randomBytes(3).toString("hex")}`,
  );
  try {
    await fill(tmp);
    await chmod(tmp, mode);
    const handle = await open(tmp, "r");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, join(dir, name));
  } catch (error) {
    await rm(tmp, { force: true });
    throw new InstallError(`cannot install ${join(dir, name)}`, { cause: error });
  }
}

async function writeNew(path: string, text: string, mode: number): Promise<void> {
  await writeFile(path, text, { mode, flag: "wx" });
}

async function readRecord(confDir: string): Promise<InstallRecord | undefined> {
  let text: string;
  try {
    text = await readFile(join(confDir, INSTALL_RECORD_NAME), "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  try {
    const record = JSON.parse(text) as InstallRecord;
    if (!Array.isArray(record.files)) throw new Error("no files");
    const valid = record.files.filter(
      (entry) =>
        (entry.dir === "bin" || entry.dir === "conf") &&
        typeof entry.name === "string" &&
        !entry.name.includes("/") &&
        typeof entry.sha256 === "string",
    );
    return { ...record, files: valid };
  } catch {
    throw new InstallError(
      `the install record ${join(confDir, INSTALL_RECORD_NAME)} is damaged; ` +
        "remove it and the files buoy installed by hand",
    );
  }
}

async function writeRecord(confDir: string, record: InstallRecord): Promise<void> {
  const text = JSON.stringify(record, null, 2) + "\n";
  await placeFile(confDir, INSTALL_RECORD_NAME, 0o644, (tmp) => writeNew(tmp, text, 0o644));
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

async function hashFile(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}
