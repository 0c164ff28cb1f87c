// `buoy lab down`: labDown() removes everything of a lab by its prefix, with
// or without its state directory, so also what a crashed `up` left behind.
import { existsSync } from "node:fs";
import { carriesMarker, deleteNetns, listNetns, netnsPids, stopPids } from "./lab-shell.js";
import { labStateDir, LAB_STATE_ROOT, readPidFiles, removeStateDir } from "./lab-state.js";
import { isLabNetns, validateLabPrefix } from "./topology.js";

export interface LabDownReport {
  prefix: string;
  namespaces: string[];
  /** Processes stopped. */
  processes: number;
  stateDir: string;
  stateDirExisted: boolean;
}

/**
 * Removes everything of the lab with this prefix, with or without its state:
 * stops the processes it started (PIDs from its pid files that still carry
 * its marker, and every process inside its namespaces), deletes every
 * namespace named `<prefix>-*`, then the state directory.
 */
export async function labDown(
  prefix: string,
  options: { stateRoot?: string } = {},
): Promise<LabDownReport> {
  validateLabPrefix(prefix);
  const dir = labStateDir(prefix, options.stateRoot ?? LAB_STATE_ROOT);
  const stateDirExisted = existsSync(dir);
  const namespaces = (await listNetns()).filter((netns) => isLabNetns(prefix, netns));
  const fromFiles: number[] = [];
  for (const pid of await readPidFiles(dir)) {
    if (await carriesMarker(pid, prefix)) fromFiles.push(pid);
  }
  const inNamespaces = (await Promise.all(namespaces.map(netnsPids))).flat();
  const pids = [...new Set([...fromFiles, ...inNamespaces])].filter(
    (pid) => pid !== process.pid && pid !== process.ppid,
  );
  await stopPids(pids);
  // Anything a dying process started meanwhile.
  const late = (await Promise.all(namespaces.map(netnsPids))).flat();
  await stopPids(late.filter((pid) => pid !== process.pid && pid !== process.ppid));
  await Promise.all(namespaces.map(deleteNetns));
  await removeStateDir(dir);
  return { prefix, namespaces, processes: pids.length, stateDir: dir, stateDirExisted };
}
