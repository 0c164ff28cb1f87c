// The `buoy` command line, calicoctl-style: apply, get, delete, version.
// Takes { argv, env, stdout, stderr, openKv } and resolves to the exit code;
// nothing here touches process globals. This is the CLI's one error boundary:
// refusals and failures print `error: ...` and exit 1, usage errors exit 2.
import { Command, CommanderError, Option } from "commander";
import packageJson from "../../package.json" with { type: "json" };
import { CliError, UsageError, renderError } from "./cli-error.js";
import type { CliRequest } from "./cli-request.js";
import { commitPlan, readDatastoreState, type DatastoreState } from "../etcd/etcd-state.js";
import { addInstallCommand } from "./commands/install-cni.js";
import { addLabCommand } from "./commands/lab.js";
import { renderSummary, resourceName, type ResourceKind } from "./manifest.js";
import { planApply } from "../etcd/plan-apply.js";
import { planDelete, type DeleteTarget } from "../etcd/plan-delete.js";
import { renderGet, selectRecords, type OutputFormat } from "./render-get.js";
import {
  describeResourceTypes,
  parseResourceType,
  resourceTypeNames,
  type ResourceType,
} from "./resource-type.js";
import {
  findEndpoint,
  planFloatingIpEgress,
  planFloatingIpMove,
  planFloatingIpSet,
  type ChangePlan,
  type LiveState,
} from "../etcd/live-change.js";
import { canonicalAddress } from "../net/address.js";
import { Session } from "./session.js";

export const VERSION: string = packageJson.version;

export async function runCli(request: CliRequest): Promise<number> {
  const session = new Session(request);
  try {
    await createProgram(session).parseAsync([...request.argv], { from: "user" });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return exitCodeOf(error);
    if (error instanceof UsageError) {
      request.stderr.write(`error: ${error.message}\n(add --help for usage)\n`);
      return 2;
    }
    request.stderr.write(renderError(session.explain(error)));
    return 1;
  }
}

/** Commander reports help and version as "errors" too; only real usage errors exit 2. */
function exitCodeOf(error: CommanderError): number {
  if (error.code === "commander.helpDisplayed" || error.code === "commander.version") return 0;
  if (error.code === "commander.help" && error.exitCode === 0) return 0;
  return 2;
}

/** Plans against a fresh read and commits in one transaction; a lost race reads again. */
async function changeFloatingIps(
  session: Session,
  command: Command,
  pod: string,
  plan: (state: LiveState) => ChangePlan,
): Promise<void> {
  const store = session.openStore(command);
  for (let attempt = 0; attempt < 5; attempt++) {
    const change = plan(await store.readLiveState());
    if (await store.kv.txn(change.compares, change.ops)) {
      const held = change.ipNATs.map((nat) => `${nat.externalIP} -> ${nat.internalIP}`);
      session.write(`pod ${pod} holds ${held.length > 0 ? held.join(", ") : "no floating IPs"}\n`);
      if (change.egress !== undefined) {
        session.write(
          change.egress
            ? `its own connections leave from its first floating IP of each family\n`
            : `its own connections leave from its own address\n`,
        );
      }
      return;
    }
  }
  throw new CliError("the datastore kept changing under the floating-IP change; try again");
}

function heldBy(state: LiveState, pod: string): string[] {
  return findEndpoint(state, pod).value.ipNATs.map((nat) => nat.externalIP);
}

interface AgentCliOptions {
  node: string;
  listen: string;
  floatingIps: "auto" | "on" | "off";
  cniConf: string;
  resync: string;
  logLevel: string;
  routing: "none" | "direct" | "bgp";
  birdConfig: string;
  birdSocket: string;
  statusTtl: string;
  claimGcGrace: string;
  leaseNamespace?: string;
}

/** `buoy get` on the kubernetes datastore; the client library is loaded only here. */
async function readKubernetesState(
  session: Session,
  kubeconfig: string | undefined,
): Promise<DatastoreState> {
  const { env } = session.request;
  if (kubeconfig === undefined && !env.KUBERNETES_SERVICE_HOST) {
    throw new UsageError(
      "DATASTORE_TYPE=kubernetes needs KUBECONFIG, or to run in a pod (KUBERNETES_SERVICE_HOST)",
    );
  }
  const [{ loadKubeConfig }, { readKubeState }] = await Promise.all([
    import("../kube/kube-agent-source.js"),
    import("../kube/kube-state.js"),
  ]);
  return readKubeState(loadKubeConfig(kubeconfig), env.POD_NAMESPACE ?? "kube-system");
}

function createProgram(session: Session): Command {
  const { stdout, stderr, helpWidth } = session.request;
  const program = new Command("buoy")
    .exitOverride()
    .configureOutput({
      writeOut: (text) => stdout.write(text),
      writeErr: (text) => stderr.write(text),
      getOutHelpWidth: () => helpWidth ?? 80,
      getErrHelpWidth: () => helpWidth ?? 80,
      getOutHasColors: () => false,
      getErrHasColors: () => false,
    })
    .showHelpAfterError("(add --help for usage)")
    .description(
      "Manage buoy, floating IPs for Kubernetes pods: IP pools, nodes, BGP peers,\n" +
        "and the workload endpoints and floating-IP claims the CNI plugin records.",
    )
    .option(
      "--etcd-endpoints <urls>",
      "comma-separated etcd client URLs (overrides ETCD_ENDPOINTS)",
    )
    .addHelpText("after", ROOT_HELP);

  program
    .command("apply")
    .description("Create or update IP pools, nodes and BGP peers from a manifest")
    .requiredOption(
      "-f, --filename <file>",
      "the manifest: YAML (one or more documents) or JSON; '-' reads stdin",
    )
    .addHelpText("after", APPLY_HELP)
    .action(async (options: { filename: string }, command: Command) => {
      const { label, resources } = await session.readManifests(options.filename);
      const store = session.openStore(command);
      await commitPlan(store, (state) => planApply(state, resources), `apply ${label}`);
      session.write(
        renderSummary(
          "applied",
          resources.map((resource) => resource.kind),
        ),
      );
    });

  program
    .command("get")
    .description("Show IP pools, workload endpoints, floating IPs, nodes or BGP peers")
    .argument("<type>", "what to show (see resource types below)")
    .argument("[name]", "show only this one; an unknown name is an error")
    .addOption(
      new Option("-o, --output <format>", "output format (default: a table)").choices([
        "wide",
        "json",
        "yaml",
      ]),
    )
    .option("--node <node>", "only workload endpoints or floating IPs on this node")
    .addHelpText("after", GET_HELP)
    .action(
      async (
        typeText: string,
        name: string | undefined,
        options: { output?: "wide" | "json" | "yaml"; node?: string },
        command: Command,
      ) => {
        const type = parseResourceType(typeText);
        if (!type) throw unknownType(typeText);
        if (options.node !== undefined && type !== "endpoints" && type !== "floatingips") {
          throw new UsageError(`--node applies to workloadendpoints and floatingips, not ${type}`);
        }
        const datastore = session.datastoreConfig(command);
        const state =
          datastore.type === "kubernetes"
            ? await readKubernetesState(session, datastore.kubeconfig)
            : await readDatastoreState(session.openStore(command));
        const records = selectRecords(type, state, { name, node: options.node });
        const format: OutputFormat = options.output ?? "table";
        session.write(renderGet(records, format, name === undefined));
      },
    );

  program
    .command("delete")
    .description("Delete IP pools, nodes or BGP peers, by name or from a manifest")
    .argument("[type]", "ippool, node or bgppeer")
    .argument("[name]", "the name of the resource")
    .option("-f, --filename <file>", "delete the resources named in this manifest; '-' reads stdin")
    .addHelpText("after", DELETE_HELP)
    .action(
      async (
        typeText: string | undefined,
        name: string | undefined,
        options: { filename?: string },
        command: Command,
      ) => {
        let targets: DeleteTarget[];
        let action: string;
        if (options.filename !== undefined) {
          if (typeText !== undefined) {
            throw new UsageError("give either -f FILE or a type and a name, not both");
          }
          const { label, resources } = await session.readManifests(options.filename);
          targets = resources.map((resource) => ({
            kind: resource.kind,
            name: resourceName(resource),
          }));
          action = `delete the resources in ${label}`;
        } else {
          if (typeText === undefined || name === undefined) {
            throw new UsageError("delete needs a type and a name (delete ippool NAME) or -f FILE");
          }
          const type = parseResourceType(typeText);
          if (!type) throw unknownType(typeText);
          const kind = DELETABLE_KINDS[type];
          if (!kind) {
            throw new UsageError(
              `${type} are recorded by buoy itself and cannot be deleted; delete ippool, node or bgppeer`,
            );
          }
          targets = [{ kind, name }];
          action = `delete ${kind} ${name}`;
        }
        const store = session.openStore(command);
        await commitPlan(store, (state) => planDelete(state, targets), action);
        session.write(
          renderSummary(
            "deleted",
            targets.map((target) => target.kind),
          ),
        );
      },
    );

  const floatingip = program
    .command("floatingip")
    .alias("fip")
    .description(
      "Change a running pod's floating IPs (etcd datastore). Checked like the CNI\n" +
        "plugin checks the annotation at ADD; the claims and the endpoint change in\n" +
        "one transaction and the node agent reprograms within a second.",
    )
    .addHelpText(
      "after",
      "\nExamples:\n" +
        "  buoy floatingip set shop/db-0 10.96.0.7 fd00:96::7\n" +
        "  buoy floatingip add shop/db-0 10.96.0.8\n" +
        "  buoy floatingip remove shop/db-0 10.96.0.7\n" +
        "  buoy floatingip move 10.96.0.7 --to shop/db-1\n" +
        "  buoy floatingip egress shop/db-0 on\n",
    );
  floatingip
    .command("set <pod> [ips...]")
    .description("make exactly these the pod's floating IPs (none: remove all)")
    .action(async (pod: string, ips: string[], _options: object, command: Command) =>
      changeFloatingIps(session, command, pod, (state) => planFloatingIpSet(state, pod, ips)),
    );
  floatingip
    .command("add <pod> <ips...>")
    .description("give the pod these floating IPs as well")
    .action(async (pod: string, ips: string[], _options: object, command: Command) =>
      changeFloatingIps(session, command, pod, (state) =>
        planFloatingIpSet(state, pod, [...heldBy(state, pod), ...ips]),
      ),
    );
  floatingip
    .command("remove <pod> <ips...>")
    .description("take these floating IPs from the pod")
    .action(async (pod: string, ips: string[], _options: object, command: Command) =>
      changeFloatingIps(session, command, pod, (state) => {
        const gone = new Set(ips.map((ip) => canonicalAddress(ip) ?? ip));
        return planFloatingIpSet(
          state,
          pod,
          heldBy(state, pod).filter((ip) => !gone.has(ip)),
        );
      }),
    );
  floatingip
    .command("egress <pod> <on|off>")
    .description(
      "opt the pod in to egress from its floating IPs, or out (the annotation\n" +
        "buoy.dev/floating-ip-egress at ADD): its own new connections leave from its\n" +
        "first floating IP of each family",
    )
    .action(async (pod: string, state: string, _options: object, command: Command) => {
      if (state !== "on" && state !== "off") {
        throw new UsageError(`egress is on or off, got '${state}'`);
      }
      await changeFloatingIps(session, command, pod, (live) =>
        planFloatingIpEgress(live, pod, state === "on"),
      );
    });
  floatingip
    .command("move <ip>")
    .description("move a held floating IP to another pod in one step")
    .requiredOption("--to <pod>", "the pod to move it to, namespace/name")
    .action(async (ip: string, options: { to: string }, command: Command) =>
      changeFloatingIps(session, command, options.to, (state) =>
        planFloatingIpMove(state, ip, options.to),
      ),
    );

  program
    .command("agent")
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
          "node's address, nodes on one L2 segment), none (floating-IP NAT only)",
      )
        .choices(["none", "direct", "bgp"])
        .default("none"),
    )
    .option(
      "--bird-config <path>",
      "bgp: the BIRD config file the agent writes",
      "/etc/bird/bird.conf",
    )
    .option("--bird-socket <path>", "bgp: BIRD's control socket", "/run/bird/bird.ctl")
    .option(
      "--status-ttl <seconds>",
      "lease on this node's status records: how long another node waits for " +
        "a dead one before taking over its floating IPs",
      "15",
    )
    .option(
      "--claim-gc-grace <seconds>",
      "release a claim whose pod's endpoint or node is gone after this long (0: never)",
      "60",
    )
    .option(
      "--lease-namespace <name>",
      "kubernetes datastore: the namespace of the nodes' status Leases (POD_NAMESPACE, else kube-system)",
    )
    .option("--log-level <level>", "debug, info, warn or error", "info")
    .action(async (options: AgentCliOptions, command: Command) => {
      const resyncSeconds = positiveNumber("--resync", options.resync);
      const statusTtl = positiveNumber("--status-ttl", options.statusTtl);
      if (!Number.isInteger(statusTtl))
        throw new UsageError(`--status-ttl must be whole seconds, got '${options.statusTtl}'`);
      const gcGrace = Number(options.claimGcGrace);
      if (!(gcGrace >= 0))
        throw new UsageError(
          `--claim-gc-grace must be a number of seconds (0 or more), got '${options.claimGcGrace}'`,
        );
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
      ] = await Promise.all([
        import("../agent/agent.js"),
        import("../etcd/etcd-agent-source.js"),
        import("../dataplane/shell/nft.js"),
        import("../dataplane/shell/linux-routes.js"),
        import("../log/logger.js"),
        import("../dataplane/shell/bird.js"),
        import("../kube/kube-agent-source.js"),
      ]);
      const controller = new AbortController();
      session.request.onShutdown?.(() => controller.abort());
      const logger = log.createStreamLogger(
        (line) => stdout.write(line),
        log.parseLogLevel(options.logLevel),
      );
      await runAgent(
        {
          openSource: ({ floatingIpsEnabled }) =>
            store
              ? new EtcdAgentSource({
                  kv: store.kv,
                  node: options.node,
                  routing: options.routing,
                  logger,
                  statusTtlSeconds: statusTtl,
                  claimGcGraceMs: gcGrace * 1000,
                })
              : new kube.KubeAgentSource({
                  kubeConfig: kube.loadKubeConfig(
                    datastore.type === "kubernetes" ? datastore.kubeconfig : undefined,
                  ),
                  node: options.node,
                  namespace:
                    options.leaseNamespace ?? session.request.env.POD_NAMESPACE ?? "kube-system",
                  logger,
                  leaseSeconds: statusTtl,
                  claimGcGraceMs: gcGrace * 1000,
                  floatingIpsEnabled,
                  routing: options.routing,
                }),
          node: options.node,
          ports: {
            nft: new LinuxNft(),
            routes: new LinuxRoutes(),
            conntrack: new LinuxConntrack(),
          },
          logger,
          floatingIps: options.floatingIps,
          cniConfPath: options.cniConf,
          listen: options.listen,
          resyncMs: resyncSeconds * 1000,
          routing: options.routing,
          ...(options.routing === "bgp"
            ? { bird: new LinuxBird(options.birdConfig, options.birdSocket) }
            : {}),
          statusTtlSeconds: statusTtl,
        },
        controller.signal,
      );
    });

  program
    .command("remove-dataplane")
    .description(
      "Remove from this node what buoy's agent programmed: the nftables tables\n" +
        "ip buoy and ip6 buoy (floating-IP NAT, natOutgoing), the routes with\n" +
        "protocol 202, and the conntrack entries of the floating IPs those tables\n" +
        "translated. For uninstalling, after the agent has stopped (a running\n" +
        "agent puts it all back): the node's pods lose their floating IPs.\n" +
        "Touches no datastore; manifests/uninstall.yaml runs it on every node.",
    )
    .action(async () => {
      const [{ removeDataplane, renderDataplaneRemoved }, { LinuxNft }, routes] = await Promise.all(
        [
          import("../dataplane/shell/remove-dataplane.js"),
          import("../dataplane/shell/nft.js"),
          import("../dataplane/shell/linux-routes.js"),
        ],
      );
      const removed = await removeDataplane({
        nft: new LinuxNft(),
        routes: new routes.LinuxRoutes(),
        conntrack: new routes.LinuxConntrack(),
      });
      stdout.write(renderDataplaneRemoved(removed));
    });

  addLabCommand(program, session.request);
  addInstallCommand(program, session.request, VERSION);

  program
    .command("version")
    .description("Print the version of this buoy client")
    .action(() => session.write(`Client Version:    v${VERSION}\n`));

  return program;
}

function positiveNumber(flag: string, text: string): number {
  const value = Number(text);
  if (!(value > 0)) throw new UsageError(`${flag} must be a positive number, got '${text}'`);
  return value;
}

/** The resource types `delete TYPE NAME` takes; the others are buoy's own records. */
const DELETABLE_KINDS: Partial<Record<ResourceType, ResourceKind>> = {
  ippools: "IPPool",
  nodes: "Node",
  bgppeers: "BGPPeer",
};

function unknownType(text: string): UsageError {
  return new UsageError(
    `unknown resource type '${text}' (one of ${resourceTypeNames().join(", ")})`,
  );
}

const ROOT_HELP = `
Environment:
  DATASTORE_TYPE   etcdv3 (the default; kubernetes is not supported yet)
  ETCD_ENDPOINTS   comma-separated etcd URLs (default http://127.0.0.1:2379)

Examples:
  buoy apply -f pools.yaml
  buoy get ippools -o wide
  buoy get floatingips --node node-1
  buoy get bgppeers
  buoy delete ippool floating-v4

Run 'buoy <command> --help' for the details of a command.`;

const APPLY_HELP = `
Resources:
  IPPool   apiVersion projectcalico.org/v3 (calicoctl manifests work unchanged)
           or buoy.dev/v1; spec fields cidr, blockSize, disabled, nodeSelector,
           natOutgoing, disableBGPExport (other Calico fields are ignored)
  Node     apiVersion buoy.dev/v1; spec.addresses (IP addresses), spec.asNumber
  BGPPeer  apiVersion projectcalico.org/v3 or buoy.dev/v1; spec.peerIP (an IP
           address, no port), spec.asNumber, spec.node (only this node peers
           with it; left out: every node does). nodeSelector, peerSelector and
           password are refused; other Calico fields are ignored
  List, IPPoolList, NodeList, BGPPeerList with items, as 'buoy get -o yaml'
  prints them

AS numbers are integers from 1 to 4294967295, or dotted like '1.10'.

Everything in the file is applied in one transaction, or nothing is. A pool
that overlaps another pool is refused, and so is a change of cidr or
blockSize while addresses are allocated from the pool.

Examples:
  buoy apply -f pools.yaml
  buoy get ippools -o yaml > pools.yaml && buoy apply -f pools.yaml
  cat <<EOF | buoy apply -f -
  apiVersion: projectcalico.org/v3
  kind: IPPool
  metadata:
    name: floating-v4
  spec:
    cidr: 10.0.0.0/24
    disabled: true
  EOF`;

const GET_HELP = `
Resource types (and aliases):
${describeResourceTypes()}

Columns: ippools NAME, CIDR, SELECTOR (wide: BLOCKSIZE, DISABLED, NATOUTGOING,
DISABLEBGPEXPORT); workloadendpoints WORKLOAD, NODE, NETWORKS, INTERFACE
(wide: FLOATING IPS, CONTAINER); floatingips FLOATING IP, POD, NODE,
INTERNAL IP, PROGRAMMED, ANNOUNCED (bgp, direct, or - when the node does not
announce it) (wide: CONTAINER, CLAIMED, PROGRAMMED SINCE); nodes NAME,
ADDRESSES (wide: ASN); bgppeers NAME, PEERIP, ASN, NODE ((all): every node).
A workload endpoint is named by its Calico-style name, namespace/pod, or pod.

Examples:
  buoy get ippools
  buoy get ippool floating-v4 -o yaml
  buoy get workloadendpoints -o wide --node node-1
  buoy get floatingips
  buoy get floatingip 10.0.0.7 -o json
  buoy get bgppeers -o yaml`;

const DELETE_HELP = `
A pool is deleted only when no address is allocated in its blocks and no
floating IP inside it is claimed; its empty blocks are deleted with it. A node
is deleted only when no workload endpoint is left on it. A BGP peer is
deleted as it is: the nodes close their sessions to it.

Examples:
  buoy delete ippool floating-v4
  buoy delete bgppeer tor
  buoy delete -f pools.yaml`;
