// Structured JSON-lines logging. The CNI executables must start in a few
// milliseconds, and a logging library costs them ~15 ms per call
// (docs/adr/0001-cni-executable.md), so this is the whole logger: typed
// events, levels, one append at the end of the process.
import {
  appendFileSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { needsRotation, rotatedName, rotatedToRemove, type RotationLimits } from "./rotation.js";

export type LogLevel = "debug" | "info" | "warn" | "error";

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/**
 * Every event, with the `msg` its lines carry (a log aggregator's message
 * field): what happened, in a few words; the fields say the rest.
 */
const MESSAGES = {
  "cni.add": "pod network set up",
  "cni.del": "pod network torn down",
  "cni.check": "pod network checked",
  "cni.gc": "stale attachments released",
  "cni.status": "plugin status checked",
  "cni.version": "versions listed",
  "cni.error": "CNI call failed",
  "cni.rollback": "failed ADD undone",
  "cni.pool": "IP pool problem",
  "ipam.assign": "addresses assigned",
  "ipam.release": "addresses released",
  "floating.claimed": "floating IPs claimed",
  "floating.released": "floating IPs released",
  "agent.lease": "status lease changed",
  "agent.waiting": "floating IP waits for its old node",
  "agent.routing": "routing problem",
  "agent.gc": "leftovers collected",
  "agent.live": "live change applied",
  "agent.event": "Kubernetes Event not written",
  "agent.start": "agent started",
  "agent.switch": "floating IPs switched on or off",
  "agent.watch": "datastore watch changed state",
  "agent.synced": "kernel brought in line",
  "agent.reconciled": "reconcile done",
  "agent.read": "datastore read",
  "agent.kernel-monitor": "kernel monitor changed state",
  "agent.fenced": "announcements withdrawn: no datastore contact",
  "agent.unfenced": "announcements restored",
  "bird.fenced": "BIRD fenced by its watchdog",
  "bird.agent": "agent connected to or left the BIRD watchdog",
  "bird.watchdog": "BIRD watchdog changed state",
  "agent.refused": "floating IP not programmed",
  "agent.networkpolicy": "NetworkPolicy objects present, not enforced",
  "agent.pool": "IP pool problem",
  "agent.error": "agent error",
  "agent.listening": "agent listening",
  "agent.stop": "agent stopped",
  "cni.server": "CNI server changed state",
  "cni.watch": "CNI server watch changed state",
  "agent.cni-server": "CNI server process changed state",
  "webhook.tls": "webhook TLS changed",
  "webhook.config": "webhook configuration changed",
  "webhook.listening": "webhook listening",
  "webhook.review": "admission review answered",
  "webhook.error": "webhook error",
  "webhook.stop": "webhook stopped",
  "controller.start": "controller started",
  "controller.leader": "leadership changed",
  "controller.watch": "controller watch changed state",
  "controller.assigned": "FloatingIP assigned",
  "controller.moved": "FloatingIP moved",
  "controller.released": "FloatingIP address released",
  "controller.egress": "FloatingIP egress changed",
  "controller.allocated": "FloatingIP address allocated from its pool",
  "controller.refused": "FloatingIP not assigned",
  "controller.error": "controller error",
  "controller.record": "record skipped",
  "controller.listening": "controller listening",
  "controller.stop": "controller stopped",
} as const;

export type LogEvent = keyof typeof MESSAGES;

/** The `msg` of an event's lines. */
export function messageOf(event: LogEvent): string {
  return MESSAGES[event];
}

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

export interface FileLoggerOptions {
  clock?: () => Date;
  /** When the file is rotated and which rotated files go (rotation.ts); absent: never. */
  rotation?: RotationLimits;
  /** Where error lines are written too (the CNI runtime logs a plugin's stderr); absent: nowhere. */
  stderrFd?: number;
}

/**
 * Collects the lines and appends them at flush, rotating the file first
 * when they would take it past the size. Two plugins flushing at once may
 * both rotate: the second rename finds nothing and its lines start the new file.
 */
export function createFileLogger(
  path: string,
  minimum: LogLevel,
  base: Record<string, unknown>,
  options: FileLoggerOptions = {},
): Logger {
  const clock = options.clock ?? (() => new Date());
  let lines: string[] = [];
  let errors: string[] = [];
  return {
    log(level, event, fields = {}) {
      if (RANK[level] < RANK[minimum]) return;
      const line = JSON.stringify({
        time: clock().toISOString(),
        level,
        msg: MESSAGES[event],
        event,
        ...base,
        ...fields,
      });
      lines.push(line);
      if (level === "error" && options.stderrFd !== undefined) errors.push(line);
    },
    flush() {
      try {
        if (errors.length > 0 && options.stderrFd !== undefined) {
          writeSync(options.stderrFd, errors.join("\n") + "\n");
        }
      } catch {
        // Nor must stderr.
      }
      errors = [];
      if (lines.length === 0) return;
      const text = lines.join("\n") + "\n";
      lines = [];
      try {
        mkdirSync(dirname(path), { recursive: true });
        if (options.rotation) rotate(path, Buffer.byteLength(text), options.rotation, clock());
        appendFileSync(path, text);
      } catch {
        // Logging must never fail a CNI call.
      }
    },
  };
}

function rotate(path: string, adding: number, limits: RotationLimits, now: Date): void {
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    return; // no file yet
  }
  if (!needsRotation(size, adding, limits)) return;
  const dir = dirname(path);
  try {
    renameSync(path, join(dir, rotatedName(basename(path), now)));
  } catch {
    // Rotated by another plugin a moment ago.
  }
  for (const name of rotatedToRemove(basename(path), readdirSync(dir), limits, now)) {
    rmSync(join(dir, name), { force: true });
  }
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
      const line = { time: clock().toISOString(), level, msg: MESSAGES[event], event, ...fields };
      write(JSON.stringify(line) + "\n");
    },
    flush() {},
  };
}

export const silentLogger: Logger = { log() {}, flush() {} };
