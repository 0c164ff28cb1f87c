// What `buoy apply` writes on etcd, decided from the datastore's state once
// cli/apply-checks.ts has passed it: every resource in one transaction, each
// record compared against the revision it was read at; a pool's geometry
// change deletes its empty old blocks. Every plan that writes a pool compares
// and rewrites one key, so two concurrent applies cannot each pass the
// overlap check against the other's pool. Pure.
import { randomUUID } from "node:crypto";
import { checkApply } from "../cli/apply-checks.js";
import type { AppliedFloatingIp } from "../cli/manifest-failover.js";
import type { Resource } from "../cli/manifest.js";
import type { KvCompare, KvOp } from "../datastore/kv.js";
import type { FloatingIpRecord } from "../failover/floating-ip.js";
import type { EtcdDatastoreState, Plan } from "./etcd-state.js";
import { planBlockDeletes } from "./plan-block-deletes.js";
import { keys } from "./store.js";

export function planApply(state: EtcdDatastoreState, resources: readonly Resource[]): Plan {
  const checked = checkApply(state, resources);
  const compares: KvCompare[] = [];
  const ops: KvOp[] = [];
  const existingPools = new Map(state.pools.map((pool) => [pool.value.name, pool]));
  const existingNodes = new Map(state.nodes.map((node) => [node.value.name, node]));
  const existingPeers = new Map(state.peers.map((peer) => [peer.value.name, peer]));

  for (const resource of resources) {
    if (resource.kind === "IPPool") {
      const pool = resource.pool;
      const emptyBlocks = checked.emptyBlocksAfter.get(pool.name) ?? [];
      const deletes = planBlockDeletes(emptyBlocks, state.regions);
      compares.push(...deletes.compares);
      ops.push(...deletes.ops);
      compares.push(revisionCompare(keys.pool(pool.name), existingPools.get(pool.name)?.revision));
      ops.push({ put: keys.pool(pool.name), value: JSON.stringify(pool) });
    } else if (resource.kind === "Node") {
      const node = resource.node;
      compares.push(revisionCompare(keys.node(node.name), existingNodes.get(node.name)?.revision));
      ops.push({ put: keys.node(node.name), value: JSON.stringify(node) });
    } else if (resource.kind === "FloatingIP") {
      planFloatingIpApply(state, resource.floatingIp, compares, ops);
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
  if (resources.some((resource) => resource.kind === "IPPool")) {
    // Two applies writing different pools compare no common pool key; both
    // compare and rewrite this one, so the later replans against the earlier.
    compares.push(revisionCompare(keys.poolWrites, state.poolWritesRevision));
    ops.push({
      put: keys.poolWrites,
      value: JSON.stringify({
        pools: resources.flatMap((resource) =>
          resource.kind === "IPPool" ? [resource.pool.name] : [],
        ),
      }),
    });
  }
  return { compares, ops };
}

/** A FloatingIP's record: its uid kept from its creation, its generation one up when its spec changed. */
function planFloatingIpApply(
  state: EtcdDatastoreState,
  applied: AppliedFloatingIp,
  compares: KvCompare[],
  ops: KvOp[],
): void {
  const { namespace, name, spec } = applied;
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

function revisionCompare(key: string, revision: string | undefined): KvCompare {
  return revision === undefined
    ? { key, createRevision: 0 }
    : { key, modRevision: Number(revision) };
}
