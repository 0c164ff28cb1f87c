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
