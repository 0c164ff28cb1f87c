// The lab's shell: commands inside the lab's network namespaces, detached
// processes (own session and process group, output to a log file, the lab's
// marker in their environment), finding and stopping them by PID, and the
// check that the lab command runs as root.
// Everything here names a namespace explicitly; nothing runs a network command
// in the namespace the lab command itself runs in.
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { CommandError, runCommand, type CommandOutput, type RunOptions } from "../exec/command.js";
import { LabError } from "./topology.js";

/** Environment variable every process the lab starts carries: BUOY_LAB=<prefix>. */
export const LAB_MARKER = "BUOY_LAB";

export function runInNetns(
  netns: string,
  argv: readonly string[],
  options: RunOptions = {},
): Promise<CommandOutput> {
  return runCommand(["ip", "netns", "exec", netns, ...argv], options);
}

/** `ip -n <netns> -batch -`: one ip invocation for many changes, stopping at the first error. */
export async function applyIpBatch(netns: string, lines: readonly string[]): Promise<void> {
  if (lines.length === 0) return;
  await runCommand(["ip", "-n", netns, "-batch", "-"], { input: lines.join("\n") + "\n" });
}

export interface DetachedOptions {
  /** Standard output and error are appended here. */
  logPath: string;
  /** The lab's prefix, recorded as BUOY_LAB in the process's environment. */
  marker: string;
}

/**
 * Starts argv inside netns as a session leader of its own (so a terminal's
 * Ctrl-C does not reach it and it outlives the lab command) and resolves to
 * its PID. setsid(1) does not fork here, because a background job of a
 * non-interactive sh is not a process-group leader: $! is the process itself.
 */
export async function startDetachedInNetns(
  netns: string,
  argv: readonly string[],
  options: DetachedOptions,
): Promise<number> {
  const script = 'log=$1; shift; setsid "$@" </dev/null >>"$log" 2>&1 & echo $!';
  const { stdout } = await runInNetns(netns, ["sh", "-c", script, "sh", options.logPath, ...argv], {
    env: { ...process.env, [LAB_MARKER]: options.marker },
  });
  const pid = Number(stdout.trim());
  if (!Number.isInteger(pid) || pid <= 0) {
    throw new CommandError(argv, null, stdout, `could not start in ${netns}: no PID`);
  }
  return pid;
}

/** Names of all network namespaces (`ip netns list`). */
export async function listNetns(): Promise<string[]> {
  const { stdout } = await runCommand(["ip", "netns", "list"]);
  return stdout
    .split("\n")
    .map((line) => line.trim().split(/\s+/)[0] ?? "")
    .filter((name) => name !== "");
}

export async function netnsPids(netns: string): Promise<number[]> {
  try {
    const { stdout } = await runCommand(["ip", "netns", "pids", netns]);
    return stdout
      .split(/\s+/)
      .filter(Boolean)
      .map(Number)
      .filter((pid) => Number.isInteger(pid) && pid > 0);
  } catch {
    return [];
  }
}

export async function createNetns(netns: string): Promise<void> {
  await runCommand(["ip", "netns", "add", netns]);
  await runCommand(["ip", "-n", netns, "link", "set", "lo", "up"]);
}

/** Deletes the namespace; one that is already gone is fine. */
export async function deleteNetns(netns: string): Promise<void> {
  try {
    await runCommand(["ip", "netns", "del", netns]);
  } catch (error) {
    if (!(await listNetns()).includes(netns)) return;
    throw error;
  }
}

/** Whether the process exists and is not a zombie waiting for a parent that may never reap it. */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    // pid (comm) state ...: comm may hold spaces and parentheses, the state follows the last ')'.
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** Whether pid is alive and carries BUOY_LAB=<marker>: a PID from a pid file, not reused since. */
export async function carriesMarker(pid: number, marker: string): Promise<boolean> {
  try {
    const environ = await readFile(`/proc/${pid}/environ`, "latin1");
    return environ.split("\0").includes(`${LAB_MARKER}=${marker}`);
  } catch {
    return false;
  }
}

export function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // already gone
  }
}

/** SIGTERM, then SIGKILL what is still alive after graceMs. Resolves once all are gone. */
export async function stopPids(pids: readonly number[], graceMs = 3000): Promise<void> {
  const unique = [...new Set(pids)].filter((pid) => pid !== process.pid);
  for (const pid of unique) signal(pid, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (unique.some(isAlive) && Date.now() < deadline) await sleep(50);
  for (const pid of unique.filter(isAlive)) signal(pid, "SIGKILL");
  const killDeadline = Date.now() + 2000;
  while (unique.some(isAlive) && Date.now() < killDeadline) await sleep(20);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** The last `lines` lines of a log file ("" when there is none). */
export async function readLogTail(path: string, lines = 12): Promise<string> {
  try {
    const text = await readFile(path, "utf8");
    return text.trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

export function requireRoot(what: string): void {
  if (process.getuid?.() !== 0) {
    throw new LabError(`${what} needs root: the lab is made of network namespaces`);
  }
}
