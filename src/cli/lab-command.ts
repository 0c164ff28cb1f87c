// `buoy lab up|status|demo|down`: the commands and their help. The lab itself
// (src/lab/) is imported only when a lab command runs, so other commands do
// not load it.
import { Command, Option } from "commander";
import { CliError, UsageError } from "./cli-error.js";
import type { CliRequest } from "./run-cli.js";

interface UpOptions {
  nodes: string;
  routing: "bgp" | "direct";
  ipv6?: boolean;
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
        import("../lab/lab.js"),
        import("../lab/lab-demo.js"),
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
        "IPs (holder, programmed, which node the router sends them to, each node's\n" +
        "route) and processes",
    )
    .option("--prefix <prefix>", "the lab (default: the only one)")
    .addHelpText(
      "after",
      "\nExits 1 when etcd is unhealthy, an agent is not ready or a process has died;\n" +
        "the end of the broken process's log is printed.\n",
    )
    .action(async (options: { prefix?: string }) => {
      const [{ openLab }, { readLabStatus }, { renderLabStatus, findLabProblems }] =
        await Promise.all([
          import("../lab/lab.js"),
          import("../lab/lab-status.js"),
          import("../lab/render-lab-status.js"),
        ]);
      const prefix = await choosePrefix(options.prefix);
      const status = await readLabStatus(await openLab(prefix));
      write(renderLabStatus(status));
      const problems = findLabProblems(status);
      if (problems.length > 0) throw new CliError(`lab ${prefix}: ${problems.join("; ")}`);
    });

  lab
    .command("demo")
    .summary("Show a floating IP in a fresh 2-node lab: who reaches it, a live move")
    .description(
      "Build a 2-node lab, show who reaches a pod's floating IP over ICMP, TCP, UDP\n" +
        "and IP protocol 253 (and the source address the pod sees), move the floating\n" +
        "IP to a pod on the other node under a 100 Hz ping, then tear the lab down",
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
      const { runLabDemo } = await import("../lab/lab-demo.js");
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
      const { labDown, listLabs } = await import("../lab/lab.js");
      const prefixes = options.all ? await listLabs() : [await choosePrefix(options.prefix)];
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

/** The given prefix, or the only lab's; an error listing them when there are several. */
async function choosePrefix(prefix: string | undefined): Promise<string> {
  const { listLabs } = await import("../lab/lab.js");
  if (prefix !== undefined) return prefix;
  const labs = await listLabs();
  if (labs.length === 1) return labs[0] as string;
  if (labs.length === 0) throw new CliError("no labs on this machine ('buoy lab up' makes one)");
  throw new UsageError(`${labs.length} labs (${labs.join(", ")}): choose one with --prefix`);
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
  buoy lab status
  buoy lab down --all`;

const UP_HELP = `
Prints one line per step with the time it took; waits for etcd's health, each
agent's /readyz and, with --routing bgp, the router's BGP sessions. A failed
or interrupted (Ctrl-C) up removes what it built.`;
