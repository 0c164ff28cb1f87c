// `buoy node status` (calicoctl's), run on a node: what its agent reports on
// /readyz and /metrics (version, ready or why not, last successful
// reconcile, floating IPs programmed and refused, routes, fenced) and its
// BIRD's BGP sessions. Pure: the texts the shell fetched in, a report out.
import type { BgpSession } from "../dataplane/bird-config.js";
import { renderTable } from "../text/table.js";

export interface AgentReport {
  /** Where it was asked. */
  url: string;
  /** undefined: the agent did not answer (the error's words). */
  unreachable?: string;
  ready?: boolean;
  /** /readyz's own words. */
  readiness?: string;
  version?: string;
  lastReconcile?: Date;
  bindings?: Record<string, number>;
  refused?: Record<string, number>;
  routes?: Record<string, number>;
  fenced?: boolean;
  datastoreConnected?: boolean;
  floatingIpsEnabled?: boolean;
}

export interface NodeStatus {
  agent: AgentReport;
  /**
   * BIRD's sessions, or why it did not answer. `expected`: this node routes
   * by BGP (its socket is there, or --routing bgp), so a BIRD that does not
   * answer is a failure, not direct routing.
   */
  bird: { socket: string; sessions?: BgpSession[]; unreachable?: string; expected?: boolean };
}

export interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** Prometheus' text format, the samples of each metric name. */
export function parseMetrics(text: string): Map<string, Sample[]> {
  const samples = new Map<string, Sample[]>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? "").matchAll(/([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1] as string] = (pair[2] as string).replace(/\\(.)/g, (_, c: string) =>
        c === "n" ? "\n" : c,
      );
    }
    const value = Number(match[3]);
    const name = match[1] as string;
    samples.set(name, [...(samples.get(name) ?? []), { labels, value }]);
  }
  return samples;
}

/** The agent's report from what /readyz and /metrics answered. */
export function agentReport(
  url: string,
  readyz: { status: number; body: string },
  metricsText: string,
): AgentReport {
  const metrics = parseMetrics(metricsText);
  const one = (name: string) => metrics.get(name)?.[0]?.value;
  const byLabel = (name: string, label: string) =>
    Object.fromEntries(
      (metrics.get(name) ?? []).map((sample) => [sample.labels[label] ?? "", sample.value]),
    );
  const last = one("buoy_last_reconcile_success_timestamp_seconds");
  const version = metrics.get("buoy_build_info")?.[0]?.labels.version;
  return {
    url,
    ready: readyz.status === 200,
    readiness: readyz.body.trim(),
    ...(version !== undefined ? { version } : {}),
    ...(last !== undefined && last > 0 ? { lastReconcile: new Date(last * 1000) } : {}),
    bindings: byLabel("buoy_floating_ip_bindings", "family"),
    refused: byLabel("buoy_floating_ip_refused", "reason"),
    routes: byLabel("buoy_routes", "kind"),
    ...flag("fenced", one("buoy_fenced")),
    ...flag("datastoreConnected", one("buoy_datastore_connected")),
    ...flag("floatingIpsEnabled", one("buoy_floating_ips_enabled")),
  };
}

function flag<K extends string>(key: K, value: number | undefined): Partial<Record<K, boolean>> {
  return value === undefined ? {} : ({ [key]: value === 1 } as Record<K, boolean>);
}

export function renderNodeStatus(status: NodeStatus, now: Date): string {
  const { agent, bird } = status;
  const lines: string[] = [];
  if (agent.unreachable !== undefined) {
    lines.push(`buoy agent at ${agent.url}: not answering (${agent.unreachable})`);
  } else {
    lines.push(
      `buoy agent at ${agent.url}: ${agent.ready ? "ready" : `not ready: ${agent.readiness}`}` +
        (agent.version ? ` (version ${agent.version})` : ""),
    );
    lines.push(
      `  last successful reconcile: ${
        agent.lastReconcile
          ? `${agent.lastReconcile.toISOString()} (${Math.max(0, Math.round((now.getTime() - agent.lastReconcile.getTime()) / 1000))} s ago)`
          : "none yet"
      }`,
    );
    lines.push(
      `  datastore watch: ${agent.datastoreConnected ? "established" : "not established"}`,
    );
    lines.push(
      `  floating IPs: ${agent.floatingIpsEnabled === false ? "off on this node" : `${sum(agent.bindings)} programmed${counts(agent.bindings, (family) => family.replace(/^ipv/, "IPv"))}`}` +
        `, ${sum(agent.refused)} refused${counts(agent.refused)}` +
        (agent.fenced ? "; FENCED: announcements withdrawn for want of datastore contact" : ""),
    );
    lines.push(`  routes: ${sum(agent.routes)}${counts(agent.routes)}`);
  }
  if (bird.sessions) {
    lines.push(`BIRD at ${bird.socket}: ${bird.sessions.length} BGP session(s)`);
    if (bird.sessions.length > 0) {
      lines.push(
        renderTable(
          ["PROTOCOL", "STATE", "INFO"],
          bird.sessions.map((session) => [session.name, session.state, session.info]),
        ).trimEnd(),
      );
    }
  } else {
    lines.push(`BIRD at ${bird.socket}: not answering (${bird.unreachable ?? "no socket"})`);
  }
  return lines.join("\n") + "\n";
}

/**
 * Whether the node is well: the agent ready and not fenced, BIRD answering
 * where it is expected, and every BGP session it has up.
 */
export function nodeHealthy(status: NodeStatus): boolean {
  const { agent, bird } = status;
  return (
    agent.unreachable === undefined &&
    agent.ready === true &&
    agent.fenced !== true &&
    !(bird.expected === true && bird.sessions === undefined) &&
    (bird.sessions ?? []).every((session) => session.info.startsWith("Established"))
  );
}

function sum(values: Record<string, number> | undefined): number {
  return Object.values(values ?? {}).reduce((total, value) => total + value, 0);
}

function counts(values: Record<string, number> | undefined, label = (key: string) => key): string {
  const parts = Object.entries(values ?? {})
    .filter(([, value]) => value > 0)
    .map(([key, value]) => `${label(key)} ${value}`);
  return parts.length > 0 ? ` (${parts.join(", ")})` : "";
}
