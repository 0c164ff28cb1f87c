// `buoy node status`, run on a node (as calicoctl's): its agent's /readyz
// and /metrics, its BIRD's BGP sessions through birdc; exits 1 unless the
// node is well (node-status.ts).
import { existsSync } from "node:fs";
import { Option, type Command } from "commander";
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
      "the agent's --listen address (/readyz, /metrics); default $NODE_IP:9096 where " +
        "NODE_IP is set (the DaemonSet's containers), else 127.0.0.1:9096",
    )
    .option(
      "--bird-socket <path>",
      "BIRD's control socket (the agent's --bird-socket)",
      "/run/bird/bird.ctl",
    )
    .addOption(
      new Option(
        "--routing <mode>",
        "bgp: BIRD must answer; direct: no BIRD (default: bgp when BIRD's socket is there)",
      ).choices(["bgp", "direct"]),
    )
    .addHelpText(
      "after",
      `
Runs on the node: in the DaemonSet, kubectl exec -n kube-system
ds/buoy-node -c buoy-agent -- buoy node status (the agent listens on the
node's address there, NODE_IP). Exits 0 when the agent answers ready and is
not fenced, BIRD answers where this node routes by BGP, and every BGP
session BIRD lists is Established; 1 otherwise. Without BIRD (--routing
direct, or no socket) its line says it does not answer, which is no failure.

Examples:
  buoy node status
  buoy node status --agent 127.0.0.1:9097 --bird-socket /run/bird/bird.ctl`,
    )
    .action(async (options: { agent?: string; birdSocket: string; routing?: string }) => {
      const url = `http://${agentAddress(options.agent, session.request.env)}`;
      const [agent, bird] = await Promise.all([readAgent(url), readBird(options.birdSocket)]);
      const expected =
        options.routing === undefined ? existsSync(options.birdSocket) : options.routing === "bgp";
      const status: NodeStatus = { agent, bird: { ...bird, expected } };
      session.write(renderNodeStatus(status, new Date()));
      if (!nodeHealthy(status)) throw new ExitStatus(1);
    });
}

/** host:port of the agent: the flag, else $NODE_IP:9096 (the DaemonSet's --listen), else loopback. */
export function agentAddress(
  flag: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): string {
  const nodeIp = env.NODE_IP?.trim();
  const address =
    flag ?? (nodeIp ? `${nodeIp.includes(":") ? `[${nodeIp}]` : nodeIp}:9096` : "127.0.0.1:9096");
  if (!/^(\[[0-9A-Fa-f:.]+\]|[^/\s:[\]]+):\d+$/.test(address)) {
    throw new UsageError(`--agent is host:port, got '${address}'`);
  }
  return address;
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
