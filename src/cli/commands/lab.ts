// `buoy lab up|status|pod|probe|demo|down`: the commands and their help (the
// pod subcommands in lab-pod.ts). The lab itself (src/lab/) is imported only
// when a lab command runs, so other commands do not load it.
import { Command, Option } from "commander";
import { canonicalAddress } from "../../net/address.js";
import { CliError, UsageError } from "../cli-error.js";
import type { CliRequest } from "../cli-request.js";
import { chooseLabPrefix } from "./choose-lab-prefix.js";
import { addLabPodCommand } from "./lab-pod.js";

interface UpOptions {
  nodes: string;
  routing: "bgp" | "direct";
  ipv6?: boolean;
  prefix?: string;
}

interface ProbeOptions {
  protocol: "icmp" | "tcp" | "udp" | "raw253";
  prefix?: string;
}

interface DemoOptions {
  routing: "bgp" | "direct";
  ipv6?: boolean;
  prefix?: string;
  keep?: boolean;
}

/** Adds `lab` and its subcommands to the program. */
export function addLabCommand(program: Command, request: CliRequest): void {
  const write = (text: string) => request.stdout.write(text);
  const lab = program
    .command("lab")
    .summary("A virtual cluster on this machine, in network namespaces (the demo)")
    .description(
      "A virtual cluster on this machine, in network namespaces: etcd, N nodes each\n" +
        "running buoy agent (and BIRD), an external router, pods made by running the\n" +
        "CNI plugin as a container runtime does. Needs root and `npm run build`.",
    )
    .addHelpText("after", LAB_HELP);

  lab
    .command("up")
    .description("Build a lab and leave it running")
    .option("--nodes <n>", "number of nodes (1-50)", "2")
    .addOption(
      new Option("--routing <mode>", "how pods and floating IPs are routed between nodes")
        .choices(["bgp", "direct"])
        .default("bgp"),
    )
    .option("--ipv6", "dual-stack pods: IPv6 pools and BGP sessions as well")
    .option("--prefix <prefix>", "names every namespace, interface and file (default: lab + 4 hex)")
    .addHelpText("after", UP_HELP)
    .action(async (options: UpOptions) => {
      const nodes = Number(options.nodes);
      if (!Number.isInteger(nodes)) {
        throw new UsageError(`--nodes must be a whole number, got '${options.nodes}'`);
      }
      const [{ labUp }, { renderStep }] = await Promise.all([
        import("../../lab/lab-up.js"),
        import("../../lab/lab-demo.js"),
      ]);
      const controller = new AbortController();
      request.onShutdown?.(() => controller.abort());
      const lab = await labUp({
        nodes,
        routing: options.routing,
        ipv6: options.ipv6 === true,
        ...(options.prefix !== undefined ? { prefix: options.prefix } : {}),
        signal: controller.signal,
        onStep: (step) => write(renderStep(step)),
      });
      write(
        `\nlab ${lab.prefix} is up: ${lab.topology.nodes.length} node(s), routing ${lab.topology.routing}\n` +
          `  buoy lab status --prefix ${lab.prefix}\n` +
          `  ip netns exec ${lab.topology.fabric.netns} node ${lab.paths.buoy} --etcd-endpoints ${lab.topology.etcd.endpoint} get nodes\n` +
          `  buoy lab down --prefix ${lab.prefix}\n`,
      );
    });

  lab
    .command("status")
    .summary("Show a lab's nodes, BGP sessions, pods, floating IPs and processes")
    .description(
      "Show a lab's nodes (agent readiness, BGP sessions), the router, pods, floating\n" +
        "IPs (holder pod and node, programmed, announced, and the node(s) the router's\n" +
        "routes lead to with --routing bgp, or the other nodes' with direct) and\n" +
        "processes",
    )
    .option("--prefix <prefix>", "the lab (default: the only one)")
    .addHelpText(
      "after",
      "\nExits 1 when etcd is unhealthy, an agent is not ready, a BGP session is not\n" +
        "Established, a process has died (the end of its log is printed), or a floating\n" +
        "IP is routed to more than one node.\n",
    )
    .action(async (options: { prefix?: string }) => {
      const [{ openLab }, { readLabStatus }, { renderLabStatus, findLabProblems }] =
        await Promise.all([
          import("../../lab/open-lab.js"),
          import("../../lab/lab-status.js"),
          import("../../lab/render-lab-status.js"),
        ]);
      const prefix = await chooseLabPrefix(options.prefix);
      const status = await readLabStatus(await openLab(prefix));
      write(renderLabStatus(status));
      const problems = findLabProblems(status);
      if (problems.length > 0) throw new CliError(`lab ${prefix}: ${problems.join("; ")}`);
    });

  addLabPodCommand(lab, request);

  lab
    .command("probe")
    .summary("Send one request from a lab namespace to an address; show who answered")
    .description(
      "Send one request from a place in the lab to an address and show who answered:\n" +
        "the pod whose responder answered, the source address of the answer, and the\n" +
        "source (and destination) address that pod saw. Gives up after 2 s; no answer\n" +
        "exits 1.",
    )
    .argument("<from>", "where to send from: ext (the external router), node-N, or a pod's name")
    .argument("<to>", "an IP address, or a pod's name (its first address)")
    .addOption(
      new Option(
        "--protocol <protocol>",
        "what to send: ICMP echo, TCP or UDP port 7000, IP protocol 253",
      )
        .choices(["icmp", "tcp", "udp", "raw253"])
        .default("tcp"),
    )
    .option("--prefix <prefix>", "the lab (default: the only one)")
    .addHelpText("after", PROBE_HELP)
    .action(async (from: string, to: string, options: ProbeOptions) => {
      const [{ openLab }, { renderProbeResult }] = await Promise.all([
        import("../../lab/open-lab.js"),
        import("../../lab/probe-result.js"),
      ]);
      const opened = await openLab(await chooseLabPrefix(options.prefix));
      let address = canonicalAddress(to) !== undefined ? to : undefined;
      if (address === undefined) {
        const target = opened.pods.find((candidate) => candidate.name === to);
        if (!target) {
          const pods = opened.pods.map((candidate) => candidate.name);
          throw new CliError(
            `'${to}' is neither an IP address nor a pod of lab ${opened.prefix}` +
              (pods.length > 0 ? ` (pods: ${pods.join(", ")})` : " (it has no pods)"),
          );
        }
        address = target.ips[0];
        if (address === undefined) throw new CliError(`pod ${to} has no address`);
      }
      const result = await opened.probe(from, address, options.protocol);
      const text = renderProbeResult(result, from);
      if (!result.ok) throw new CliError(text.trimEnd());
      write(text);
    });

  lab
    .command("demo")
    .summary("Show a floating IP in a fresh 2-node lab: who reaches it, a move, a failover")
    .description(
      "Build a 2-node lab, show who reaches a pod's floating IP over ICMP, TCP, UDP\n" +
        "and IP protocol 253 (and the source address the pod sees), move the floating\n" +
        "IP to a pod on the other node under a 100 Hz ping, turn on its egress; then a\n" +
        "FloatingIP selecting two Ready pods, its holder killed under a 100 Hz ping and\n" +
        "the standby answering; then tear the lab down",
    )
    .addOption(
      new Option("--routing <mode>", "how pods and floating IPs are routed between nodes")
        .choices(["bgp", "direct"])
        .default("bgp"),
    )
    .option("--ipv6", "dual-stack: an IPv6 floating IP as well, with its own matrix")
    .option("--prefix <prefix>", "the lab's prefix (default: lab + 4 hex)")
    .option("--keep", "leave the lab running at the end")
    .action(async (options: DemoOptions) => {
      const { runLabDemo } = await import("../../lab/lab-demo.js");
      const controller = new AbortController();
      request.onShutdown?.(() => controller.abort());
      await runLabDemo({
        routing: options.routing,
        ipv6: options.ipv6 === true,
        ...(options.prefix !== undefined ? { prefix: options.prefix } : {}),
        keep: options.keep === true,
        signal: controller.signal,
        write,
      });
    });

  lab
    .command("down")
    .description("Remove a lab: its processes, namespaces and state")
    .option("--prefix <prefix>", "the lab (default: the only one)")
    .option("--all", "every lab on this machine")
    .addHelpText(
      "after",
      "\nWorks after an `up` that crashed half-way too: it stops the processes of the\n" +
        "lab's pid files and those inside its namespaces (by PID), deletes every\n" +
        "namespace named <prefix>-*, then /run/buoy-lab/<prefix>.\n",
    )
    .action(async (options: { prefix?: string; all?: boolean }) => {
      if (options.all && options.prefix !== undefined) {
        throw new UsageError("give either --prefix or --all, not both");
      }
      const [{ labDown }, { listLabs }] = await Promise.all([
        import("../../lab/lab-down.js"),
        import("../../lab/open-lab.js"),
      ]);
      const prefixes = options.all ? await listLabs() : [await chooseLabPrefix(options.prefix)];
      if (prefixes.length === 0) write("no labs\n");
      for (const prefix of prefixes) {
        const report = await labDown(prefix);
        if (report.namespaces.length === 0 && !report.stateDirExisted && report.processes === 0) {
          write(`nothing of lab ${prefix} found\n`);
          continue;
        }
        write(
          `lab ${prefix} removed: ${report.namespaces.length} namespaces, ` +
            `${report.processes} processes, ${report.stateDirExisted ? report.stateDir : "no state directory"}\n`,
        );
      }
    });
}

const LAB_HELP = `
Topology (docs/lab.md):
  <prefix>-fab   bridge, 192.168.200.1 fd00:200::1, etcd (http://192.168.200.1:2379)
  <prefix>-nI    node-I: 192.168.200.(10+I) fd00:200::(10+I), buoy agent, BIRD
  <prefix>-ext   external router (ToR): 192.168.200.254 fd00:200::fe, BIRD AS 64513
  <prefix>-I-POD pods behind node-I
Pools: pods 10.244.0.0/16 (fd00:244::/64), floating 203.0.113.0/24
(2001:db8:f100::/120). Nothing is added to the namespace the command runs in.

Examples:
  buoy lab demo
  buoy lab up --nodes 3 --routing direct --prefix mylab
  buoy lab pod add node-1 web --floating-ip 203.0.113.10
  buoy lab pod add 2 client
  buoy lab probe ext 203.0.113.10 --protocol udp
  buoy lab probe client web
  buoy lab status
  buoy lab pod delete web
  buoy lab down --all`;

const PROBE_HELP = `
Each pod's responder answers with its name and the addresses it saw; ICMP
echo is answered by the kernel and the responder notes the source.

Examples:
  buoy lab probe ext 203.0.113.10                    who answers the floating IP from outside
  buoy lab probe client 203.0.113.10 --protocol icmp
  buoy lab probe node-2 web --protocol raw253        a pod by name: its first address`;

const UP_HELP = `
Prints one line per step with the time it took; waits for etcd's health, each
agent's /readyz and, with --routing bgp, the router's BGP sessions. A failed
or interrupted (Ctrl-C) up removes what it built.`;
