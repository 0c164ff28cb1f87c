// What `buoy diagnose` puts in its archive, run on a node: the commands whose
// output goes in (buoy's nft tables, its protocol-202 routes, addresses,
// conntrack's counters, BIRD's protocols and routes), the files copied (the
// CNI config, the CNI plugin's log and its rotated files, the agent's
// container logs as the kubelet keeps them), each cut to its last bytes,
// and the archive's name. Never the kubeconfig, a token or a key: only
// files of these kinds are read. Pure.

export interface DiagnoseOptions {
  node: string;
  cniConf: string;
  /** The CNI config's log_file_path (its directory holds the rotated files). */
  cniLog: string;
  birdSocket: string;
  /** The kubelet's pod logs (`/var/log/pods`), where the agent's container logs are. */
  podLogs: string;
  /** The DaemonSet's namespace: another namespace's pod named buoy-node-* is a tenant's. */
  agentNamespace: string;
  /** Now, for the archive's name. */
  now: Date;
}

export interface CommandItem {
  /** The file in the archive. */
  file: string;
  argv: string[];
}

/** At most this much of each file, its end: a log's latest lines. */
export const MAX_FILE_BYTES = 20 * 1024 * 1024;

export function diagnoseCommands(options: DiagnoseOptions): CommandItem[] {
  const bird = (file: string, ...command: string[]) => ({
    file,
    argv: ["birdc", "-s", options.birdSocket, ...command],
  });
  return [
    { file: "nft-ip-buoy.txt", argv: ["nft", "list", "table", "ip", "buoy"] },
    { file: "nft-ip6-buoy.txt", argv: ["nft", "list", "table", "ip6", "buoy"] },
    {
      file: "routes-ipv4.txt",
      argv: ["ip", "-4", "route", "show", "table", "all", "proto", "202"],
    },
    {
      file: "routes-ipv6.txt",
      argv: ["ip", "-6", "route", "show", "table", "all", "proto", "202"],
    },
    { file: "rules.txt", argv: ["ip", "rule", "show"] },
    { file: "addresses.txt", argv: ["ip", "-d", "address", "show"] },
    { file: "conntrack-stats.txt", argv: ["conntrack", "-S"] },
    bird("bird-protocols.txt", "show", "protocols", "all"),
    bird("bird-routes.txt", "show", "route"),
  ];
}

/**
 * The files to copy, as archive path -> host path: the CNI config, and of
 * the directory listings given, the CNI log and its rotated files, and the
 * agent's container logs.
 */
export function diagnoseFiles(
  options: DiagnoseOptions,
  listings: { cniLogDir: string[]; podLogDirs: string[]; agentLogs: (dir: string) => string[] },
): Map<string, string> {
  const files = new Map<string, string>();
  files.set(`cni/${basename(options.cniConf)}`, options.cniConf);
  const logDir = dirname(options.cniLog);
  const logName = basename(options.cniLog);
  const stem = logName.replace(/\.log$/, "");
  for (const name of listings.cniLogDir) {
    if (name === logName || (name.startsWith(`${stem}-`) && name.endsWith(".log"))) {
      files.set(`cni-log/${name}`, `${logDir}/${name}`);
    }
  }
  // The kubelet's layout: <namespace>_<pod>_<uid>/<container>/<restart>.log
  for (const dir of listings.podLogDirs) {
    const [namespace, pod, uid] = dir.split("_");
    if (namespace !== options.agentNamespace || !pod?.startsWith("buoy-node-") || !uid) continue;
    for (const log of listings.agentLogs(dir)) {
      if (/^\d+\.log$/.test(log)) {
        files.set(`agent-log/${dir}/${log}`, `${options.podLogs}/${dir}/buoy-agent/${log}`);
      }
    }
  }
  return files;
}

/** buoy-diagnose-<node>-<UTC time>.tar.gz */
export function archiveName(node: string, now: Date): string {
  const time = now
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  return `buoy-diagnose-${node.replace(/[^A-Za-z0-9.-]/g, "_")}-${time}.tar.gz`;
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

function dirname(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash <= 0 ? "/" : path.slice(0, slash);
}

/** The CNI log of the conflist's calico (or buoy) entry; undefined when it names none. */
export function cniLogPathOf(conflistText: string): string | undefined {
  try {
    const parsed = JSON.parse(conflistText) as { plugins?: Record<string, unknown>[] };
    const entry = (parsed.plugins ?? []).find(
      (plugin) => plugin.type === "calico" || plugin.type === "buoy",
    );
    return typeof entry?.log_file_path === "string" ? entry.log_file_path : undefined;
  } catch {
    return undefined;
  }
}
