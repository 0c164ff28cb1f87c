// runCli(): the `buoy` command line, calicoctl-style. Builds the program from
// the command families in commands/, one file each, and runs it. Takes
// { argv, env, stdout, stderr, openKv } and resolves to the exit code;
// nothing here touches process globals. This is the CLI's one error boundary:
// refusals and failures print `error: ...` and exit 1, usage errors exit 2.
import { Command, CommanderError } from "commander";
import { ExitStatus, UsageError, renderError } from "./cli-error.js";
import type { CliRequest } from "./cli-request.js";
import { addAgentCommand } from "./commands/agent.js";
import { addBirdWatchdogCommand } from "./commands/bird-watchdog.js";
import { addApplyCommand } from "./commands/apply.js";
import { addDeleteCommand } from "./commands/delete.js";
import { addDiagnoseCommand } from "./commands/diagnose.js";
import { addFloatingIpCommand } from "./commands/floatingip.js";
import { addGetCommand } from "./commands/get.js";
import { addInstallCommand } from "./commands/install-cni.js";
import { addImportCommand } from "./commands/import.js";
import { addIpamCommand } from "./commands/ipam.js";
import { addNodeCommand } from "./commands/node.js";
import { addLabCommand } from "./commands/lab.js";
import { addRemoveDataplaneCommand } from "./commands/remove-dataplane.js";
import { addVersionCommand, VERSION } from "./commands/version.js";
import { addWebhookCommand } from "./commands/webhook.js";
import { addCompletionCommand } from "./commands/completion.js";
import { addControllerCommand } from "./commands/controller.js";
import { Session } from "./commands/session.js";

export async function runCli(request: CliRequest): Promise<number> {
  const session = new Session(request);
  try {
    await createProgram(session).parseAsync([...request.argv], { from: "user" });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return exitCodeOf(error);
    if (error instanceof ExitStatus) return error.exitCode;
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

function createProgram(session: Session): Command {
  const { stdout, stderr, helpWidth } = session.request;
  const program = new Command(session.request.programName ?? "buoy")
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

  addApplyCommand(program, session);
  addGetCommand(program, session);
  addDeleteCommand(program, session);
  addFloatingIpCommand(program, session);
  addIpamCommand(program, session);
  addNodeCommand(program, session);
  addDiagnoseCommand(program, session);
  addImportCommand(program, session);
  addAgentCommand(program, session);
  addBirdWatchdogCommand(program, session);
  addWebhookCommand(program, session);
  addControllerCommand(program, session);
  addRemoveDataplaneCommand(program, session);
  addLabCommand(program, session.request);
  addInstallCommand(program, session.request, VERSION);
  addVersionCommand(program, session);
  addCompletionCommand(program, session);

  return program;
}

const ROOT_HELP = `
Environment:
  DATASTORE_TYPE   etcdv3 or kubernetes. Unset: etcdv3 when etcd endpoints
                   are given, else kubernetes when there is a kubeconfig
                   (KUBECONFIG, ~/.kube/config) or the CLI runs in a pod,
                   else etcdv3; as kubectl-buoy: kubernetes
  ETCD_ENDPOINTS   comma-separated etcd URLs (default http://127.0.0.1:2379)
  KUBECONFIG       the kubeconfig of the kubernetes datastore (default
                   ~/.kube/config, or the pod's service account)

Examples:
  buoy apply -f pools.yaml
  buoy get ippools -o wide
  buoy get floatingips --node node-1
  buoy get bgppeers
  buoy ipam show --show-blocks
  buoy delete ippool floating-v4

As a kubectl plugin: install the executable as kubectl-buoy on the PATH,
then 'kubectl buoy get floatingips' (the kubeconfig kubectl uses, from
KUBECONFIG or ~/.kube/config). 'buoy completion bash' prints shell
completion.

Run 'buoy <command> --help' for the details of a command.`;
