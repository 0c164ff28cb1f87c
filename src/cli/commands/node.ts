// `buoy node status`, run on a node (as calicoctl's): its agent's /readyz
// and /metrics, its BIRD's BGP sessions through birdc; exits 1 unless the
// node is well (node-status.ts).
import type { Command } from "commander";
import { LinuxBird } from "../../dataplane/shell/bird.js";
import { ExitStatus, UsageError } from "../cli-error.js";
import { agentReport, nodeHealthy, renderNodeStatus, type NodeStatus } from "../node-status.js";
import type { Session } from "./session.js";

const TIMEOUT_MS = 3000;

export function addNodeCommand(program: Command, session: Session): void {
  const node = program.command("node").description("What this node's agent and BIRD report");
  node
    .command("status")
    .description("This node's agent (ready, last reconcile, floating IPs, routes) and BGP sessions")
    .option(
      "--agent <host:port>",
      "the agent's --listen address (/readyz, /metrics)",
      "127.0.0.1:9096",
    )
    .option(
      "--bird-socket <path>",
      "BIRD's control socket (the agent's --bird-socket)",
      "/run/bird/bird.ctl",
    )
    .addHelpText(
      "after",
      `
Runs on the node (the agent listens on 127.0.0.1 by default; in the
DaemonSet: kubectl exec -n kube-system ds/buoy-node -c buoy-agent -- buoy
node status). Exits 0 when the agent answers ready and is not fenced and
every BGP session BIRD lists is Established; 1 otherwise. Without BIRD
(--routing direct) its line says it does not answer, which is no failure.

Examples:
  buoy node status
  buoy node status --agent 127.0.0.1:9097 --bird-socket /run/bird/bird.ctl`,
    )
    .action(async (options: { agent: string; birdSocket: string }) => {
      if (!/^[^/\s]+:\d+$/.test(options.agent)) {
        throw new UsageError(`--agent is host:port, got '${options.agent}'`);
      }
      const url = `http://${options.agent}`;
      const [agent, bird] = await Promise.all([readAgent(url), readBird(options.birdSocket)]);
      const status: NodeStatus = { agent, bird };
      session.write(renderNodeStatus(status, new Date()));
      if (!nodeHealthy(status)) throw new ExitStatus(1);
    });
}

export async function readAgent(url: string): Promise<NodeStatus["agent"]> {
  try {
    const get = async (path: string) => {
      const response = await fetch(`${url}${path}`, { signal: AbortSignal.timeout(TIMEOUT_MS) });
      return { status: response.status, body: await response.text() };
    };
    const [readyz, metrics] = await Promise.all([get("/readyz"), get("/metrics")]);
    return agentReport(url, readyz, metrics.body);
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    return { url, unreachable: cause ?? (error as Error).message };
  }
}

export async function readBird(socket: string): Promise<NodeStatus["bird"]> {
  try {
    // The config path is not read: only `show protocols` is asked.
    const sessions = await new LinuxBird("/dev/null", socket).sessions();
    return { socket, sessions };
  } catch (error) {
    return { socket, unreachable: (error as Error).message.split("\n")[0] ?? "" };
  }
}
