// `buoy lab status`: what a lab's parts say about themselves. readLabStatus()
// asks them (etcd's /health and each agent's /readyz from inside their
// namespaces, BIRD through its socket, floating IPs with `buoy get`, and
// where the routes for each lead with `ip -n <ns> route show`: the external
// router's in BGP mode, the other nodes' buoy routes in direct mode);
// render-lab-status.ts prints the answer.
import type { BgpSession } from "../dataplane/shell/bird.js";
import { runCommand } from "../exec/command.js";
import { BUOY_ROUTE_PROTOCOL } from "../dataplane/node-routes.js";
import { isAlive, readLogTail } from "./lab-shell.js";
import type { LabFeatures, LabPod, LabState } from "./lab-state.js";
import { AGENT_LISTEN, type LabRouting } from "./topology.js";
import { messageOf, type Lab } from "./lab.js";
import { parseRouteTargets } from "./route-targets.js";

export interface LabStatus {
  prefix: string;
  routing: LabRouting;
  ipv6: boolean;
  phase: LabState["phase"];
  features: LabFeatures;
  createdAt: string;
  stateDir: string;
  datastore: { netns: string; endpoint: string; healthy: boolean };
  nodes: NodeStatus[];
  router: RouterStatus;
  pods: PodStatus[];
  /** From `buoy get floatingips`; an error text when the datastore did not answer. */
  floatingIps: FloatingIpStatus[] | string;
  processes: ProcessStatus[];
}

export interface NodeStatus {
  name: string;
  netns: string;
  addresses: string[];
  agentReady: boolean;
  /** BGP mode: the node's BIRD sessions, or why they could not be read. */
  bgp?: BgpSession[] | string;
}

export interface RouterStatus {
  netns: string;
  addresses: string[];
  bgp?: BgpSession[] | string;
}

export interface PodStatus extends LabPod {
  responderRunning: boolean;
}

/** Node names a kernel's routes lead to (see parseRouteTargets()), or why they could not be read. */
export type RouteTargets = string[] | string;

export interface FloatingIpStatus {
  ip: string;
  /** namespace/name of the holder. */
  pod: string;
  /** The holder's node. */
  node: string;
  internalIP: string;
  /** The holder's agent translates it (`status.programmed` of `buoy get floatingips`). */
  programmed: boolean;
  /** How the holder's agent announces it (`status.announced`). */
  announced?: "bgp" | "direct";
  /** BGP mode: where the external router's kernel routes ip/32 (/128). More than one is a problem. */
  routerRoutesTo?: RouteTargets;
  /** Direct mode: where each other node's buoy route (proto 202) for ip/32 (/128) leads. */
  nodesRouteVia?: { node: string; via: RouteTargets }[];
}

export interface ProcessStatus {
  name: string;
  netns: string;
  pid: number;
  running: boolean;
  /** Whatever is wrong, and the end of its log. */
  problem?: string;
  logTail?: string;
}

export async function readLabStatus(lab: Lab): Promise<LabStatus> {
  const { topology, state } = lab;
  const [healthy, nodes, router, floatingIps] = await Promise.all([
    lab.httpOk(topology.fabric.netns, `${topology.etcd.endpoint}/health`),
    Promise.all(topology.nodes.map((node) => readNodeStatus(lab, node.index))),
    readRouterStatus(lab),
    readFloatingIps(lab),
  ]);
  const processes = await Promise.all(
    state.processes.map(async (entry): Promise<ProcessStatus> => {
      const running = isAlive(entry.pid);
      let problem: string | undefined;
      if (!running) problem = "not running";
      else if (entry.name === "etcd" && !healthy) problem = "not healthy";
      else if (entry.name.startsWith("agent-")) {
        const node = nodes.find((candidate) => `agent-${candidate.name}` === entry.name);
        if (node && !node.agentReady) problem = "not ready";
      }
      const base = { name: entry.name, netns: entry.netns, pid: entry.pid, running };
      if (problem === undefined) return base;
      return { ...base, problem, logTail: await readLogTail(entry.log) };
    }),
  );
  return {
    prefix: lab.prefix,
    routing: topology.routing,
    ipv6: topology.ipv6,
    phase: state.phase,
    features: state.features,
    createdAt: state.createdAt,
    stateDir: lab.stateDir,
    datastore: { netns: topology.fabric.netns, endpoint: topology.etcd.endpoint, healthy },
    nodes,
    router,
    pods: state.pods.map((pod) => {
      const responder = lab.findProcess(`responder-${pod.node}-${pod.name}`);
      return { ...pod, responderRunning: responder !== undefined && isAlive(responder.pid) };
    }),
    floatingIps,
    processes,
  };
}

async function readNodeStatus(lab: Lab, index: number): Promise<NodeStatus> {
  const node = lab.node(index);
  const [agentReady, bgp] = await Promise.all([
    lab.httpOk(node.netns, `http://${AGENT_LISTEN}/readyz`),
    lab.topology.routing === "bgp" ? readSessions(lab, node.name) : Promise.resolve(undefined),
  ]);
  return {
    name: node.name,
    netns: node.netns,
    addresses: [node.ipv4, node.ipv6],
    agentReady,
    ...(bgp === undefined ? {} : { bgp }),
  };
}

async function readRouterStatus(lab: Lab): Promise<RouterStatus> {
  const { external } = lab.topology;
  const base = { netns: external.netns, addresses: [external.ipv4, external.ipv6] };
  if (lab.topology.routing !== "bgp") return base;
  return { ...base, bgp: await readSessions(lab, "ext") };
}

async function readSessions(lab: Lab, place: string): Promise<BgpSession[] | string> {
  try {
    return await lab.bgpSessions(place);
  } catch (error) {
    return messageOf(error).split("\n")[0] ?? "unreadable";
  }
}

interface FloatingIpManifest {
  metadata?: { name?: string };
  spec?: { namespace?: string; pod?: string; node?: string; internalIP?: string };
  status?: { programmed?: boolean; announced?: "bgp" | "direct" };
}

async function readFloatingIps(lab: Lab): Promise<FloatingIpStatus[] | string> {
  let items: FloatingIpManifest[];
  try {
    const parsed = JSON.parse(await lab.buoy(["get", "floatingips", "-o", "json"])) as {
      items?: FloatingIpManifest[];
    };
    items = parsed.items ?? [];
  } catch (error) {
    return messageOf(error).split("\n")[0] ?? "unreadable";
  }
  const { routing, external, nodes } = lab.topology;
  return Promise.all(
    items.map(async (item): Promise<FloatingIpStatus> => {
      const ip = item.metadata?.name ?? "?";
      const holder = item.spec?.node ?? "?";
      const announced = item.status?.announced;
      const base: FloatingIpStatus = {
        ip,
        pod: `${item.spec?.namespace ?? "?"}/${item.spec?.pod ?? "?"}`,
        node: holder,
        internalIP: item.spec?.internalIP ?? "?",
        programmed: item.status?.programmed === true,
        ...(announced !== undefined ? { announced } : {}),
      };
      if (routing === "bgp") {
        return { ...base, routerRoutesTo: await readRouteTargets(lab, external.netns, ip) };
      }
      const others = nodes.filter((node) => node.name !== holder);
      const nodesRouteVia = await Promise.all(
        others.map(async (node) => ({
          node: node.name,
          via: await readRouteTargets(lab, node.netns, ip, ["proto", String(BUOY_ROUTE_PROTOCOL)]),
        })),
      );
      return { ...base, nodesRouteVia };
    }),
  );
}

/** `ip -n <netns> -j route show <ip>/32 [filter]` (/128 for IPv6), as node names. */
async function readRouteTargets(
  lab: Lab,
  netns: string,
  ip: string,
  filter: string[] = [],
): Promise<RouteTargets> {
  const v6 = ip.includes(":");
  try {
    const { stdout } = await runCommand([
      "ip",
      "-n",
      netns,
      v6 ? "-6" : "-4",
      "-j",
      "route",
      "show",
      `${ip}/${v6 ? 128 : 32}`,
      ...filter,
    ]);
    return parseRouteTargets(stdout, lab.topology.nodes);
  } catch (error) {
    return messageOf(error).split("\n")[0] ?? "unreadable";
  }
}
