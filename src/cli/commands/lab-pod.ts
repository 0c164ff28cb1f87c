// `buoy lab pod add|delete`: a pod added or deleted in a running lab the way
// a container runtime does (CNI ADD and DEL of the node's conflist).
import type { Command } from "commander";
import { canonicalAddress } from "../../net/address.js";
import { UsageError } from "../cli-error.js";
import type { CliRequest } from "../cli-request.js";
import { chooseLabPrefix } from "./choose-lab-prefix.js";

interface PodAddOptions {
  floatingIp?: string[];
  label?: string[];
  egress?: boolean;
  namespace: string;
  prefix?: string;
}

/** Adds `pod` and its subcommands to the `lab` command. */
export function addLabPodCommand(lab: Command, request: CliRequest): void {
  const write = (text: string) => request.stdout.write(text);
  const pod = lab
    .command("pod")
    .summary("Add or delete a pod (CNI ADD and DEL, as a container runtime does)")
    .description(
      "Add or delete a pod in a running lab the way a container runtime does: a\n" +
        "network namespace, the node's conflist (the CNI plugin, then portmap) run\n" +
        "inside the node's namespace, and a probe responder in the pod",
    );

  pod
    .command("add")
    .summary("Add a pod on a node (CNI ADD), optionally holding floating IPs")
    .description(
      "Add a pod on a node: CNI ADD of the node's conflist with the pod's floating IPs\n" +
        "in the annotation cni.projectcalico.org/floatingIPs, then a probe responder\n" +
        "in the pod (TCP and UDP port 7000, IP protocol 253). Prints the pod's\n" +
        "addresses and floating IPs.",
    )
    .argument("<node>", "the node: node-N, or just N")
    .argument("<name>", "the pod's name, unique in the lab")
    .option(
      "--floating-ip <ip>",
      "a floating IP for the pod to hold (repeat, or separate with commas)",
      (value: string, previous: string[] | undefined) => [
        ...(previous ?? []),
        ...value.split(",").map((ip) => ip.trim()),
      ],
    )
    .option(
      "--egress",
      "the pod's own connections leave from its floating IPs (buoy.dev/floating-ip-egress)",
    )
    .option(
      "--label <key=value>",
      "a label (repeat): the pod gets a Pod record, Ready once it answers, that FloatingIPs select",
      (value: string, previous: string[] | undefined) => [...(previous ?? []), value],
    )
    .option("--namespace <ns>", "the pod's Kubernetes namespace", "default")
    .option("--prefix <prefix>", "the lab (default: the only one)")
    .addHelpText("after", POD_ADD_HELP)
    .action(async (nodeArgument: string, name: string, options: PodAddOptions) => {
      const node = /^\d+$/.test(nodeArgument) ? Number(nodeArgument) : nodeArgument;
      const floatingIps = options.floatingIp ?? [];
      for (const ip of floatingIps) {
        if (canonicalAddress(ip) === undefined) {
          throw new UsageError(`--floating-ip '${ip}' is not an IP address`);
        }
      }
      const labels = parseLabels(options.label);
      const { openLab } = await import("../../lab/open-lab.js");
      const prefix = await chooseLabPrefix(options.prefix);
      const added = await (
        await openLab(prefix)
      ).addPod(node, name, {
        floatingIps,
        namespace: options.namespace,
        ...(options.egress ? { egress: true } : {}),
        ...(labels ? { labels } : {}),
      });
      const first = added.floatingIps[0] ?? added.ips[0];
      write(
        `pod ${added.namespace}/${added.name} added on ${added.nodeName} (network namespace ${added.netns})\n` +
          `  addresses:    ${added.ips.join(", ") || "none"}\n` +
          `  floating IPs: ${added.floatingIps.join(", ") || "none"}${added.egress ? " (egress from them)" : ""}\n` +
          (first !== undefined ? `probe it: buoy lab probe ext ${first} --prefix ${prefix}\n` : ""),
      );
    });

  pod
    .command("ready")
    .summary("Mark a labelled pod Ready or not, as its readiness probe would")
    .description(
      "Set the Ready condition of a pod's Pod record (a pod added with --label): a\n" +
        "FloatingIP's controller moves the address off a holder that is not Ready.",
    )
    .argument("<name>", "the pod's name")
    .argument("<ready>", "true or false")
    .option("--prefix <prefix>", "the lab (default: the only one)")
    .action(async (name: string, ready: string, options: { prefix?: string }) => {
      if (ready !== "true" && ready !== "false") {
        throw new UsageError(`ready is true or false, got '${ready}'`);
      }
      const { openLab } = await import("../../lab/open-lab.js");
      const opened = await openLab(await chooseLabPrefix(options.prefix));
      await opened.setPodReady(name, ready === "true");
      write(
        `pod ${opened.pod(name).namespace}/${name} is ${ready === "true" ? "" : "not "}Ready\n`,
      );
    });

  pod
    .command("delete")
    .summary("Delete a pod (CNI DEL): its addresses and floating IPs are released")
    .description(
      "Delete a pod: CNI DEL of its node's conflist (in reverse), which releases its\n" +
        "addresses and floating-IP claims, then its processes and network namespace go.\n" +
        "Also cleans up after a `pod add` that was interrupted.",
    )
    .argument("<name>", "the pod's name")
    .option("--prefix <prefix>", "the lab (default: the only one)")
    .action(async (name: string, options: { prefix?: string }) => {
      const { openLab } = await import("../../lab/open-lab.js");
      const prefix = await chooseLabPrefix(options.prefix);
      const opened = await openLab(prefix);
      const { namespace, nodeName } = opened.pod(name);
      await opened.deletePod(name);
      write(`pod ${namespace}/${name} deleted from ${nodeName}\n`);
    });
}

/** `key=value` pairs as labels; undefined when none were given. */
function parseLabels(pairs: string[] | undefined): Record<string, string> | undefined {
  if (!pairs) return undefined;
  const labels: Record<string, string> = {};
  for (const pair of pairs) {
    const equals = pair.indexOf("=");
    if (equals <= 0) throw new UsageError(`--label must be key=value, got '${pair}'`);
    labels[pair.slice(0, equals)] = pair.slice(equals + 1);
  }
  return labels;
}

const POD_ADD_HELP = `
A refused ADD (a floating IP another pod holds, one outside every floating
pool) prints the plugin's message, leaves nothing behind and exits 1.

Examples:
  buoy lab pod add node-1 web --floating-ip 203.0.113.10
  buoy lab pod add 2 standby --namespace shop
  buoy lab pod add 1 web-a --label app=web    # selected by a FloatingIP`;
