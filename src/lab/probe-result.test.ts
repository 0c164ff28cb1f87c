import { describe, expect, it } from "vitest";
import { parseProbeResult, renderProbeResult } from "./probe-result.js";

describe("probe results", () => {
  it.each([
    {
      desc: "an answer: who answered and what it saw",
      stdout:
        '{"ok": true, "replyFrom": "203.0.113.10", "answer": {"pod": "web", "peer": "10.244.0.2", "local": "10.244.0.5", "request": "hello-tcp"}, "rttMs": 1.5}\n',
      expected: {
        ok: true,
        replyFrom: "203.0.113.10",
        answeredBy: "web",
        seenSource: "10.244.0.2",
        seenDestination: "10.244.0.5",
        rttMs: 1.5,
      },
    },
    {
      desc: "UDP: the responder does not know its local address",
      stdout:
        '{"ok": true, "replyFrom": "203.0.113.10", "answer": {"pod": "web", "peer": "192.168.200.254", "local": "-"}, "rttMs": 2}',
      expected: {
        ok: true,
        replyFrom: "203.0.113.10",
        answeredBy: "web",
        seenSource: "192.168.200.254",
        rttMs: 2,
      },
    },
    {
      desc: "ICMP answered by the kernel, the responder's note not found",
      stdout: '{"ok": true, "replyFrom": "203.0.113.10", "answer": null, "rttMs": 0.3}',
      expected: { ok: true, replyFrom: "203.0.113.10", rttMs: 0.3 },
    },
    {
      desc: "no answer",
      stdout: '{"ok": false, "error": "timed out"}',
      expected: { ok: false, error: "timed out" },
    },
    {
      desc: "not JSON: the output is the error",
      stdout: "Traceback (most recent call last)",
      expected: { ok: false, error: "Traceback (most recent call last)" },
    },
  ])("parseProbeResult() $desc", ({ stdout, expected }) => {
    const result = parseProbeResult("tcp", "lab1-ext", "203.0.113.10", stdout);
    expect(result).toEqual({ protocol: "tcp", from: "lab1-ext", to: "203.0.113.10", ...expected });
  });

  it.each([
    {
      desc: "TCP: who answered, the reply's source and the addresses the pod saw",
      protocol: "tcp" as const,
      stdout:
        '{"ok": true, "replyFrom": "203.0.113.10", "answer": {"pod": "web", "peer": "192.168.200.254", "local": "10.244.0.65"}, "rttMs": 1.5}',
      expected:
        "tcp from ext to 203.0.113.10: web answered in 1.5 ms\n" +
        "  reply source:        203.0.113.10\n" +
        "  source web saw:      192.168.200.254\n" +
        "  destination web saw: 10.244.0.65\n",
    },
    {
      desc: "ICMP answered by a namespace without a responder (a node's own address)",
      protocol: "icmp" as const,
      stdout: '{"ok": true, "replyFrom": "192.168.200.11", "answer": null, "rttMs": 0.3}',
      expected:
        "icmp from ext to 203.0.113.10: answered in 0.3 ms, by no lab responder (nothing noted the request)\n" +
        "  reply source: 192.168.200.11\n",
    },
    {
      desc: "no answer: why",
      protocol: "udp" as const,
      stdout: '{"ok": false, "error": "timed out"}',
      expected: "udp from ext to 203.0.113.10: no answer (timed out)\n",
    },
  ])("renderProbeResult() $desc", ({ protocol, stdout, expected }) => {
    const result = parseProbeResult(protocol, "lab1-ext", "203.0.113.10", stdout);
    expect(renderProbeResult(result, "ext")).toBe(expected);
  });
});
