// `buoy agent`: the node agent's composition root. Checks the flags, opens
// the etcdv3 or kubernetes AgentSource, builds the Linux dataplane ports
// (nft, routes, conntrack, BIRD) and the logger, and runs the agent until
// shutdown; all of it is imported only when the command runs.
import { Option, type Command } from "commander";
import { validateFenceAfter } from "../../agent/fence.js";
import { truncateEcho } from "../../floating/truncate-echo.js";
import { isValidAsNumber } from "../../dataplane/bird-config.js";
import { nodeNameProblem } from "../../model/identifiers.js";
import { DEFAULT_AS_NUMBER } from "../../model/records.js";
import { UsageError } from "../cli-error.js";
import { parseLeaseNamespace } from "../lease-namespace.js";
import type { Session } from "./session.js";
import { logLevelOption } from "../log-level-option.js";

interface AgentCliOptions {
  node: string;
  listen: string;
  floatingIps: "auto" | "on" | "off";
  cniConf: string;
  resync: string;
  logLevel: string;
  routing: "none" | "direct" | "bgp" | "vxlan";
  asNumber: string;
  birdConfig: string;
  birdSocket: string;
  birdWatchdog?: string;
  statusTtl: string;
  fenceAfter?: string;
  claimGcGrace: string;
  leaseNamespace?: string;
  cniSocket?: string;
  cniBin?: string;
}

/** Adds `agent` to the program. */
export function addAgentCommand(program: Command, session: Session): void {
  program
    .command("agent")
    .summary("Run the node agent (floating-IP NAT, routes, BIRD, status)")
    .description(
      "Run the node agent: watch the datastore and program this node's floating-IP\n" +
        "NAT (nftables maps), natOutgoing, the routes to other nodes' pods and\n" +
        "floating IPs (direct, or announced by BIRD), and conntrack. Releases\n" +
        "claims whose pod is gone. Stops on SIGTERM leaving the dataplane in\n" +
        "place; on start it reconciles without flushing.",
    )
    .requiredOption("--node <name>", "this node's name (the CNI config's nodename)")
    .option("--listen <host:port>", "address for /healthz, /readyz and /metrics", "127.0.0.1:9096")
    .addOption(
      new Option("--floating-ips <mode>", "program floating IPs: auto follows the CNI config")
        .choices(["auto", "on", "off"])
        .default("auto"),
    )
    .option(
      "--cni-conf <path>",
      "the node's CNI config, for auto",
      "/etc/cni/net.d/10-calico.conflist",
    )
    .option("--resync <seconds>", "full resync and drift repair period", "10")
    .addOption(
      new Option(
        "--routing <mode>",
        "how nodes reach each other's pods and floating IPs: bgp (BIRD announces " +
          "this node's blocks and floating IPs), direct (routes via the hosting " +
          "node's address, nodes on one L2 segment), vxlan (the same through a VXLAN " +
          "overlay, as each pool's vxlanMode says: nodes in any subnets), none " +
          "(floating-IP NAT only)",
      )
        .choices(["none", "direct", "bgp", "vxlan"])
        .default("none"),
    )
    .option(
      "--as-number <n>",
      "bgp: the AS number of a node whose Node names none (on kubernetes the " +
        "annotation projectcalico.org/ASNumber)",
      String(DEFAULT_AS_NUMBER),
    )
    .option(
      "--bird-config <path>",
      "bgp: the BIRD config file the agent writes",
      "/etc/bird/bird.conf",
    )
    .option("--bird-socket <path>", "bgp: BIRD's control socket", "/run/bird/bird.ctl")
    .option(
      "--bird-watchdog <path>",
      "bgp: the unix socket of `buoy bird-watchdog`, which withdraws this node's " +
        "floating IPs from BIRD when the agent dies",
    )
    .option(
      "--status-ttl <seconds>",
      "lease on this node's status records (etcd lease TTL, Kubernetes Lease " +
        "duration): how long another node waits for a dead one before taking " +
        "over its floating IPs; renewed every third of it",
      "5",
    )
    .option(
      "--fence-after <seconds>",
      "withdraw this node's floating-IP announcements when its liveness has " +
        "not been renewed for this long; less than --status-ttl (default: half of it)",
    )
    .option(
      "--claim-gc-grace <seconds>",
      "release a claim whose pod's endpoint or node is gone after this long (0: never)",
      "60",
    )
    .option(
      "--lease-namespace <name>",
      "kubernetes datastore: the namespace of the nodes' status Leases, where only " +
        "the agents may write (BUOY_LEASE_NAMESPACE, else buoy-system)",
    )
    .option(
      "--cni-socket <path>",
      "keep the CNI executable running as a server on this unix socket (the " +
        "conflist's agent_socket), so that a pod's ADD skips its start-up and " +
        "cold connections; its directory must be this user's alone",
    )
    .option(
      "--cni-bin <path>",
      "the CNI executable --cni-socket runs (default: cni/buoy beside this program)",
    )
    .addOption(logLevelOption())
    .action((options: AgentCliOptions, command: Command) =>
      runAgentCommand(session, options, command),
    );
}

/** The composition root: the checked flags, the datastore's AgentSource, the Linux ports. */
async function runAgentCommand(
  session: Session,
  options: AgentCliOptions,
  command: Command,
): Promise<void> {
  const { stdout } = session.request;
  // The node's name reaches datastore keys and object names.
  const nodeProblem = nodeNameProblem(options.node);
  if (nodeProblem !== undefined) {
    throw new UsageError(`--node '${truncateEcho(options.node)}': ${nodeProblem}`);
  }
  const resyncSeconds = positiveNumber("--resync", options.resync);
  const statusTtl = positiveNumber("--status-ttl", options.statusTtl);
  if (!Number.isInteger(statusTtl))
    throw new UsageError(`--status-ttl must be whole seconds, got '${options.statusTtl}'`);
  const fenceAfterSeconds =
    options.fenceAfter === undefined ? statusTtl / 2 : Number(options.fenceAfter);
  const fenceProblem = validateFenceAfter(
    fenceAfterSeconds * 1000,
    statusTtl * 1000,
    (statusTtl * 1000) / 3,
  );
  if (fenceProblem !== undefined) {
    throw new UsageError(
      `--fence-after ${fenceProblem.replace(/got .*$/, `got '${options.fenceAfter}'`)}`,
    );
  }
  const asNumber = Number(options.asNumber);
  if (!/^\d+$/.test(options.asNumber) || !isValidAsNumber(asNumber)) {
    throw new UsageError(
      `--as-number must be an AS number from 1 to 4294967295, got '${truncateEcho(options.asNumber)}'`,
    );
  }
  const gcGrace = Number(options.claimGcGrace);
  if (!(gcGrace >= 0))
    throw new UsageError(
      `--claim-gc-grace must be a number of seconds (0 or more), got '${options.claimGcGrace}'`,
    );
  const leases = parseLeaseNamespace(options.leaseNamespace, session.request.env);
  if (!leases.ok) throw new UsageError(leases.problem);
  const datastore = session.datastoreConfig(command);
  if (
    datastore.type === "kubernetes" &&
    datastore.kubeconfig === undefined &&
    !session.request.env.KUBERNETES_SERVICE_HOST
  ) {
    throw new UsageError(
      "DATASTORE_TYPE=kubernetes needs KUBECONFIG, or to run in a pod (KUBERNETES_SERVICE_HOST)",
    );
  }
  const store = datastore.type === "etcdv3" ? session.openStore(command) : undefined;
  const [
    { runAgent },
    { EtcdAgentSource },
    { LinuxNft },
    { LinuxRoutes, LinuxConntrack },
    log,
    { LinuxBird },
    kube,
    { LinuxKernelMonitor },
    { LinuxTunnels },
  ] = await Promise.all([
    import("../../agent/agent.js"),
    import("../../etcd/etcd-agent-source.js"),
    import("../../dataplane/shell/nft.js"),
    import("../../dataplane/shell/linux-routes.js"),
    import("../../log/logger.js"),
    import("../../dataplane/shell/bird.js"),
    // Only what the chosen datastore needs: the Kubernetes client alone is
    // ~34 MiB of an idle etcd agent's memory when loaded.
    store ? undefined : import("../../kube/kube-agent-source.js"),
    import("../../dataplane/shell/kernel-monitor.js"),
    import("../../dataplane/shell/linux-vxlan.js"),
  ]);
  if (options.cniSocket !== undefined && !options.cniSocket.startsWith("/")) {
    throw new UsageError(`--cni-socket must be an absolute path, got '${options.cniSocket}'`);
  }
  const controller = new AbortController();
  session.request.onShutdown?.(() => controller.abort());
  const logger = log.createStreamLogger(
    (line) => stdout.write(line),
    log.parseLogLevel(options.logLevel),
  );
  await runAgent(
    {
      openSource: ({ floatingIpsEnabled, maxFloatingIps }) =>
        store
          ? new EtcdAgentSource({
              kv: store.kv,
              node: options.node,
              routing: options.routing,
              logger,
              statusTtlSeconds: statusTtl,
              claimGcGraceMs: gcGrace * 1000,
            })
          : new kube!.KubeAgentSource({
              kubeConfig: kube!.loadKubeConfig(
                datastore.type === "kubernetes" ? datastore.kubeconfig : undefined,
              ),
              node: options.node,
              namespace: leases.namespace,
              logger,
              leaseSeconds: statusTtl,
              claimGcGraceMs: gcGrace * 1000,
              floatingIpsEnabled,
              maxFloatingIps,
              routing: options.routing,
            }),
      node: options.node,
      ports: {
        nft: new LinuxNft(),
        routes: new LinuxRoutes(),
        conntrack: new LinuxConntrack(),
        // Also outside vxlan mode: a node switched away removes its devices.
        tunnels: new LinuxTunnels(),
      },
      monitor: new LinuxKernelMonitor(),
      logger,
      floatingIps: options.floatingIps,
      cniConfPath: options.cniConf,
      listen: options.listen,
      resyncMs: resyncSeconds * 1000,
      routing: options.routing,
      defaultAsNumber: asNumber,
      ...(options.routing === "bgp"
        ? { bird: new LinuxBird(options.birdConfig, options.birdSocket) }
        : {}),
      statusTtlSeconds: statusTtl,
      fenceAfterMs: fenceAfterSeconds * 1000,
      ...(options.routing === "bgp" && options.birdWatchdog
        ? { birdWatchdogPath: options.birdWatchdog }
        : {}),
      ...(options.cniSocket
        ? {
            cniServer: {
              binary: options.cniBin ?? defaultCniBinary(),
              socket: options.cniSocket,
              logLevel: options.logLevel,
            },
          }
        : {}),
    },
    controller.signal,
  );
}

/** dist/cni/buoy beside dist/buoy; /opt/buoy/cni/buoy in the image. */
function defaultCniBinary(): string {
  const program = process.argv[1] ?? "";
  return `${program.slice(0, program.lastIndexOf("/") + 1)}cni/buoy`;
}

function positiveNumber(flag: string, text: string): number {
  const value = Number(text);
  if (!(value > 0)) throw new UsageError(`${flag} must be a positive number, got '${text}'`);
  return value;
}
