import { describe, expect, it } from "vitest";
import { renderConnectivityMatrix, renderMatrixCell } from "./connectivity-matrix.js";
import type { ProbeProtocol, ProbeResult } from "./probe-result.js";

const result = (protocol: ProbeProtocol, extra: Partial<ProbeResult>): ProbeResult => ({
  protocol,
  from: "lab1-ext",
  to: "203.0.113.10",
  ok: true,
  ...extra,
});

describe("the connectivity matrix", () => {
  it.each([
    {
      desc: "an answer shows the source the pod saw",
      cell: { seenSource: "192.168.200.254", answeredBy: "web" },
      text: "ok 192.168.200.254",
    },
    {
      desc: "another pod answering is named",
      cell: { seenSource: "10.244.0.1", answeredBy: "standby" },
      text: "ok 10.244.0.1 (by standby)",
    },
    {
      desc: "a timeout is no answer",
      cell: { ok: false, error: "timed out" },
      text: "FAIL no answer",
    },
    {
      desc: "a refused connection",
      cell: { ok: false, error: "[Errno 111] Connection refused" },
      text: "FAIL refused",
    },
  ])("renderMatrixCell() $desc", ({ cell, text }) => {
    expect(renderMatrixCell(result("tcp", cell), "web")).toBe(text);
  });

  it("renderConnectivityMatrix() has a row per protocol, a column per place, and a count", () => {
    const text = renderConnectivityMatrix({
      target: "203.0.113.10",
      expectedPod: "web",
      columns: [
        { title: "external client", netns: "lab1-ext" },
        { title: "web itself", netns: "lab1-1-web" },
      ],
      rows: [
        {
          protocol: "icmp",
          cells: [
            result("icmp", { seenSource: "192.168.200.254", answeredBy: "web" }),
            result("icmp", { seenSource: "203.0.113.10", answeredBy: "web" }),
          ],
        },
        {
          protocol: "raw253",
          cells: [
            result("raw253", { ok: false, error: "timed out" }),
            result("raw253", { seenSource: "203.0.113.10", answeredBy: "web" }),
          ],
        },
      ],
    });
    expect(text).toBe(
      [
        "to 203.0.113.10; each cell: the source address web saw",
        "              EXTERNAL CLIENT     WEB ITSELF",
        "ICMP echo     ok 192.168.200.254  ok 203.0.113.10",
        "IP proto 253  FAIL no answer      ok 203.0.113.10",
        "3 of 4 answered",
        "",
      ].join("\n"),
    );
  });
});
