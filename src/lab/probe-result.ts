// One probe's outcome, read from lab-probe.py's JSON line. Pure.

export const PROBE_PROTOCOLS = ["icmp", "tcp", "udp", "raw253"] as const;
export type ProbeProtocol = (typeof PROBE_PROTOCOLS)[number];

export interface ProbeResult {
  protocol: ProbeProtocol;
  /** The namespace the probe was sent from. */
  from: string;
  to: string;
  ok: boolean;
  /** The source address of the answer, as the sender saw it. */
  replyFrom?: string;
  /** The responder's name: the pod that answered. */
  answeredBy?: string;
  /** The source address the responder saw: who it thinks asked. */
  seenSource?: string;
  /** The destination address the responder saw (after any NAT on the way). */
  seenDestination?: string;
  rttMs?: number;
  /** Why there was no answer. */
  error?: string;
}

interface ProbeLine {
  ok?: boolean;
  replyFrom?: string;
  rttMs?: number;
  error?: string;
  answer?: { pod?: string; peer?: string; local?: string } | null;
}

export function parseProbeResult(
  protocol: ProbeProtocol,
  from: string,
  to: string,
  stdout: string,
): ProbeResult {
  const line = stdout.trim().split("\n").at(-1) ?? "";
  let parsed: ProbeLine;
  try {
    parsed = JSON.parse(line) as ProbeLine;
  } catch {
    return { protocol, from, to, ok: false, error: line || "the probe printed nothing" };
  }
  if (parsed.ok !== true) {
    return { protocol, from, to, ok: false, error: parsed.error ?? "no answer" };
  }
  const answer = parsed.answer ?? undefined;
  return {
    protocol,
    from,
    to,
    ok: true,
    ...(parsed.replyFrom !== undefined ? { replyFrom: parsed.replyFrom } : {}),
    ...(answer?.pod !== undefined ? { answeredBy: answer.pod } : {}),
    ...(answer?.peer !== undefined ? { seenSource: answer.peer } : {}),
    ...(answer?.local !== undefined && answer.local !== "-"
      ? { seenDestination: answer.local }
      : {}),
    ...(parsed.rttMs !== undefined ? { rttMs: parsed.rttMs } : {}),
  };
}

/**
 * `buoy lab probe`'s answer: who answered, the source address of the answer,
 * and the addresses the answering pod saw; or one line saying there was none.
 * `from` is the place as the user named it (ext, node-1, a pod).
 */
export function renderProbeResult(result: ProbeResult, from: string): string {
  const heading = `${result.protocol} from ${from} to ${result.to}`;
  if (!result.ok) return `${heading}: no answer (${result.error ?? "no reason given"})\n`;
  const rtt = result.rttMs !== undefined ? ` in ${result.rttMs} ms` : "";
  const who = result.answeredBy ?? "the pod";
  const lines: [string, string][] = [["reply source", result.replyFrom ?? "?"]];
  if (result.seenSource !== undefined) lines.push([`source ${who} saw`, result.seenSource]);
  if (result.seenDestination !== undefined) {
    lines.push([`destination ${who} saw`, result.seenDestination]);
  }
  const width = Math.max(...lines.map(([label]) => label.length)) + 1;
  return (
    (result.answeredBy !== undefined
      ? `${heading}: ${result.answeredBy} answered${rtt}\n`
      : `${heading}: answered${rtt}, by no lab responder (nothing noted the request)\n`) +
    lines.map(([label, value]) => `  ${`${label}:`.padEnd(width)} ${value}\n`).join("")
  );
}
