// The labs on this machine: listLabs() by their state directories, openLab()
// one of them as its state file describes it.
import { findLabPaths } from "./lab-paths.js";
import { labStateDir, LAB_STATE_ROOT, listLabPrefixes, readLabState } from "./lab-state.js";
import { Lab } from "./lab.js";
import { LabError, planLabTopology, validateLabPrefix } from "./topology.js";

/** The lab with this prefix, as its state file describes it. */
export async function openLab(prefix: string, stateRoot = LAB_STATE_ROOT): Promise<Lab> {
  validateLabPrefix(prefix);
  const dir = labStateDir(prefix, stateRoot);
  const state = await readLabState(dir);
  if (!state) {
    const labs = await listLabs(stateRoot);
    throw new LabError(
      `no lab ${prefix} on this machine (nothing in ${dir}): ` +
        (labs.length > 0
          ? `the labs are ${labs.join(", ")}`
          : "there are none, 'buoy lab up' makes one"),
    );
  }
  return new Lab(planLabTopology(state.options), dir, findLabPaths(), state, stateRoot);
}

/** Prefixes of the labs on this machine (those with a state directory). */
export async function listLabs(stateRoot = LAB_STATE_ROOT): Promise<string[]> {
  return (await listLabPrefixes(stateRoot)).filter((name) => {
    try {
      validateLabPrefix(name);
      return true;
    } catch {
      return false;
    }
  });
}
