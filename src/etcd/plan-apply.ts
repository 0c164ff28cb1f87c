// What `buoy apply` writes, decided from the datastore's state: every resource
// in one transaction, each record compared against the revision it was read at.
// Refuses overlapping pools, and a cidr or blockSize change under allocated
// addresses or floating-IP claims (ipam/pool-change.ts); every plan that
// writes a pool compares and rewrites one key, so two concurrent applies
// cannot each pass the overlap check against the other's pool. Pure.
import type { KvCompare, KvOp } from "../datastore/kv.js";
import type { IpPool, IpamBlock, Versioned } from "../model/records.js";
import { keys } from "./store.js";
import { planBlockDeletes } from "./plan-block-deletes.js";
import { poolPrefix } from "../ipam/pool.js";
import { poolToAllocateFrom } from "../failover/pool-address.js";
import { CliError } from "../cli/cli-error.js";
import type { EtcdDatastoreState, Plan } from "./etcd-state.js";
import { resourceName, type Resource } from "../cli/manifest.js";
import { ipInPrefix, poolUsage, type PoolUsage } from "../cli/pool-usage.js";
import { validatePoolChange } from "../ipam/pool-change.js";
import { randomUUID } from "node:crypto";
import type { AppliedFloatingIp } from "../cli/manifest-failover.js";
import type { FloatingIpRecord } from "../failover/floating-ip.js";
import { FloatingIpError } from "../floating/annotation.js";
import { validateInPools, validatePoolNamespaces } from "../floating/validate.js";

export function planApply(state: EtcdDatastoreState, resources: readonly Resource[]): Plan {
  refuseDuplicates(resources);
  const compares: KvCompare[] = [];
  const ops: KvOp[] = [];

  const applied = resources.flatMap((resource) =>
    resource.kind === "IPPool" ? [resource.pool] : [],
  );
  const appliedNames = new Set(applied.map((pool) => pool.name));
  const finalPools = [
    ...state.pools.map((pool) => pool.value).filter((pool) => !appliedNames.has(pool.name)),
    ...applied,
  ];
  const existingPools = new Map(state.pools.map((pool) => [pool.value.name, pool]));
  const existingNodes = new Map(state.nodes.map((node) => [node.value.name, node]));
  const existingPeers = new Map(state.peers.map((peer) => [peer.value.name, peer]));

  for (const resource of resources) {
    if (resource.kind === "IPPool") {
      const pool = resource.pool;
      const existing = existingPools.get(pool.name);
      const usage = existing && poolUsage(existing.value, state.blocks, state.claims);
      const refusal = validatePoolChange(pool, finalPools, existing?.value, {
        blocks: usage?.usedBlocks.length ?? 0,
        addresses: usage?.allocatedCount ?? 0,
      });
      if (refusal !== undefined) throw new CliError(refusal);
      if (existing && usage) {
        const emptyBlocks = planGeometryChange(existing.value, pool, usage);
        const deletes = planBlockDeletes(emptyBlocks, state.regions);
        compares.push(...deletes.compares);
        ops.push(...deletes.ops);
      }
      compares.push(revisionCompare(keys.pool(pool.name), existing?.revision));
      ops.push({ put: keys.pool(pool.name), value: JSON.stringify(pool) });
    } else if (resource.kind === "Node") {
      const node = resource.node;
      compares.push(revisionCompare(keys.node(node.name), existingNodes.get(node.name)?.revision));
      ops.push({ put: keys.node(node.name), value: JSON.stringify(node) });
    } else if (resource.kind === "FloatingIP") {
      planFloatingIpApply(state, resource.floatingIp, resources, finalPools, compares, ops);
    } else if (resource.kind === "Pod") {
      const { namespace = "default", name = "" } = resource.pod.metadata;
      const existing = state.pods?.find(
        (entry) =>
          entry.value.metadata.namespace === namespace && entry.value.metadata.name === name,
      );
      compares.push(revisionCompare(keys.pod(namespace, name), existing?.revision));
      ops.push({ put: keys.pod(namespace, name), value: JSON.stringify(resource.pod) });
    } else if (resource.kind === "Namespace") {
      const { name } = resource.namespace;
      const existing = state.namespaces?.find((entry) => entry.value.name === name);
      compares.push(revisionCompare(keys.namespace(name), existing?.revision));
      ops.push({ put: keys.namespace(name), value: JSON.stringify(resource.namespace) });
    } else {
      const peer = resource.peer;
      compares.push(
        revisionCompare(keys.bgpPeer(peer.name), existingPeers.get(peer.name)?.revision),
      );
      ops.push({ put: keys.bgpPeer(peer.name), value: JSON.stringify(peer) });
    }
  }
  if (applied.length > 0) {
    // Two applies writing different pools compare no common pool key; both
    // compare and rewrite this one, so the later replans against the earlier.
    compares.push(revisionCompare(keys.poolWrites, state.poolWritesRevision));
    ops.push({
      put: keys.poolWrites,
      value: JSON.stringify({ pools: applied.map((pool) => pool.name) }),
    });
  }
  return { compares, ops };
}

/**
 * A FloatingIP's record: its uid kept from its creation, its generation one
 * up when its spec changed. Refused as the controller would refuse it (its
 * address outside every pool, in a pool its namespace may not use), and
 * when another FloatingIP names the same address.
 */
function planFloatingIpApply(
  state: EtcdDatastoreState,
  applied: AppliedFloatingIp,
  resources: readonly Resource[],
  pools: readonly IpPool[],
  compares: KvCompare[],
  ops: KvOp[],
): void {
  const { namespace, name, spec } = applied;
  const what = `FloatingIP ${namespace}/${name}`;
  const namespaceLabels = (target: string) =>
    resources.find(
      (resource): resource is Extract<Resource, { kind: "Namespace" }> =>
        resource.kind === "Namespace" && resource.namespace.name === target,
    )?.namespace.labels ??
    state.namespaces?.find((entry) => entry.value.name === target)?.value.labels ??
    {};
  try {
    if (spec.pool !== undefined) {
      poolToAllocateFrom(spec.pool, pools, namespace, namespaceLabels(namespace));
    } else if (spec.address !== undefined) {
      validateInPools([spec.address], pools);
      validatePoolNamespaces([spec.address], pools, namespace, namespaceLabels(namespace));
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
  const existing = state.floatingIpResources?.find(
    (entry) => entry.value.namespace === namespace && entry.value.name === name,
  );
  const before = existing?.value;
  const record: FloatingIpRecord = {
    namespace,
    name,
    uid: before?.uid ?? randomUUID(),
    generation: !before
      ? 1
      : JSON.stringify(before.spec) === JSON.stringify(spec)
        ? before.generation
        : before.generation + 1,
    createdAt: before?.createdAt ?? new Date().toISOString(),
    spec,
  };
  compares.push(revisionCompare(keys.floatingIp(namespace, name), existing?.revision));
  ops.push({ put: keys.floatingIp(namespace, name), value: JSON.stringify(record) });
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
function planGeometryChange(old: IpPool, pool: IpPool, usage: PoolUsage): Versioned<IpamBlock>[] {
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

function revisionCompare(key: string, revision: string | undefined): KvCompare {
  return revision === undefined
    ? { key, createRevision: 0 }
    : { key, modRevision: Number(revision) };
}
