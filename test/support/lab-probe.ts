// src/lab/lab-probe.py driven from a test: one request from a network
// namespace (`send`), or a fixed-rate ping whose samples ping-report.ts
// summarizes (the longest time without an answer, the losses).
import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { parsePingSamples, summarizePing, type PingReport } from "../../src/lab/ping-report.js";
import { ROOT } from "./harness.js";

export const PYTHON = "/usr/bin/python3";
export const LAB_PROBE = join(ROOT, "src/lab/lab-probe.py");

export interface Probe {
  ok: boolean;
  replyFrom?: string;
  answer?: { pod?: string; peer?: string; local?: string };
}

/** One lab-probe.py request from `netns` (ip netns exec); `seenLog` as the responders have it. */
export function probe(
  netns: string,
  protocol: string,
  to: string,
  seenLog: string,
): Probe & { output: string } {
  const result = spawnSync(
    "ip",
    ["netns", "exec", netns, PYTHON, LAB_PROBE, "send", protocol, to, "2", seenLog],
    { encoding: "utf8" },
  );
  const output = `${result.stdout}${result.stderr}`;
  try {
    return { ...(JSON.parse(result.stdout.trim().split("\n").at(-1) ?? "") as Probe), output };
  } catch {
    return { ok: false, output };
  }
}

export interface Pinger {
  /** The summary once the probe has run its `seconds`. */
  done: Promise<PingReport>;
  /** Kills it if it still runs (for afterAll). */
  stop(): void;
}

/** Pings `to` from `netns` every `intervalMs` for `seconds` (lab-probe.py ping). */
export function startPinger(netns: string, to: string, seconds: number, intervalMs = 10): Pinger {
  const child = spawn(
    "ip",
    ["netns", "exec", netns, PYTHON, LAB_PROBE, "ping", to, String(seconds), String(intervalMs)],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  let errors = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (errors += chunk.toString()));
  const done = new Promise<PingReport>((resolve, reject) =>
    child.on("close", () => {
      try {
        resolve(summarizePing(parsePingSamples(output)));
      } catch (error) {
        reject(new Error(`${String(error)}; stderr: ${errors.slice(0, 500)}`));
      }
    }),
  );
  return {
    done,
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
  };
}
