// `buoy import calico`: Calico's IP pools and IPAM blocks
// (crd.projectcalico.org/v1) read from the API server and recorded as
// buoy's (calico-objects.ts), so every running pod keeps a unique address
// once buoy's plugin takes over. Pools buoy lacks are created through
// `buoy apply`'s path (its checks: no overlap with buoy's own pools); a pool
// buoy has already is kept. Each block is written through the plugin's own
// block write (its region and affinity records with it, on its
// resourceVersion), merged with buoy's block of the same CIDR when there is
// one; run again, it adds only what is new. Read-only with --dry-run.
import { CliError } from "../cli/cli-error.js";
import type { Resource } from "../cli/manifest.js";
import type { IpPool } from "../model/records.js";
import {
  CALICO_CRD_GROUP,
  CalicoImportError,
  blockRefusal,
  calicoBlock,
  calicoPool,
  liveAllocations,
  mergeBlock,
  type BlockContext,
  type CalicoObject,
} from "./calico-objects.js";
import { readKubeState } from "./kube-state.js";
import { KubeApiError, type KubeHttp } from "./http.js";
import { KubernetesDatastore } from "./kube-datastore.js";
import { applyToKube } from "./kube-writes.js";

export interface ImportReport {
  poolsCreated: string[];
  poolsKept: string[];
  blocksCreated: number;
  blocksMerged: number;
  /** Allocations recorded that buoy did not hold. */
  allocations: number;
  notes: string[];
  /** What was not imported; the command exits 1 when there is any. */
  problems: string[];
}

const ATTEMPTS = 5;

export async function importCalico(
  http: KubeHttp,
  leaseNamespace: string,
  options: { dryRun: boolean; enable: ReadonlySet<string>; progress: (text: string) => void },
): Promise<ImportReport> {
  const [calicoPools, calicoBlocks, state] = await Promise.all([
    listCalico(http, "ippools"),
    listCalico(http, "ipamblocks"),
    readKubeState(http, leaseNamespace),
  ]);
  const report: ImportReport = {
    poolsCreated: [],
    poolsKept: [],
    blocksCreated: 0,
    blocksMerged: 0,
    allocations: 0,
    notes: [],
    problems: [],
  };
  const existing = new Map(state.pools.map(({ value }) => [value.name, value]));
  const created: Resource[] = [];
  for (const object of calicoPools) {
    let pool: IpPool | undefined;
    try {
      const converted = calicoPool(object, options.enable);
      pool = converted.pool;
      report.notes.push(...converted.notes);
    } catch (error) {
      if (!(error instanceof CalicoImportError)) throw error;
      report.problems.push(error.message);
      continue;
    }
    if (!pool) continue;
    const kept = existing.get(pool.name);
    if (kept) {
      report.poolsKept.push(pool.name);
      if (kept.cidr !== pool.cidr) {
        report.problems.push(
          `IP pool ${pool.name}: buoy's has cidr ${kept.cidr}, Calico's ${pool.cidr}; kept buoy's`,
        );
      }
      continue;
    }
    created.push({ kind: "IPPool", pool, source: `Calico IP pool ${pool.name}` });
    report.poolsCreated.push(pool.name);
  }
  for (const name of options.enable) {
    if (!report.poolsCreated.includes(name)) {
      report.problems.push(`--enable ${name}: no Calico IP pool of that name was created`);
    }
  }
  if (created.length > 0 && !options.dryRun) {
    options.progress(`creating ${created.length} IP pool(s)...`);
    await applyToKube(http, leaseNamespace, created, () => {});
  }
  const context: BlockContext = {
    // Only the pools buoy has, or now makes: a refused pool's blocks stay out.
    pools: [
      ...existing.values(),
      ...created.flatMap((resource) => (resource.kind === "IPPool" ? [resource.pool] : [])),
    ],
    blocks: state.blocks.map(({ value }) => value),
    claimed: new Set(state.claims.map(({ value }) => value.ip)),
    nodes: new Set(state.nodes.map(({ value }) => value.name)),
    livePods: new Set(state.livePods ?? []),
  };
  const datastore = new KubernetesDatastore(http, "buoy-import");
  options.progress(`recording the allocations of ${calicoBlocks.length} IPAM block(s)...`);
  for (const object of calicoBlocks) {
    try {
      await importBlock(datastore, object, context, options.dryRun, report);
    } catch (error) {
      // One block's failure (refused, too large for the API server) is
      // reported; the others are still recorded.
      if (error instanceof CalicoImportError) report.problems.push(error.message);
      else if (error instanceof KubeApiError) {
        report.problems.push(`block ${object.metadata.name}: ${error.apiMessage}`);
      } else throw error;
    }
  }
  return report;
}

async function importBlock(
  datastore: KubernetesDatastore,
  object: CalicoObject,
  context: BlockContext,
  dryRun: boolean,
  report: ImportReport,
): Promise<void> {
  const imported = liveAllocations(calicoBlock(object), context.livePods);
  if (Object.keys(imported.allocations).length === 0) return; // nothing to keep
  const refusal = blockRefusal(imported, context);
  if (refusal !== undefined) throw new CalicoImportError(refusal);
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const [stored] = await datastore.readBlocks([imported.cidr]);
    const merged = mergeBlock(stored?.value, imported);
    if (merged.conflicts.length > 0) {
      throw new CalicoImportError(
        `block ${imported.cidr}: ${merged.conflicts.join("; ")}; not imported`,
      );
    }
    if (stored && merged.added === 0) return;
    if (dryRun) {
      count(report, stored === undefined, merged.added);
      return;
    }
    const written = await datastore.writeBlock({
      block: merged.block,
      revision: stored?.revision,
    });
    if (written === "written") {
      count(report, stored === undefined, merged.added);
      return;
    }
    if (written === "overlaps") {
      throw new CalicoImportError(
        `block ${imported.cidr}: buoy has a block of another size overlapping it; not imported`,
      );
    }
    if (written === "claimed") {
      throw new CalicoImportError(
        `block ${imported.cidr}: one of its addresses is a floating IP buoy has a claim for; not imported`,
      );
    }
    // "conflict": changed under us; read again.
  }
  throw new CalicoImportError(`block ${imported.cidr} kept changing; run the import again`);
}

function count(report: ImportReport, created: boolean, added: number): void {
  if (created) report.blocksCreated++;
  else report.blocksMerged++;
  report.allocations += added;
}

async function listCalico(http: KubeHttp, plural: string): Promise<CalicoObject[]> {
  try {
    return (await http.get<{ items: CalicoObject[] }>(`/apis/${CALICO_CRD_GROUP}/${plural}`)).items;
  } catch (error) {
    if (error instanceof KubeApiError && error.reason === "NotFound") {
      throw new CliError(
        `the API server serves no ${plural}.${CALICO_CRD_GROUP.split("/")[0]}: is Calico installed with the kubernetes datastore?`,
      );
    }
    throw error;
  }
}
