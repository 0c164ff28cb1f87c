// `buoy diagnose`, run on a node: one archive with what support asks for
// first (diagnose-plan.ts): buoy's nft tables and routes, BIRD's state, the
// CNI config and logs, the agent's container logs, its /metrics and node
// status, and this node's records in the datastore. What cannot be had is
// listed in the archive's errors.txt; the command fails only when it cannot
// write the archive.
import {
  closeSync,
  constants,
  existsSync,
  fstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { hostname, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import type { Command } from "commander";
import { DEFAULT_LOG_FILE } from "../../cni/netconf.js";
import { runCommand } from "../../exec/command.js";
import { CliError } from "../cli-error.js";
import {
  MAX_FILE_BYTES,
  archiveName,
  cniLogPathOf,
  diagnoseCommands,
  diagnoseFiles,
  type DiagnoseOptions,
} from "../diagnose-plan.js";
import { renderNodeStatus } from "../node-status.js";
import { agentAddress, readAgent, readBird } from "./node.js";
import { readState } from "./read-state.js";
import type { Session } from "./session.js";

/** Where install-cni writes the conflist (CNI_CONF_NAME's default). */
const DEFAULT_CNI_CONF = "/etc/cni/net.d/10-calico.conflist";

interface Flags {
  node: string;
  cniConf?: string;
  cniLog?: string;
  birdSocket: string;
  agent?: string;
  podLogs: string;
  namespace: string;
  output?: string;
}

export function addDiagnoseCommand(program: Command, session: Session): void {
  program
    .command("diagnose")
    .description("Collect this node's buoy state and logs into one archive, for a bug report")
    .option("--node <name>", "this node's name in the datastore", hostname())
    .option(
      "--cni-conf <path>",
      "the CNI config (default /etc/cni/net.d/10-calico.conflist, or under /host in the DaemonSet's containers)",
    )
    .option("--cni-log <path>", "the CNI plugin's log (default: the config's log_file_path)")
    .option("--bird-socket <path>", "BIRD's control socket", "/run/bird/bird.ctl")
    .option(
      "--agent <host:port>",
      "the agent's --listen address (default $NODE_IP:9096 where NODE_IP is set, else 127.0.0.1:9096)",
    )
    .option("--pod-logs <dir>", "where the kubelet keeps container logs", "/var/log/pods")
    .option("--namespace <name>", "the namespace of buoy's DaemonSet", "kube-system")
    .option("-o, --output <file>", "the archive (default: buoy-diagnose-NODE-TIME.tar.gz here)")
    .addHelpText(
      "after",
      `
The archive holds: nft-ip{,6}-buoy.txt (buoy's tables), routes-ipv{4,6}.txt
(protocol 202, every table), rules.txt, addresses.txt, conntrack-stats.txt,
bird-protocols.txt, bird-routes.txt, node-status.txt, metrics.txt,
datastore.json (the pools, and this node's workload endpoints, claims and
statuses), cni/ (the CNI config), cni-log/ (the plugin's log and its
rotated files), agent-log/ (the agent's container logs), and errors.txt
for what could not be had. Each file is cut to its last 20 MiB. No
kubeconfig, token or key is read.

Run it on the node's host, as root (the self-contained buoy executable):
inside the agent's container the logs are not mounted. The archive is
made new (an existing file is not overwritten), readable by its owner only;
a symlink in a log directory is not followed.

Examples:
  buoy diagnose
  buoy diagnose --node node-1 -o /root/node-1.tar.gz`,
    )
    .action(async (flags: Flags, command: Command) => {
      const cniConf =
        flags.cniConf ??
        [DEFAULT_CNI_CONF, `/host${DEFAULT_CNI_CONF}`].find((path) => existsSync(path)) ??
        DEFAULT_CNI_CONF;
      const conflist = readOrUndefined(cniConf);
      const options: DiagnoseOptions = {
        node: flags.node,
        cniConf,
        cniLog: flags.cniLog ?? (conflist && cniLogPathOf(conflist)) ?? DEFAULT_LOG_FILE,
        birdSocket: flags.birdSocket,
        podLogs: flags.podLogs,
        agentNamespace: flags.namespace,
        now: new Date(),
      };
      const name = archiveName(options.node, options.now);
      const output = resolve(flags.output ?? name);
      const root = mkdtempSync(join(tmpdir(), "buoy-diagnose-"));
      const top = join(root, name.replace(/\.tar\.gz$/, ""));
      const errors: string[] = [];
      const write = (file: string, text: string) => {
        mkdirSync(dirname(join(top, file)), { recursive: true });
        writeFileSync(join(top, file), text);
      };
      const progress = (text: string) => session.request.stderr.write(`${text}\n`);
      try {
        progress("collecting the kernel's and BIRD's state...");
        for (const item of diagnoseCommands(options)) {
          try {
            const out = await runCommand(item.argv, { timeoutMs: 15_000 });
            write(item.file, out.stdout);
          } catch (error) {
            errors.push(`${item.argv.join(" ")}: ${firstLine(error)}`);
          }
        }
        progress("asking the agent...");
        const url = `http://${agentAddress(flags.agent, session.request.env)}`;
        const [agent, bird] = await Promise.all([readAgent(url), readBird(flags.birdSocket)]);
        write("node-status.txt", renderNodeStatus({ agent, bird }, new Date()));
        try {
          const metrics = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(3000) });
          write("metrics.txt", await metrics.text());
        } catch (error) {
          errors.push(`${url}/metrics: ${firstLine(error)}`);
        }
        progress("reading this node's records from the datastore...");
        try {
          const state = await readState(session, command);
          const mine = <T extends { node: string }>(items: { value: T }[]) =>
            items.map((item) => item.value).filter((value) => value.node === options.node);
          write(
            "datastore.json",
            JSON.stringify(
              {
                node: options.node,
                pools: state.pools.map((pool) => pool.value),
                endpoints: mine(state.endpoints),
                claims: mine(state.claims),
                statuses: state.statuses.filter((status) => status.node === options.node),
              },
              null,
              2,
            ) + "\n",
          );
        } catch (error) {
          errors.push(`the datastore: ${firstLine(error)}`);
        }
        progress("copying the CNI config and logs...");
        const files = diagnoseFiles(options, {
          cniLogDir: list(dirname(options.cniLog)),
          podLogDirs: list(options.podLogs),
          agentLogs: (dir) => list(join(options.podLogs, dir, "buoy-agent")),
        });
        for (const [file, path] of files) {
          try {
            write(file, tail(path));
          } catch (error) {
            errors.push(`${path}: ${firstLine(error)}`);
          }
        }
        write("errors.txt", errors.length > 0 ? errors.join("\n") + "\n" : "");
        // Made new, for root only: the archive holds the node's logs and tables.
        try {
          closeSync(openSync(output, "wx", 0o600));
        } catch (error) {
          throw new CliError(`cannot create ${output} (it must not exist yet)`, { cause: error });
        }
        try {
          await runCommand(["tar", "-czf", output, "-C", root, name.replace(/\.tar\.gz$/, "")]);
        } catch (error) {
          rmSync(output, { force: true });
          throw new CliError(`cannot write ${output}`, { cause: error });
        }
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
      session.write(
        `wrote ${output}` +
          (errors.length > 0 ? ` (${errors.length} item(s) not collected: see errors.txt)` : "") +
          "\n",
      );
    });
}

function readOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

function list(dir: string): string[] {
  try {
    return existsSync(dir) ? readdirSync(dir).sort() : [];
  } catch {
    return [];
  }
}

/**
 * The file's last MAX_FILE_BYTES: a regular file opened without following
 * a symlink (a log directory's link to another file is not read), never a
 * FIFO or device.
 */
function tail(path: string): string {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new Error("not a regular file");
    const length = Math.min(stat.size, MAX_FILE_BYTES);
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, stat.size - length);
    return buffer.toString("utf8");
  } finally {
    closeSync(fd);
  }
}

function firstLine(error: unknown): string {
  return ((error as Error).message ?? String(error)).split("\n")[0] ?? "";
}
