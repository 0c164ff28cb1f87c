// `buoy floatingip set|add|remove|egress|move`: change a running pod's
// floating IPs (etcdv3 datastore), each change planned against a fresh read
// and committed in one transaction (in parts past etcd's bound, ADR 0012).
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { parseFloatingIpSwitch } from "../../agent/feature-switch.js";
import { DEFAULT_MAX_FLOATING_IPS } from "../../floating/validate.js";
import {
  findEndpoint,
  planFloatingIpEgress,
  planFloatingIpMove,
  planFloatingIpSet,
  type ChangePlan,
  type LiveState,
} from "../../etcd/live-change.js";
import { commitLiveChange } from "../../etcd/commit-live-change.js";
import { canonicalAddress } from "../../net/address.js";
import { CliError, UsageError } from "../cli-error.js";
import type { Session } from "./session.js";

/** Adds `floatingip` (alias `fip`) and its subcommands to the program. */
export function addFloatingIpCommand(program: Command, session: Session): void {
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
    )
    .option(
      "--cni-conf <path>",
      "the CNI config whose max_floating_ips_per_pod bounds a pod's floating IPs " +
        `(absent: ${DEFAULT_MAX_FLOATING_IPS})`,
      DEFAULT_CNI_CONF,
    );
  floatingip
    .command("set <pod> [ips...]")
    .description("make exactly these the pod's floating IPs (none: remove all)")
    .action(async (pod: string, ips: string[], _options: object, command: Command) =>
      changeFloatingIps(session, command, pod, (state) =>
        planFloatingIpSet(state, pod, ips, maxFloatingIps(command)),
      ),
    );
  floatingip
    .command("add <pod> <ips...>")
    .description("give the pod these floating IPs as well")
    .action(async (pod: string, ips: string[], _options: object, command: Command) =>
      changeFloatingIps(session, command, pod, (state) =>
        planFloatingIpSet(state, pod, [...heldBy(state, pod), ...ips], maxFloatingIps(command)),
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
        planFloatingIpMove(state, ip, options.to, maxFloatingIps(command)),
      ),
    );
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
    if (await commitLiveChange(store.kv, change)) {
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

/** Where the agent reads the node's CNI config too (`buoy agent --cni-conf`). */
const DEFAULT_CNI_CONF = "/etc/cni/net.d/10-calico.conflist";

/**
 * The per-pod bound as ADD applies it: the conflist's max_floating_ips_per_pod,
 * or the default when there is no readable conflist (the CLI may run off the node).
 */
function maxFloatingIps(command: Command): number {
  const { cniConf } = command.optsWithGlobals<{ cniConf: string }>();
  let text: string;
  try {
    text = readFileSync(cniConf, "utf8");
  } catch {
    return DEFAULT_MAX_FLOATING_IPS;
  }
  return parseFloatingIpSwitch(text, cniConf).maxFloatingIps;
}

function heldBy(state: LiveState, pod: string): string[] {
  return findEndpoint(state, pod).value.ipNATs.map((nat) => nat.externalIP);
}
