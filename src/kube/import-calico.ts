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
import { apiPaths } from "./api-paths.js";
import {
  CALICO_CRD_GROUP,
  CalicoImportError,
  calicoBlock,
  calicoPool,
  mergeBlock,
  type CalicoObject,
} from "./calico-objects.js";
import { KubeApiError, type KubeHttp } from "./http.js";
import { KubernetesDatastore } from "./kube-datastore.js";
import { applyToKube } from "./kube-writes.js";
import { poolFromObject, type KubeObject } from "./objects.js";

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
  options: { dryRun: boolean; progress: (text: string) => void },
): Promise<ImportReport> {
  const [calicoPools, calicoBlocks, buoyPools] = await Promise.all([
    listCalico(http, "ippools"),
    listCalico(http, "ipamblocks"),
    http.get<{ items: KubeObject[] }>(apiPaths.pools),
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
  const existing = new Map(buoyPools.items.map((object) => [object.metadata.name, object]));
  const created: Resource[] = [];
  for (const object of calicoPools) {
    let pool: IpPool;
    try {
      const converted = calicoPool(object);
      pool = converted.pool;
      report.notes.push(...converted.notes);
    } catch (error) {
      if (!(error instanceof CalicoImportError)) throw error;
      report.problems.push(error.message);
      continue;
    }
    const kept = existing.get(pool.name);
    if (kept) {
      report.poolsKept.push(pool.name);
      const cidr = safePoolCidr(kept);
      if (cidr !== pool.cidr) {
        report.problems.push(
          `IP pool ${pool.name}: buoy's has cidr ${cidr ?? "(invalid)"}, Calico's ${pool.cidr}; kept buoy's`,
        );
      }
      continue;
    }
    created.push({ kind: "IPPool", pool, source: `Calico IP pool ${pool.name}` });
    report.poolsCreated.push(pool.name);
  }
  if (created.length > 0 && !options.dryRun) {
    options.progress(`creating ${created.length} IP pool(s)...`);
    await applyToKube(http, leaseNamespace, created, () => {});
  }
  const datastore = new KubernetesDatastore(http, "buoy-import");
  options.progress(`recording the allocations of ${calicoBlocks.length} IPAM block(s)...`);
  for (const object of calicoBlocks) {
    try {
      await importBlock(datastore, object, options.dryRun, report);
    } catch (error) {
      if (!(error instanceof CalicoImportError)) throw error;
      report.problems.push(error.message);
    }
  }
  return report;
}

async function importBlock(
  datastore: KubernetesDatastore,
  object: CalicoObject,
  dryRun: boolean,
  report: ImportReport,
): Promise<void> {
  const imported = calicoBlock(object);
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const [stored] = await datastore.readBlocks([imported.cidr]);
    const merged = mergeBlock(stored?.value, imported);
    for (const conflict of merged.conflicts) {
      report.problems.push(`block ${imported.cidr}: ${conflict}`);
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

function safePoolCidr(object: KubeObject): string | undefined {
  try {
    return poolFromObject(object).cidr;
  } catch {
    return undefined;
  }
}
