// `buoy lab status` as text: the lab, its nodes and router, pods, floating IPs
// and processes, then the log tail of anything broken. Pure.
import type { BgpSession } from "../dataplane/shell/bird.js";
import { renderTable } from "../text/table.js";
import type { FloatingIpStatus, LabStatus, RouteTargets } from "./lab-status.js";

export function renderLabStatus(status: LabStatus): string {
  const out: string[] = [];
  const family = status.ipv6 ? "dual-stack pods" : "IPv4 pods";
  out.push(
    `lab ${status.prefix}: ${status.nodes.length} node(s), routing ${status.routing}, ${family}; ` +
      `${status.phase} since ${status.createdAt}`,
    `state ${status.stateDir}`,
    `datastore: etcd ${status.datastore.endpoint} in ${status.datastore.netns}: ` +
      (status.datastore.healthy ? "healthy" : "NOT HEALTHY"),
  );
  const missing = [
    status.features.agentRouting ? "" : "agent --routing",
    status.routing === "bgp" && !status.features.bgpPeers ? "BGPPeer" : "",
  ].filter(Boolean);
  if (missing.length > 0) out.push(`this buoy lacks ${missing.join(" and ")}: routing is off`);
  out.push("");

  const bgp = status.routing === "bgp";
  out.push(
    renderTable(
      ["NODE", "NAMESPACE", "ADDRESSES", "AGENT", ...(bgp ? ["BGP"] : [])],
      [
        ...status.nodes.map((node) => [
          node.name,
          node.netns,
          node.addresses.join(","),
          node.agentReady ? "ready" : "NOT READY",
          ...(bgp ? [renderSessions(node.bgp)] : []),
        ]),
        [
          "router",
          status.router.netns,
          status.router.addresses.join(","),
          "-",
          ...(bgp ? [renderSessions(status.router.bgp)] : []),
        ],
      ],
    ).trimEnd(),
    "",
  );

  if (status.pods.length === 0) out.push("no pods", "");
  else
    out.push(
      renderTable(
        ["POD", "NODE", "NAMESPACE", "IPS", "FLOATING IPS ASKED", "RESPONDER"],
        status.pods.map((pod) => [
          `${pod.namespace}/${pod.name}`,
          pod.nodeName,
          pod.netns,
          pod.ips.join(",") || "-",
          pod.floatingIps.join(",") || "-",
          pod.responderRunning ? "running" : "-",
        ]),
      ).trimEnd(),
      "",
    );

  if (typeof status.floatingIps === "string") {
    out.push(`floating IPs: cannot read them: ${status.floatingIps}`, "");
  } else if (status.floatingIps.length === 0) {
    out.push("no floating IPs held", "");
  } else {
    // One table; its last column says where traffic for the floating IP goes:
    // the router's routes (BGP) or the other nodes' buoy routes (direct).
    const routes = bgp ? "ROUTER ROUTES TO" : "OTHER NODES ROUTE VIA";
    out.push(
      renderTable(
        ["FLOATING IP", "POD", "NODE", "INTERNAL IP", "PROGRAMMED", "ANNOUNCED", routes],
        status.floatingIps.map((fip) => [
          fip.ip,
          fip.pod,
          fip.node,
          fip.internalIP,
          fip.programmed ? "yes" : "no",
          fip.announced ?? "-",
          bgp ? renderTargets(fip.routerRoutesTo) : renderNodeRoutes(fip.nodesRouteVia),
        ]),
      ).trimEnd(),
      "",
    );
  }

  out.push(
    renderTable(
      ["PROCESS", "PID", "NAMESPACE", "STATE"],
      status.processes.map((entry) => [
        entry.name,
        String(entry.pid),
        entry.netns,
        entry.problem ? entry.problem.toUpperCase() : "running",
      ]),
    ).trimEnd(),
  );
  for (const entry of status.processes.filter((candidate) => candidate.problem)) {
    out.push("", `${entry.name} is ${entry.problem}; the end of its log:`);
    out.push(entry.logTail ? entry.logTail.replace(/^/gm, "    ") : "    (empty)");
  }
  return out.join("\n") + "\n";
}

/** Problems a script can act on: empty when everything is up. */
export function findLabProblems(status: LabStatus): string[] {
  const problems: string[] = [];
  if (!status.datastore.healthy) problems.push("etcd is not healthy");
  for (const node of status.nodes)
    if (!node.agentReady) problems.push(`agent on ${node.name} is not ready`);
  for (const [name, sessions] of [
    ...status.nodes.map((node): [string, LabStatus["router"]["bgp"]] => [node.name, node.bgp]),
    ["the router", status.router.bgp] as [string, LabStatus["router"]["bgp"]],
  ]) {
    if (typeof sessions === "string") problems.push(`BIRD on ${name} does not answer`);
    for (const session of Array.isArray(sessions) ? sessions : []) {
      if (!session.info.startsWith("Established")) {
        problems.push(`BGP session ${session.name} on ${name} is ${session.info || session.state}`);
      }
    }
  }
  for (const fip of Array.isArray(status.floatingIps) ? status.floatingIps : []) {
    const { routerRoutesTo, nodesRouteVia } = fip;
    if (Array.isArray(routerRoutesTo) && routerRoutesTo.length > 1) {
      problems.push(
        `the router routes floating IP ${fip.ip} to ${routerRoutesTo.join(", ")}, ` +
          `not one node (${fip.node} holds it)`,
      );
    }
    for (const { node, via } of nodesRouteVia ?? []) {
      if (Array.isArray(via) && via.length > 1) {
        problems.push(
          `${node} routes floating IP ${fip.ip} via ${via.join(", ")}, not one node (${fip.node} holds it)`,
        );
      }
    }
  }
  for (const entry of status.processes) {
    if (entry.problem && !entry.name.startsWith("agent-") && entry.name !== "etcd") {
      problems.push(`${entry.name} is ${entry.problem}`);
    }
  }
  return problems;
}

/** `node-1`, `node-1,node-2` or `none`; `unreadable (why)`. */
function renderTargets(targets: RouteTargets | undefined): string {
  if (targets === undefined) return "-";
  if (typeof targets === "string") return `unreadable (${targets})`;
  return targets.join(",") || "none";
}

/** `node-2: node-1; node-3: none`, one entry per node other than the holder. */
function renderNodeRoutes(routes: FloatingIpStatus["nodesRouteVia"]): string {
  if (routes === undefined || routes.length === 0) return "-";
  return routes.map(({ node, via }) => `${node}: ${renderTargets(via)}`).join("; ");
}

function renderSessions(sessions: BgpSession[] | string | undefined): string {
  if (sessions === undefined) return "-";
  if (typeof sessions === "string") return `unreadable (${sessions})`;
  if (sessions.length === 0) return "no sessions";
  const up = sessions.filter((session) => session.info.startsWith("Established"));
  const down = sessions
    .filter((session) => !session.info.startsWith("Established"))
    .map((session) => `${session.name} ${session.info || session.state}`);
  return (
    `${up.length}/${sessions.length} Established` + (down.length > 0 ? `; ${down.join(", ")}` : "")
  );
}
