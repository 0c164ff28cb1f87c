// A lab's state directory, /run/buoy-lab/<prefix>/: state.json (options,
// processes, pods), one pid file and one log per process, etcd's data, the
// node conflists and BIRD configs. Written whole at every change (write, then
// rename), so a reader never sees half a file; changed under a lock file, so
// two lab commands at once (`buoy lab pod add ... &`) do not lose each other's
// change.
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { isAlive, sleep } from "./lab-shell.js";
import { LabError, type LabOptions } from "./topology.js";

export const LAB_STATE_ROOT = "/run/buoy-lab";

export interface LabProcess {
  /** Stable name: etcd, agent-node-1, bird-node-1, bird-tor, responder-1-web. */
  name: string;
  netns: string;
  pid: number;
  log: string;
  argv: string[];
}

export interface LabPod {
  /** 1-based node number. */
  node: number;
  nodeName: string;
  /** The pod's name; `namespace/name` is how buoy's CLI names it. */
  name: string;
  namespace: string;
  netns: string;
  containerID: string;
  /** The pod's own addresses (from the CNI result), without prefix length. */
  ips: string[];
  /** The floating IPs asked for in the annotation at ADD. */
  floatingIps: string[];
  /** Opted in to egress from its floating IPs (buoy.dev/floating-ip-egress). */
  egress?: boolean;
  /** Its labels; a pod with labels has a Pod record FloatingIPs select from. */
  labels?: Record<string, string>;
  /** When it was added (RFC 3339): its Pod record's creationTimestamp. */
  createdAt?: string;
}

/** What the buoy build in use supports (the routing work lands in steps). */
export interface LabFeatures {
  /** `buoy agent --routing` and `--bird-config`/`--bird-socket`. */
  agentRouting: boolean;
  /** `buoy apply` knows kind BGPPeer. */
  bgpPeers: boolean;
}

export interface LabState {
  version: 1;
  options: LabOptions;
  /** The buoy checkout whose dist/ the lab runs. */
  repo: string;
  createdAt: string;
  phase: "starting" | "up" | "failed";
  features: LabFeatures;
  processes: LabProcess[];
  pods: LabPod[];
}

export function labStateDir(prefix: string, root = LAB_STATE_ROOT): string {
  return join(root, prefix);
}

/** Creates the state directory; fails with EEXIST if it exists (a lab of that prefix is up or half-down). */
export async function createStateDir(dir: string): Promise<void> {
  await mkdir(join(dir, ".."), { recursive: true });
  await mkdir(dir); // EEXIST: a lab with this prefix exists
  await mkdir(join(dir, "logs"));
}

export async function writeLabState(dir: string, state: LabState): Promise<void> {
  const path = join(dir, "state.json");
  await writeFile(`${path}.tmp`, JSON.stringify(state, null, 2) + "\n");
  await rename(`${path}.tmp`, path);
}

export async function readLabState(dir: string): Promise<LabState | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, "state.json"), "utf8")) as LabState;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/** A lock held longer than this is a leftover: a change holds it for milliseconds. */
const STATE_LOCK_STALE_MS = 10_000;
const STATE_LOCK_WAIT_MS = 15_000;

/**
 * Runs `change` holding `<dir>/state.lock` (created exclusively, holding the
 * PID): read state.json, change it, write it back, with no other lab command
 * in between. A lock whose process is gone, or older than 10 s, is taken over.
 */
export async function withStateLock<T>(dir: string, change: () => Promise<T>): Promise<T> {
  const path = join(dir, "state.lock");
  const deadline = Date.now() + STATE_LOCK_WAIT_MS;
  for (;;) {
    try {
      const handle = await open(path, "wx");
      try {
        await handle.writeFile(`${process.pid}\n`);
      } finally {
        await handle.close();
      }
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    if (await isStaleLock(path)) {
      await rm(path, { force: true });
      continue;
    }
    if (Date.now() > deadline) {
      throw new LabError(`${path} stayed locked for ${STATE_LOCK_WAIT_MS} ms`);
    }
    await sleep(10);
  }
  try {
    return await change();
  } finally {
    await rm(path, { force: true });
  }
}

async function isStaleLock(path: string): Promise<boolean> {
  try {
    const [text, info] = await Promise.all([readFile(path, "utf8"), stat(path)]);
    const pid = Number(text.trim());
    // An empty file is a lock being written this instant: judged by age alone.
    if (Number.isInteger(pid) && pid > 0 && !isAlive(pid)) return true;
    return Date.now() - info.mtimeMs > STATE_LOCK_STALE_MS;
  } catch {
    return false; // gone meanwhile: try again
  }
}

export async function writePidFile(dir: string, name: string, pid: number): Promise<void> {
  await writeFile(join(dir, `${name}.pid`), `${pid}\n`);
}

/** PIDs from every `*.pid` file in the state directory. */
export async function readPidFiles(dir: string): Promise<number[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const pids = await Promise.all(
    names
      .filter((name) => name.endsWith(".pid"))
      .map(async (name) => Number((await readFile(join(dir, name), "utf8")).trim())),
  );
  return pids.filter((pid) => Number.isInteger(pid) && pid > 0);
}

/** Prefixes of the labs with a state directory under root. */
export async function listLabPrefixes(root = LAB_STATE_ROOT): Promise<string[]> {
  try {
    return (await readdir(root, { withFileTypes: true }))
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name)
      .sort();
  } catch {
    return [];
  }
}

export async function removeStateDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}
