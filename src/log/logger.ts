// Structured JSON-lines logging. The CNI executables must start in a few
// milliseconds, and a logging library costs them ~15 ms per call
// (docs/adr/0001-cni-executable.md), so this is the whole logger: typed
// events, levels, one append at the end of the process.
import { appendFileSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";

export type LogLevel = "debug" | "info" | "warn" | "error";

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogEvent =
  | "cni.add"
  | "cni.del"
  | "cni.check"
  | "cni.gc"
  | "cni.status"
  | "cni.version"
  | "cni.error"
  | "cni.rollback"
  | "cni.pool"
  | "ipam.assign"
  | "ipam.release"
  | "floating.claimed"
  | "floating.released"
  | "agent.lease"
  | "agent.waiting"
  | "agent.routing"
  | "agent.gc"
  | "agent.live"
  | "agent.event"
  | "agent.start"
  | "agent.switch"
  | "agent.watch"
  | "agent.synced"
  | "agent.reconciled"
  | "agent.read"
  | "agent.kernel-monitor"
  | "agent.fenced"
  | "agent.unfenced"
  | "bird.fenced"
  | "bird.agent"
  | "bird.watchdog"
  | "agent.refused"
  | "agent.networkpolicy"
  | "agent.pool"
  | "agent.error"
  | "agent.listening"
  | "agent.stop"
  | "cni.server"
  | "cni.watch"
  | "agent.cni-server"
  | "webhook.tls"
  | "webhook.config"
  | "webhook.listening"
  | "webhook.review"
  | "webhook.error"
  | "webhook.stop"
  | "controller.start"
  | "controller.leader"
  | "controller.watch"
  | "controller.assigned"
  | "controller.moved"
  | "controller.released"
  | "controller.egress"
  | "controller.allocated"
  | "controller.refused"
  | "controller.error"
  | "controller.record"
  | "controller.listening"
  | "controller.stop";

export interface Logger {
  log(level: LogLevel, event: LogEvent, fields?: Record<string, unknown>): void;
  /** Writes what was logged so far; never throws. */
  flush(): void;
}

export function parseLogLevel(text: string | undefined): LogLevel {
  const level = (text ?? "info").toLowerCase();
  if (level === "warning") return "warn";
  if (level === "none") return "error";
  return level in RANK ? (level as LogLevel) : "info";
}

export function createFileLogger(
  path: string,
  minimum: LogLevel,
  base: Record<string, unknown>,
  clock: () => Date = () => new Date(),
): Logger {
  let lines: string[] = [];
  return {
    log(level, event, fields = {}) {
      if (RANK[level] < RANK[minimum]) return;
      lines.push(JSON.stringify({ time: clock().toISOString(), level, event, ...base, ...fields }));
    },
    flush() {
      if (lines.length === 0) return;
      try {
        mkdirSync(dirname(path), { recursive: true });
        appendFileSync(path, lines.join("\n") + "\n");
      } catch {
        // Logging must never fail a CNI call.
      }
      lines = [];
    },
  };
}

/** Writes each event as it happens (the agent: one JSON line per event). */
export function createStreamLogger(
  write: (line: string) => void,
  minimum: LogLevel,
  clock: () => Date = () => new Date(),
): Logger {
  return {
    log(level, event, fields = {}) {
      if (RANK[level] < RANK[minimum]) return;
      write(JSON.stringify({ time: clock().toISOString(), level, event, ...fields }) + "\n");
    },
    flush() {},
  };
}

export const silentLogger: Logger = { log() {}, flush() {} };
