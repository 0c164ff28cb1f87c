// What a fast ping saw: how many answers were lost and the longest time
// without one, from the send and answer times lab-probe.py's `ping` records.
// Pure.
//
// iputils ping is not used: its `-i 0.01` sends every 16 ms on a kernel with a
// coarse timer, where the probe keeps a fixed schedule.

export interface PingSamples {
  intervalMs: number;
  /** When each echo request went out (request N at index N-1), ms from the start. */
  sentAtMs: number[];
  /** [sequence number, when its answer came], ms from the start. */
  replies: [number, number][];
}

export interface PingReport {
  sent: number;
  /** Distinct requests answered. */
  received: number;
  lost: number;
  intervalMs: number;
  /**
   * The longest time without an answer: between consecutive answers, from
   * the first request to the first answer, and from the last answer to one
   * interval after the last request. About one interval when nothing was lost.
   */
  longestGapMs: number;
  /** The unanswered requests' sequence numbers, as ranges "a-b" or "a". */
  lostRanges: string[];
}

export function summarizePing(samples: PingSamples): PingReport {
  const sent = samples.sentAtMs.length;
  const answered = new Map<number, number>();
  for (const [seq, at] of samples.replies) {
    if (seq >= 1 && seq <= sent && !answered.has(seq)) answered.set(seq, at);
  }
  const end = (samples.sentAtMs.at(-1) ?? 0) + samples.intervalMs;
  const times = [0, ...[...answered.values()].sort((a, b) => a - b), end];
  let longest = 0;
  for (let i = 1; i < times.length; i++) {
    longest = Math.max(longest, (times[i] as number) - (times[i - 1] as number));
  }
  const lostRanges: string[] = [];
  let runStart: number | undefined;
  for (let seq = 1; seq <= sent + 1; seq++) {
    const lost = seq <= sent && !answered.has(seq);
    if (lost && runStart === undefined) runStart = seq;
    if (!lost && runStart !== undefined) {
      lostRanges.push(runStart === seq - 1 ? `${runStart}` : `${runStart}-${seq - 1}`);
      runStart = undefined;
    }
  }
  return {
    sent,
    received: answered.size,
    lost: sent - answered.size,
    intervalMs: samples.intervalMs,
    longestGapMs: sent === 0 ? 0 : Math.round(longest),
    lostRanges,
  };
}

/** The probe's JSON line; throws if it is not one. */
export function parsePingSamples(stdout: string): PingSamples {
  const parsed = JSON.parse(stdout.trim().split("\n").at(-1) ?? "") as Partial<PingSamples>;
  if (!Array.isArray(parsed.sentAtMs) || !Array.isArray(parsed.replies)) {
    throw new Error(`not a ping probe's output: ${stdout.slice(0, 200)}`);
  }
  return {
    intervalMs: Number(parsed.intervalMs),
    sentAtMs: parsed.sentAtMs,
    replies: parsed.replies,
  };
}

/** A udpping's answers: which pod answered each request. */
export interface UdpPingReport extends PingReport {
  /** Requests answered by more than one pod: two holders at once (must be 0). */
  answeredByTwo: number;
  /** The pods that answered, in the order they first did. */
  pods: string[];
}

/** The udpping probe's JSON line, summarized; throws if it is not one. */
export function summarizeUdpPing(stdout: string): UdpPingReport {
  const samples = parsePingSamples(stdout);
  const replies = samples.replies as unknown as [number, number, string | null][];
  const byRequest = new Map<number, Set<string>>();
  const pods: string[] = [];
  for (const [seq, , pod] of replies) {
    const name = pod ?? "?";
    let set = byRequest.get(seq);
    if (!set) byRequest.set(seq, (set = new Set()));
    set.add(name);
    if (!pods.includes(name)) pods.push(name);
  }
  const answeredByTwo = [...byRequest.values()].filter((set) => set.size > 1).length;
  const report = summarizePing({
    intervalMs: samples.intervalMs,
    sentAtMs: samples.sentAtMs,
    replies: replies.map(([seq, at]) => [seq, at]),
  });
  return { ...report, answeredByTwo, pods };
}
