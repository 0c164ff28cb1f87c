// The demo's connectivity matrix: one row per protocol, one column per place
// a probe was sent from, each cell what the target pod saw. Pure.
import { renderTable } from "../text/table.js";
import type { ProbeProtocol, ProbeResult } from "./probe-result.js";

export interface MatrixColumn {
  /** Column header: where the probes come from. */
  title: string;
  /** The namespace they are sent from. */
  netns: string;
}

export interface ConnectivityMatrix {
  /** The address probed. */
  target: string;
  /** The pod expected to answer; another pod answering is shown in the cell. */
  expectedPod: string;
  columns: MatrixColumn[];
  rows: { protocol: ProbeProtocol; cells: ProbeResult[] }[];
}

const PROTOCOL_TITLES: Record<ProbeProtocol, string> = {
  icmp: "ICMP echo",
  tcp: "TCP 7000",
  udp: "UDP 7000",
  raw253: "IP proto 253",
};

/** A cell: `ok <source the pod saw>` (and the answering pod if unexpected), or `FAIL <why>`. */
export function renderMatrixCell(result: ProbeResult, expectedPod: string): string {
  if (!result.ok) return `FAIL ${shortError(result.error ?? "no answer")}`;
  const seen = result.seenSource ?? "?";
  const by =
    result.answeredBy !== undefined && result.answeredBy !== expectedPod
      ? ` (by ${result.answeredBy})`
      : "";
  return `ok ${seen}${by}`;
}

export function renderConnectivityMatrix(matrix: ConnectivityMatrix): string {
  const table = renderTable(
    ["", ...matrix.columns.map((column) => column.title.toUpperCase())],
    matrix.rows.map((row) => [
      PROTOCOL_TITLES[row.protocol],
      ...row.cells.map((cell) => renderMatrixCell(cell, matrix.expectedPod)),
    ]),
  );
  const passed = matrix.rows.flatMap((row) => row.cells).filter((cell) => cell.ok).length;
  const total = matrix.rows.reduce((sum, row) => sum + row.cells.length, 0);
  return (
    `to ${matrix.target}; each cell: the source address ${matrix.expectedPod} saw\n` +
    table +
    `${passed} of ${total} answered\n`
  );
}

function shortError(error: string): string {
  if (/timed out|timeout|no answer|no echo reply/i.test(error)) return "no answer";
  if (/refused/i.test(error)) return "refused";
  if (/unreachable/i.test(error)) return "unreachable";
  return error.length > 24 ? `${error.slice(0, 23)}…` : error;
}
