// `buoy lab demo`: a 2-node lab, a pod with a floating IP, who can reach it
// over which protocol and what source address the pod sees, then a live move
// of the floating IP to a pod on the other node under a 100 Hz ping, and the
// interruption it caused; last, a FloatingIP that follows a Ready pod, its
// holder killed under a 100 Hz ping (lab-demo-failover.ts). Every probe has a short timeout, so a cell that
// does not work shows FAIL instead of hanging the demo.
import { renderTable } from "../text/table.js";
import { renderConnectivityMatrix, type ConnectivityMatrix } from "./connectivity-matrix.js";
import {
  demonstrateFailover,
  FAILOVER_FLOATING_IP,
  type FailoverDemoOutcome,
} from "./lab-demo-failover.js";
import { LabError, type Lab } from "./lab.js";
import { labUp, type LabStep } from "./lab-up.js";
import { sleep } from "./lab-shell.js";
import type { PingReport } from "./ping-report.js";
import { PROBE_PROTOCOLS, type ProbeResult } from "./probe-result.js";
import type { LabRouting } from "./topology.js";

export interface LabDemoOptions {
  routing?: LabRouting;
  /** Dual-stack: web gets an IPv6 floating IP too, and a second matrix shows it. */
  ipv6?: boolean;
  prefix?: string;
  /** Leave the lab running at the end (remove it with `buoy lab down`). */
  keep?: boolean;
  stateRoot?: string;
  signal?: AbortSignal;
  write: (text: string) => void;
}

export interface LabDemoOutcome {
  prefix: string;
  matrix: ConnectivityMatrix;
  ping: PingReport;
  /** How long after the move command the external client got its first answer from the new pod. */
  switchedAfterMs: number | undefined;
  /** The source the external router saw standby's TCP come from, before and after opting in to egress. */
  egress: { before: string | undefined; after: string | undefined };
  /** The FloatingIP's holder killed under a 100 Hz ping. */
  failover: FailoverDemoOutcome;
}

export const DEMO_FLOATING_IP = "203.0.113.10";
export const DEMO_FLOATING_IP6 = "2001:db8:f100::10";

export async function runLabDemo(options: LabDemoOptions): Promise<LabDemoOutcome> {
  const { write, signal } = options;
  const section = (title: string) => write(`\n== ${title}\n`);
  section("build a 2-node lab");
  const lab = await labUp({
    nodes: 2,
    routing: options.routing ?? "bgp",
    ipv6: options.ipv6 === true,
    ...(options.prefix !== undefined ? { prefix: options.prefix } : {}),
    ...(options.stateRoot !== undefined ? { stateRoot: options.stateRoot } : {}),
    ...(signal !== undefined ? { signal } : {}),
    onStep: (step) => write(renderStep(step)),
  });
  try {
    signal?.throwIfAborted();
    return await demonstrate(lab, options, section);
  } catch (error) {
    if (signal?.aborted) throw new LabError("interrupted", { cause: error });
    throw error;
  } finally {
    if (options.keep) {
      write(
        `\nthe lab is still running: buoy lab status --prefix ${lab.prefix}; ` +
          `buoy lab down --prefix ${lab.prefix}\n`,
      );
    } else {
      section(`tear down lab ${lab.prefix}`);
      const report = await lab.down();
      write(
        `removed ${report.namespaces.length} namespaces, stopped ${report.processes} processes, ` +
          `deleted ${report.stateDir}\n`,
      );
    }
  }
}

/** One line per `up` step: elapsed time, what, how it ended. */
export function renderStep(step: LabStep): string {
  const at = `${String(step.totalMs).padStart(6)} ms`;
  if (step.note) return `${at}  note: ${step.detail}\n`;
  return `${at}  ${step.what}: ${step.detail} (${step.ms} ms)\n`;
}

async function demonstrate(
  lab: Lab,
  options: LabDemoOptions,
  section: (title: string) => void,
): Promise<LabDemoOutcome> {
  const { write, signal } = options;
  section(`pods (CNI ADD of the seed conflist in each node's namespace)`);
  const [web, client1, client2, standby] = await Promise.all([
    lab.addPod(1, "web", {
      floatingIps: options.ipv6 ? [DEMO_FLOATING_IP, DEMO_FLOATING_IP6] : [DEMO_FLOATING_IP],
    }),
    lab.addPod(1, "client-1"),
    lab.addPod(2, "client-2"),
    lab.addPod(2, "standby"),
  ]);
  write(
    renderTable(
      ["POD", "NODE", "IPS", "FLOATING IPS"],
      [web, client1, client2, standby].map((pod) => [
        `${pod.namespace}/${pod.name}`,
        pod.nodeName,
        pod.ips.join(","),
        pod.floatingIps.join(",") || "-",
      ]),
    ),
  );
  const programmedMs = await waitForProgrammed(lab, DEMO_FLOATING_IP, signal);
  write(
    programmedMs === undefined
      ? `${DEMO_FLOATING_IP} is not programmed after 10 s (buoy get floatingips)\n`
      : `${DEMO_FLOATING_IP} programmed on node-1 ${programmedMs} ms after ADD returned\n`,
  );

  const columns = [
    { title: "external client", netns: lab.topology.external.netns },
    { title: "pod on node-2", netns: client2.netns },
    { title: "pod on node-1", netns: client1.netns },
    { title: "web itself", netns: web.netns },
    { title: "node-1", netns: lab.node(1).netns },
  ];
  section(`who reaches ${DEMO_FLOATING_IP} (web's floating IP, on node-1)`);
  const matrix = await probeMatrix(lab, DEMO_FLOATING_IP, "web", columns);
  write(renderConnectivityMatrix(matrix));
  if (options.ipv6) {
    section(`who reaches ${DEMO_FLOATING_IP6} (web's IPv6 floating IP)`);
    write(renderConnectivityMatrix(await probeMatrix(lab, DEMO_FLOATING_IP6, "web", columns)));
  }

  section(
    `move ${DEMO_FLOATING_IP} to default/standby on node-2, the external client pinging at 100 Hz`,
  );
  const pingMs = 8000;
  // Settled right away: an interrupted demo must not leave a rejection unhandled while it tears down.
  const pinging = lab.ping("ext", DEMO_FLOATING_IP, { durationMs: pingMs, intervalMs: 10 }).then(
    (report) => ({ report }),
    (error: unknown) => ({ error }),
  );
  await sleep(1500, signal);
  const movedAt = Date.now();
  let switchedAfterMs: number | undefined;
  try {
    const said = await lab.buoy([
      "floatingip",
      "move",
      DEMO_FLOATING_IP,
      "--to",
      "default/standby",
    ]);
    write(`$ buoy floatingip move ${DEMO_FLOATING_IP} --to default/standby\n${said}`);
    switchedAfterMs = await waitForAnswerFrom(lab, DEMO_FLOATING_IP, "standby", movedAt, signal);
  } catch (error) {
    write(`the move failed: ${error instanceof Error ? error.message : String(error)}\n`);
  }
  const pinged = await pinging;
  if ("error" in pinged) throw pinged.error;
  const { report } = pinged;
  write(
    (switchedAfterMs === undefined
      ? "the external client got no TCP answer from standby within 5 s of the move\n"
      : `the external client's TCP request was first answered by standby ${switchedAfterMs} ms after the move\n`) +
      `ping at 100 Hz for ${pingMs / 1000} s: ${report.sent} sent, ${report.received} answered, ` +
      `${report.lost} lost${report.lost > 0 ? ` (${report.lostRanges.join(", ")})` : ""}; ` +
      `longest time without an answer ${report.longestGapMs} ms\n`,
  );
  write(`$ buoy get floatingips\n${await lab.buoy(["get", "floatingips"]).catch(() => "")}`);

  section(`egress: standby's own connections leave from ${DEMO_FLOATING_IP} (opt-in)`);
  const egress = await demonstrateEgress(lab, write, signal);

  section(`failover: FloatingIP default/api (${FAILOVER_FLOATING_IP}) follows a Ready pod`);
  const failover = await demonstrateFailover(lab, write, signal);
  return { prefix: lab.prefix, matrix, ping: report, switchedAfterMs, egress, failover };
}

/**
 * standby (holding the floating IP after the move) opens TCP to the external
 * router before and after `buoy floatingip egress default/standby on`: the
 * router sees node-2's address (natOutgoing), then the floating IP.
 */
async function demonstrateEgress(
  lab: Lab,
  write: (text: string) => void,
  signal: AbortSignal | undefined,
): Promise<LabDemoOutcome["egress"]> {
  const router = lab.topology.external.ipv4;
  await lab.serve("ext", "ext", "external router");
  const seen = async () =>
    (await lab.probe("standby", router, "tcp", { timeoutMs: 1000 })).seenSource;
  const before = await seen();
  write(`standby -> external router ${router}, TCP: seen from ${before ?? "(no answer)"}\n`);
  try {
    const said = await lab.buoy(["floatingip", "egress", "default/standby", "on"]);
    write(`$ buoy floatingip egress default/standby on\n${said}`);
  } catch (error) {
    write(`egress failed: ${error instanceof Error ? error.message : String(error)}\n`);
    return { before, after: undefined };
  }
  let after = await seen();
  const deadline = Date.now() + 5000;
  while (after !== DEMO_FLOATING_IP && Date.now() < deadline) {
    await sleep(100, signal);
    after = await seen();
  }
  write(`standby -> external router ${router}, TCP: seen from ${after ?? "(no answer)"}\n`);
  return { before, after };
}

/** Every protocol from every column, columns in parallel, protocols one after another. */
export async function probeMatrix(
  lab: Lab,
  target: string,
  expectedPod: string,
  columns: ConnectivityMatrix["columns"],
): Promise<ConnectivityMatrix> {
  const byColumn = await Promise.all(
    columns.map(async (column) => {
      const results: ProbeResult[] = [];
      for (const protocol of PROBE_PROTOCOLS) {
        results.push(await lab.probe(column.netns, target, protocol, { timeoutMs: 1500 }));
      }
      return results;
    }),
  );
  return {
    target,
    expectedPod,
    columns,
    rows: PROBE_PROTOCOLS.map((protocol, row) => ({
      protocol,
      cells: byColumn.map((results) => results[row] as ProbeResult),
    })),
  };
}

async function waitForProgrammed(
  lab: Lab,
  ip: string,
  signal: AbortSignal | undefined,
): Promise<number | undefined> {
  const started = Date.now();
  while (Date.now() - started < 10_000) {
    const listed = await lab.buoy(["get", "floatingips", ip, "-o", "json"]).catch(() => "{}");
    const parsed = JSON.parse(listed) as { status?: { programmed?: boolean } };
    if (parsed.status?.programmed === true) return Date.now() - started;
    await sleep(100, signal);
  }
  return undefined;
}

async function waitForAnswerFrom(
  lab: Lab,
  ip: string,
  pod: string,
  since: number,
  signal: AbortSignal | undefined,
): Promise<number | undefined> {
  while (Date.now() - since < 5000) {
    const result = await lab.probe("ext", ip, "tcp", { timeoutMs: 300 });
    if (result.ok && result.answeredBy === pod) return Date.now() - since;
    await sleep(50, signal);
  }
  return undefined;
}
