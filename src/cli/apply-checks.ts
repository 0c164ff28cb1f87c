// What `buoy apply` refuses before it writes anything, on either datastore:
// a resource defined twice, a pool that overlaps another, a cidr or
// blockSize change under allocated addresses or floating-IP claims, and a
// FloatingIP the controller would refuse (its address outside every pool, in
// a pool its namespace may not use, another FloatingIP's; a pool that does
// not exist or that its namespace may not use). Pure.
import type { DatastoreState } from "../datastore/datastore-state.js";
import { poolToAllocateFrom } from "../failover/pool-address.js";
import type { FloatingIpRecord } from "../failover/floating-ip.js";
import { FloatingIpError } from "../floating/annotation.js";
import { validateInPools, validatePoolNamespaces } from "../floating/validate.js";
import { poolPrefix } from "../ipam/pool.js";
import { validatePoolChange } from "../ipam/pool-change.js";
import type { IpPool, IpamBlock, Versioned } from "../model/records.js";
import type { Labels } from "../model/selector.js";
import { CliError } from "./cli-error.js";
import type { AppliedFloatingIp } from "./manifest-failover.js";
import { resourceName, type Resource } from "./manifest.js";
import { ipInPrefix, poolUsage, type PoolUsage } from "./pool-usage.js";

export interface CheckedApply {
  /** The pools as they will be once applied: the stored ones, replaced by the file's. */
  pools: IpPool[];
  /** Per applied pool that exists already: its old blocks no address is left in, for a geometry change. */
  emptyBlocksAfter: Map<string, Versioned<IpamBlock>[]>;
}

/** Throws CliError for the first thing refused; returns what the writes need. */
export function checkApply(state: DatastoreState, resources: readonly Resource[]): CheckedApply {
  refuseDuplicates(resources);
  const applied = resources.flatMap((resource) =>
    resource.kind === "IPPool" ? [resource.pool] : [],
  );
  const appliedNames = new Set(applied.map((pool) => pool.name));
  const pools = [
    ...state.pools.map((pool) => pool.value).filter((pool) => !appliedNames.has(pool.name)),
    ...applied,
  ];
  const existingPools = new Map(state.pools.map((pool) => [pool.value.name, pool.value]));
  const emptyBlocksAfter = new Map<string, Versioned<IpamBlock>[]>();
  for (const pool of applied) {
    const existing = existingPools.get(pool.name);
    const usage = existing && poolUsage(existing, state.blocks, state.claims);
    const refusal = validatePoolChange(pool, pools, existing, {
      blocks: usage?.usedBlocks.length ?? 0,
      addresses: usage?.allocatedCount ?? 0,
    });
    if (refusal !== undefined) throw new CliError(refusal);
    if (existing && usage) emptyBlocksAfter.set(pool.name, geometryChange(existing, pool, usage));
  }
  for (const resource of resources) {
    if (resource.kind === "FloatingIP") {
      checkFloatingIp(state, resource.floatingIp, resources, pools);
    }
  }
  return { pools, emptyBlocksAfter };
}

/** The labels of `namespace`: the file's Namespace, else the stored one, else none. */
export function namespaceLabels(
  state: DatastoreState,
  resources: readonly Resource[],
  namespace: string,
): Labels {
  return (
    resources.find(
      (resource): resource is Extract<Resource, { kind: "Namespace" }> =>
        resource.kind === "Namespace" && resource.namespace.name === namespace,
    )?.namespace.labels ??
    state.namespaces?.find((entry) => entry.value.name === namespace)?.value.labels ??
    {}
  );
}

/** Refused as the controller would refuse it, and when another FloatingIP names the same address. */
function checkFloatingIp(
  state: DatastoreState,
  applied: AppliedFloatingIp,
  resources: readonly Resource[],
  pools: readonly IpPool[],
): void {
  const { namespace, name, spec } = applied;
  const what = `FloatingIP ${namespace}/${name}`;
  const labels = namespaceLabels(state, resources, namespace);
  try {
    if (spec.pool !== undefined) {
      poolToAllocateFrom(spec.pool, pools, namespace, labels);
    } else if (spec.address !== undefined) {
      validateInPools([spec.address], pools);
      validatePoolNamespaces([spec.address], pools, namespace, labels);
    }
  } catch (error) {
    if (error instanceof FloatingIpError) throw new CliError(`${what}: ${error.message}`);
    throw error;
  }
  const others = [
    ...(state.floatingIpResources ?? [])
      .map((entry) => entry.value)
      .filter((other) => !isApplied(other, resources)),
    ...resources.flatMap((resource) =>
      resource.kind === "FloatingIP" ? [resource.floatingIp] : [],
    ),
  ].filter((other) => other.namespace !== namespace || other.name !== name);
  const rival =
    spec.address !== undefined && others.find((other) => other.spec.address === spec.address);
  if (rival) {
    throw new CliError(
      `${what}: ${spec.address} is already the address of FloatingIP ${rival.namespace}/${rival.name}`,
    );
  }
}

/** Whether `record` is rewritten by this apply (its old spec no longer counts). */
function isApplied(record: FloatingIpRecord, resources: readonly Resource[]): boolean {
  return resources.some(
    (resource) =>
      resource.kind === "FloatingIP" &&
      resource.floatingIp.namespace === record.namespace &&
      resource.floatingIp.name === record.name,
  );
}

function refuseDuplicates(resources: readonly Resource[]): void {
  const seen = new Map<string, string>();
  for (const resource of resources) {
    const id = `${resource.kind} ${resourceName(resource)}`;
    const earlier = seen.get(id);
    if (earlier !== undefined) {
      throw new CliError(`${resource.source}: ${id} is also defined in ${earlier}`);
    }
    seen.set(id, resource.source);
  }
}

/**
 * A changed cidr is refused while floating-IP claims the new cidr would leave
 * outside (allocated addresses are validatePoolChange()'s); otherwise the old
 * pool's empty blocks (carved for the old geometry) go with the change.
 */
function geometryChange(old: IpPool, pool: IpPool, usage: PoolUsage): Versioned<IpamBlock>[] {
  if (old.cidr === pool.cidr && old.blockSize === pool.blockSize) return [];
  const newPrefix = poolPrefix(pool);
  const stranded = usage.claims.filter((claim) => !ipInPrefix(claim.value.ip, newPrefix));
  if (stranded.length > 0) {
    throw new CliError(
      `cannot change cidr ${old.cidr} -> ${pool.cidr} of IP pool ${pool.name}: ` +
        `floating IP(s) ${stranded.map((claim) => claim.value.ip).join(", ")} are claimed outside the new cidr`,
    );
  }
  return usage.emptyBlocks;
}
