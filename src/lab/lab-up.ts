// `buoy lab up`: labUp() plans the topology (topology.ts), checks what the
// lab needs, creates its state directory and has LabBuilder (lab-builder.ts)
// build it step by step; a step that fails or is aborted takes the whole lab
// down again.
import { randomBytes } from "node:crypto";
import { LabBuilder, type LabUpOptions } from "./lab-builder.js";
import { labDown } from "./lab-down.js";
import { findLabPaths, findMissing } from "./lab-paths.js";
import { listNetns, requireRoot } from "./lab-shell.js";
import { createStateDir, labStateDir, LAB_STATE_ROOT, type LabState } from "./lab-state.js";
import { Lab } from "./lab.js";
import {
  isLabNetns,
  LabError,
  planLabTopology,
  randomLabPrefix,
  validateLabPrefix,
} from "./topology.js";

export type { LabStep, LabUpOptions } from "./lab-builder.js";

/** Builds a lab and returns it running; removes everything it built if a step fails or is aborted. */
export async function labUp(options: LabUpOptions = {}): Promise<Lab> {
  const started = Date.now();
  const prefix = validateLabPrefix(options.prefix ?? randomLabPrefix(randomBytes(2)));
  const topology = planLabTopology({
    prefix,
    nodes: options.nodes ?? 2,
    routing: options.routing ?? "bgp",
    ipv6: options.ipv6 ?? false,
  });
  requireRoot("buoy lab up");
  const paths = findLabPaths();
  const missing = findMissing(paths, topology.routing === "bgp");
  if (missing.length > 0) throw new LabError(`the lab needs ${missing.join(", ")}`);
  const stateRoot = options.stateRoot ?? LAB_STATE_ROOT;
  const dir = labStateDir(prefix, stateRoot);
  const leftovers = (await listNetns()).filter((netns) => isLabNetns(prefix, netns));
  if (leftovers.length > 0) {
    throw new LabError(
      `namespaces of lab ${prefix} exist (${leftovers.join(", ")}): run 'buoy lab down --prefix ${prefix}'`,
    );
  }
  try {
    await createStateDir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") {
      throw new LabError(`lab ${prefix} exists (${dir}): run 'buoy lab down --prefix ${prefix}'`);
    }
    throw new LabError(`cannot create the state directory ${dir}`, { cause: error });
  }
  const state: LabState = {
    version: 1,
    options: {
      prefix,
      nodes: topology.nodes.length,
      routing: topology.routing,
      ipv6: topology.ipv6,
    },
    repo: paths.repo,
    createdAt: new Date().toISOString(),
    phase: "starting",
    features: { agentRouting: false, bgpPeers: false },
    processes: [],
    pods: [],
  };
  const lab = new Lab(topology, dir, paths, state, stateRoot);
  await lab.saveState();
  const builder = new LabBuilder(lab, options, started);
  try {
    await builder.build();
    return lab;
  } catch (error) {
    await labDown(prefix, { stateRoot }).catch(() => {});
    if (options.signal?.aborted) {
      throw new LabError(`interrupted: lab ${prefix} was removed`, { cause: error });
    }
    throw new LabError(`lab ${prefix} did not come up and was removed`, { cause: error });
  }
}
