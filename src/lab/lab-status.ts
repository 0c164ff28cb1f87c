// `buoy lab status`: what a lab's parts say about themselves. readLabStatus()
// asks them (etcd's /health and each agent's /readyz from inside their
// namespaces, BIRD through its socket, routes with `ip -n`, floating IPs with
// `buoy get`); render-lab-status.ts prints the answer.
import type { BgpSession } from "../dataplane/bird.js";
import { runCommand } from "../exec/command.js";
import { isAlive, readLogTail } from "./lab-shell.js";
import type { LabFeatures, LabPod, LabState } from "./lab-state.js";
import { AGENT_LISTEN, type LabRouting } from "./topology.js";
import { messageOf, type Lab } from "./lab.js";

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

export interface FloatingIpStatus {
  ip: string;
  /** namespace/name of the holder. */
  pod: string;
  node: string;
  internalIP: string;
  programmed: boolean;
  /** Each node's kernel route to the floating IP (`ip route show <ip>`), "" when none. */
  nodeRoutes: { node: string; route: string }[];
  /** Where the external router sends traffic to it (`ip route get`): a node name or the route. */
  routerSendsTo: string;
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
  status?: { programmed?: boolean };
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
  return Promise.all(
    items.map(async (item): Promise<FloatingIpStatus> => {
      const ip = item.metadata?.name ?? "?";
      const [nodeRoutes, routerSendsTo] = await Promise.all([
        Promise.all(
          lab.topology.nodes.map(async (node) => ({
            node: node.name,
            route: await readRoute(node.netns, ip),
          })),
        ),
        readRouterNextHop(lab, ip),
      ]);
      return {
        ip,
        pod: `${item.spec?.namespace ?? "?"}/${item.spec?.pod ?? "?"}`,
        node: item.spec?.node ?? "?",
        internalIP: item.spec?.internalIP ?? "?",
        programmed: item.status?.programmed === true,
        nodeRoutes,
        routerSendsTo,
      };
    }),
  );
}

interface IpRoute {
  dst?: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  type?: string;
}

function familyFlag(ip: string): string {
  return ip.includes(":") ? "-6" : "-4";
}

/** The node's route for exactly this address, as `via X`/`dev Y` and its protocol; "" when none. */
async function readRoute(netns: string, ip: string): Promise<string> {
  try {
    const { stdout } = await runCommand([
      "ip",
      "-n",
      netns,
      familyFlag(ip),
      "-j",
      "route",
      "show",
      ip,
    ]);
    const routes = JSON.parse(stdout || "[]") as IpRoute[];
    return routes.map(describeRoute).join("; ");
  } catch {
    return "";
  }
}

async function readRouterNextHop(lab: Lab, ip: string): Promise<string> {
  const { external, nodes } = lab.topology;
  try {
    const { stdout } = await runCommand([
      "ip",
      "-n",
      external.netns,
      familyFlag(ip),
      "-j",
      "route",
      "get",
      ip,
    ]);
    const [route] = JSON.parse(stdout || "[]") as IpRoute[];
    if (!route) return "no route";
    const node = nodes.find((plan) => plan.ipv4 === route.gateway || plan.ipv6 === route.gateway);
    if (node) return node.name;
    return describeRoute(route);
  } catch {
    return "no route";
  }
}

function describeRoute(route: IpRoute): string {
  const parts = [
    route.type && route.type !== "unicast" ? route.type : "",
    route.gateway ? `via ${route.gateway}` : "",
    route.dev && !route.gateway ? `dev ${route.dev}` : "",
    route.protocol ? `proto ${route.protocol}` : "",
  ];
  return parts.filter(Boolean).join(" ");
}
