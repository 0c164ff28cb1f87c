// `buoy install-cni [--uninstall]`: the command and its help. The installer
// (src/install/) is imported only when the command runs. Settings come from
// flags, else the environment (as the DaemonSet sets it), else defaults.
import { hostname } from "node:os";
import type { Command } from "commander";
import { PLACEHOLDERS } from "../../install/placeholders.js";
import type { CliRequest } from "../cli-request.js";
import { UsageError } from "../cli-error.js";

interface InstallCliOptions {
  uninstall?: boolean;
  refreshToken?: boolean;
  every?: string;
  plugin?: string;
  binDir?: string;
  confDir?: string;
  serviceAccountDir?: string;
}

export const DEFAULT_PLUGIN_PATH = "/opt/buoy/cni/buoy";
export const DEFAULT_BIN_DIR = "/host/opt/cni/bin";
export const DEFAULT_CONF_DIR = "/host/etc/cni/net.d";
export const DEFAULT_SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** Adds `install-cni` to the program. */
export function addInstallCommand(program: Command, request: CliRequest, version: string): void {
  program
    .command("install-cni")
    .summary("Install buoy's CNI plugin, conflist and kubeconfig on this node")
    .description(
      "Install buoy's CNI plugin on this node, as the buoy-node DaemonSet's init\n" +
        "container does (Calico's install-cni, for buoy): the plugin executable as\n" +
        "buoy, buoy-ipam, calico and calico-ipam in the host's CNI bin dir; a\n" +
        "kubeconfig for the plugin; the conflist rendered from CNI_NETWORK_CONFIG.\n" +
        "Everything is checked before anything is written, and each file is\n" +
        "written atomically; the conflist comes last.",
    )
    .option(
      "--uninstall",
      "remove what install-cni installed here (the executables, the kubeconfig and " +
        "the conflist, each only if unchanged since), and nothing else",
    )
    .option(
      "--refresh-token",
      "give the plugin's kubeconfig a new token once half the current one's lifetime " +
        "has passed (CNI_SERVICE_ACCOUNT, CNI_TOKEN_TTL_SECONDS as for the install)",
    )
    .option(
      "--every <seconds>",
      "with --refresh-token: keep running and check this often (the DaemonSet's cni-token container)",
    )
    .option(
      "--plugin <path>",
      `the plugin executable (BUOY_CNI_PLUGIN, else ${DEFAULT_PLUGIN_PATH})`,
    )
    .option(
      "--bin-dir <dir>",
      `the host's CNI bin dir as mounted here (CNI_BIN_DIR, else ${DEFAULT_BIN_DIR})`,
    )
    .option(
      "--conf-dir <dir>",
      `the host's CNI conf dir as mounted here (CNI_CONF_DIR, else ${DEFAULT_CONF_DIR})`,
    )
    .option(
      "--service-account-dir <dir>",
      `the pod's service account files (else ${DEFAULT_SERVICE_ACCOUNT_DIR})`,
    )
    .addHelpText("after", installHelp())
    .action(async (options: InstallCliOptions) => {
      const { env } = request;
      const pick = (flag: string | undefined, name: string, fallback: string) =>
        flag ?? (env[name] || fallback);
      const { installCni, uninstallCni, refreshPluginToken } =
        await import("../../install/install-cni.js");
      const settings = {
        pluginPath: pick(options.plugin, "BUOY_CNI_PLUGIN", DEFAULT_PLUGIN_PATH),
        binDir: pick(options.binDir, "CNI_BIN_DIR", DEFAULT_BIN_DIR),
        confDir: pick(options.confDir, "CNI_CONF_DIR", DEFAULT_CONF_DIR),
        serviceAccountDir: options.serviceAccountDir ?? DEFAULT_SERVICE_ACCOUNT_DIR,
        procNetRoute: "/proc/net/route",
        sysClassNet: "/sys/class/net",
        hostname: hostname(),
        env,
        write: (line: string) => request.stdout.write(`${line}\n`),
      };
      if (options.every !== undefined && !options.refreshToken) {
        throw new UsageError("--every goes with --refresh-token");
      }
      if (options.uninstall) await uninstallCni(settings);
      else if (!options.refreshToken) await installCni(settings, version);
      else if (options.every === undefined) await refreshPluginToken(settings);
      else await refreshForever(settings, options.every, request, refreshPluginToken);
    });
}

/** Checks the token every `every` seconds until shutdown; a failed check is reported and retried. */
async function refreshForever<S>(
  settings: S & { write(line: string): void },
  every: string,
  request: CliRequest,
  refresh: (settings: S) => Promise<boolean>,
): Promise<void> {
  const seconds = Number(every);
  if (!Number.isFinite(seconds) || seconds <= 0) {
    throw new UsageError(`--every must be a number of seconds, got '${every}'`);
  }
  const stop = new AbortController();
  request.onShutdown?.(() => stop.abort());
  while (!stop.signal.aborted) {
    try {
      await refresh(settings);
    } catch (error) {
      settings.write(
        `token refresh failed, retrying in ${seconds} s: ${(error as Error).message}` +
          ((error as Error).cause instanceof Error
            ? ` (${((error as Error).cause as Error).message})`
            : ""),
      );
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, seconds * 1000);
      stop.signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), {
        once: true,
      });
    });
  }
}

/** Every variable install-cni reads, with what it does; the placeholders from their table. */
export const INSTALL_ENV: readonly { name: string; meaning: string }[] = [
  {
    name: "CNI_NETWORK_CONFIG",
    meaning:
      "the conflist template (the calico-config ConfigMap's cni_network_config);\n" +
      "its main plugin must be of type calico or buoy",
  },
  { name: "CNI_NETWORK_CONFIG_FILE", meaning: "a file holding the template instead" },
  { name: "CNI_CONF_NAME", meaning: "the conflist's file name (default 10-calico.conflist)" },
  {
    name: "CNI_NET_DIR",
    meaning: "the conf dir as the host sees it, for paths in the conflist (/etc/cni/net.d)",
  },
  { name: "CNI_BIN_DIR", meaning: "as --bin-dir" },
  { name: "CNI_CONF_DIR", meaning: "as --conf-dir" },
  { name: "BUOY_CNI_PLUGIN", meaning: "as --plugin" },
  { name: "KUBERNETES_NODE_NAME", meaning: "the node's name (default: the hostname)" },
  { name: "CNI_MTU", meaning: "the pods' MTU; empty or 0: the default route's interface's" },
  { name: "DATASTORE_TYPE", meaning: "kubernetes (default) or etcdv3" },
  { name: "ETCD_ENDPOINTS", meaning: "etcd URLs, for the etcdv3 datastore" },
  { name: "ETCD_DISCOVERY_SRV", meaning: "substituted as given; buoy's plugin ignores it" },
  { name: "LOG_LEVEL", meaning: "the plugin's log level (default info)" },
  { name: "LOG_FILE_PATH", meaning: "the plugin's log file (default /var/log/buoy/cni.log)" },
  {
    name: "LOG_FILE_MAX_SIZE",
    meaning:
      "with LOG_FILE_MAX_AGE, LOG_FILE_MAX_COUNT: substituted\n(100, 30, 10); buoy's plugin ignores them",
  },
  { name: "LOG_FILE_MAX_AGE", meaning: "see LOG_FILE_MAX_SIZE" },
  { name: "LOG_FILE_MAX_COUNT", meaning: "see LOG_FILE_MAX_SIZE" },
  {
    name: "KUBERNETES_SERVICE_HOST",
    meaning: "the API server, for the kubeconfig (set by the kubelet)",
  },
  { name: "KUBERNETES_SERVICE_PORT", meaning: "its port (set by the kubelet)" },
  { name: "KUBERNETES_SERVICE_PROTOCOL", meaning: "https (default) or http" },
  { name: "SKIP_TLS_VERIFY", meaning: "true: the kubeconfig does not check the API server's CA" },
  {
    name: "CNI_SERVICE_ACCOUNT",
    meaning:
      "NAME or NAMESPACE/NAME: the plugin's kubeconfig gets a token for this\n" +
      "service account (TokenRequest, asked with the pod's own token); empty:\n" +
      "the pod's own token",
  },
  {
    name: "CNI_TOKEN_TTL_SECONDS",
    meaning: "the lifetime asked for that token (default 31536000, a year)",
  },
];

function installHelp(): string {
  const width = 30;
  const lines = (entries: readonly { name: string; meaning: string }[]) =>
    entries
      .map(({ name, meaning }) =>
        wrap(meaning.replace(/\s+/g, " "), 78 - width)
          .map((line, index) => `  ${(index === 0 ? name : "").padEnd(width)}${line}`)
          .join("\n"),
      )
      .join("\n");
  const placeholders = PLACEHOLDERS.map((p) => ({ name: `__${p.name}__`, meaning: p.meaning }));
  return `
Environment (flags win over it):
${lines(INSTALL_ENV)}

Placeholders in the template (Calico's; any other __NAME__ is an error):
${lines(placeholders)}

Files, as the host sees them:
  /opt/cni/bin/{buoy,buoy-ipam,calico,calico-ipam}   one executable, hard-linked
  /etc/cni/net.d/calico-kubeconfig                   mode 600, JSON (valid YAML)
  /etc/cni/net.d/10-calico.conflist                  CNI_CONF_NAME
  /etc/cni/net.d/.buoy-install-cni.record            what was installed, for
                                                     --uninstall and upgrades

Examples:
  buoy install-cni                      # in the DaemonSet's init container
  buoy install-cni --uninstall
  CNI_NETWORK_CONFIG="$(cat conflist.json)" KUBERNETES_NODE_NAME=node-1 \\
    DATASTORE_TYPE=etcdv3 ETCD_ENDPOINTS=http://10.0.0.1:2379 \\
    buoy install-cni --plugin dist/cni/buoy --bin-dir /opt/cni/bin \\
    --conf-dir /etc/cni/net.d`;
}

/** Words into lines of at most `width` characters (a longer word gets a line of its own). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === "" ? word : `${line} ${word}`;
    }
  }
  return [...lines, line];
}
