// `buoy floatingip set|add|remove|egress|move`: change a running pod's
// floating IPs, each change planned against a fresh read: on etcd committed
// in one transaction (in parts past etcd's bound, ADR 0012), on kubernetes
// the pod's annotation patched and the agent's claims waited for
// (kube/kube-floating-ip-change.ts).
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
import type { DatastoreState } from "../../datastore/datastore-state.js";
import type { ChangeStep } from "../../kube/kube-floating-ip-change.js";
import {
  findPod,
  type AnnotationChange,
  type PodInState,
} from "../../kube/plan-annotation-change.js";
import { openKube } from "./read-state.js";
import type { Session } from "./session.js";

/** Adds `floatingip` (alias `fip`) and its subcommands to the program. */
export function addFloatingIpCommand(program: Command, session: Session): void {
  const floatingip = program
    .command("floatingip")
    .alias("fip")
    .summary("Change a running pod's floating IPs: set, add, remove, move, egress")
    .description(
      "Change a running pod's floating IPs. Checked like the CNI plugin checks the\n" +
        "annotation at ADD. On etcd the claims and the endpoint change in one\n" +
        "transaction and the node agent reprograms within a second; on kubernetes\n" +
        "the pod's annotation changes (a move: the holder's first, the other pod's\n" +
        "once the holder's node has let the address go) and the command waits until\n" +
        "the node agent holds what it asks for, or says why it refused.",
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
    )
    .option(
      "--timeout <seconds>",
      "kubernetes datastore: how long to wait for the pod's node agent to make the change",
      "30",
    );
  floatingip
    .command("set <pod> [ips...]")
    .description("make exactly these the pod's floating IPs (none: remove all)")
    .action(async (pod: string, ips: string[], _options: object, command: Command) =>
      changeFloatingIps(session, command, pod, {
        etcd: (state) => planFloatingIpSet(state, pod, ips, maxFloatingIps(command)),
        kube: (kube) => [
          onePod(pod, (state, found) =>
            kube.planAnnotationSet(state, found, ips, maxFloatingIps(command)),
          ),
        ],
      }),
    );
  floatingip
    .command("add <pod> <ips...>")
    .description("give the pod these floating IPs as well")
    .action(async (pod: string, ips: string[], _options: object, command: Command) =>
      changeFloatingIps(session, command, pod, {
        etcd: (state) =>
          planFloatingIpSet(state, pod, [...heldBy(state, pod), ...ips], maxFloatingIps(command)),
        kube: (kube) => [
          onePod(pod, (state, found) =>
            kube.planAnnotationSet(
              state,
              found,
              [...kube.annotationHeld(state, found), ...ips],
              maxFloatingIps(command),
            ),
          ),
        ],
      }),
    );
  floatingip
    .command("remove <pod> <ips...>")
    .description("take these floating IPs from the pod")
    .action(async (pod: string, ips: string[], _options: object, command: Command) =>
      changeFloatingIps(session, command, pod, {
        etcd: (state) => planFloatingIpSet(state, pod, without(heldBy(state, pod), ips)),
        kube: (kube) => [
          onePod(pod, (state, found) =>
            kube.planAnnotationSet(
              state,
              found,
              without(kube.annotationHeld(state, found), ips),
              maxFloatingIps(command),
            ),
          ),
        ],
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
      await changeFloatingIps(session, command, pod, {
        etcd: (live) => planFloatingIpEgress(live, pod, state === "on"),
        kube: (kube) => [
          onePod(pod, (live, found) => kube.planAnnotationEgress(live, found, state === "on")),
        ],
        egress: state === "on",
      });
    });
  floatingip
    .command("move <ip>")
    .description(
      "move a held floating IP to another pod: in one transaction on etcd; on\n" +
        "kubernetes the holder's annotation first, then, once its node let it go,\n" +
        "the other pod's",
    )
    .requiredOption("--to <pod>", "the pod to move it to, namespace/name")
    .action(async (ip: string, options: { to: string }, command: Command) =>
      changeFloatingIps(session, command, options.to, {
        etcd: (state) => planFloatingIpMove(state, ip, options.to, maxFloatingIps(command)),
        // The holder's annotation first, checked with the target's; then,
        // once the holder's node let it go, the target's, checked afresh.
        kube: (kube) => [
          {
            pods: (state) => {
              const claim = state.claims.find((entry) => entry.value.ip === canonicalAddress(ip));
              return [
                options.to,
                ...(claim ? [`${claim.value.namespace}/${claim.value.pod}`] : []),
              ];
            },
            plan: (state, pods) =>
              kube.planAnnotationMove(state, pods, ip, options.to, maxFloatingIps(command)).release,
          },
          onePod(options.to, (state, found) =>
            kube.planAnnotationSet(
              state,
              found,
              [...kube.annotationHeld(state, found), ip],
              maxFloatingIps(command),
            ),
          ),
        ],
      }),
    );
}

interface Plans {
  etcd: (state: LiveState) => ChangePlan;
  /** Given the planner module (loaded only on this datastore): the pods' annotation changes, in order. */
  kube: (kube: typeof import("../../kube/plan-annotation-change.js")) => ChangeStep[];
  /** The egress the change sets, for its report. */
  egress?: boolean;
}

/** A step that changes one pod's annotation, planned from that pod as buoy recorded it. */
function onePod(
  ref: string,
  plan: (state: DatastoreState, pod: PodInState) => AnnotationChange,
): ChangeStep {
  return {
    pods: () => [ref],
    plan: (state, pods) => plan(state, findPod(state, pods, ref)),
  };
}

/** Plans against a fresh read, then commits (etcd) or patches and waits for the agent (kubernetes). */
async function changeFloatingIps(
  session: Session,
  command: Command,
  pod: string,
  plans: Plans,
): Promise<void> {
  const datastore = session.datastoreConfig(command);
  if (datastore.type === "kubernetes") {
    const { timeout } = command.optsWithGlobals<{ timeout: string }>();
    const seconds = Number(timeout);
    if (!Number.isFinite(seconds) || seconds <= 0) {
      throw new UsageError(`--timeout is a number of seconds, got '${timeout}'`);
    }
    const [{ http, leaseNamespace }, planner, { changeKubeFloatingIps }] = await Promise.all([
      openKube(session, datastore.kubeconfig),
      import("../../kube/plan-annotation-change.js"),
      import("../../kube/kube-floating-ip-change.js"),
    ]);
    const { change, held } = await changeKubeFloatingIps(
      http,
      leaseNamespace,
      plans.kube(planner),
      { timeoutMs: seconds * 1000 },
    );
    // Egress is the annotation's: the agent applies it, nothing to wait for in a claim.
    report(session, `${change.namespace}/${change.pod}`, held, plans.egress, "asked: ");
    return;
  }
  const store = session.openStore(command);
  for (let attempt = 0; attempt < 5; attempt++) {
    const change = plans.etcd(await store.readLiveState());
    if (await commitLiveChange(store.kv, change)) {
      const held = change.ipNATs.map((nat) => `${nat.externalIP} -> ${nat.internalIP}`);
      report(session, pod, held, change.egress);
      return;
    }
  }
  throw new CliError("the datastore kept changing under the floating-IP change; try again");
}

function report(
  session: Session,
  pod: string,
  held: string[],
  egress: boolean | undefined,
  asked = "",
): void {
  session.write(`pod ${pod} holds ${held.length > 0 ? held.join(", ") : "no floating IPs"}\n`);
  if (egress !== undefined) {
    session.write(
      egress
        ? `${asked}its own connections leave from its first floating IP of each family\n`
        : `${asked}its own connections leave from its own address\n`,
    );
  }
}

function without(held: readonly string[], ips: readonly string[]): string[] {
  const gone = new Set(ips.map((ip) => canonicalAddress(ip) ?? ip));
  return held.filter((ip) => !gone.has(ip));
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
