// What `buoy delete` removes, decided from the datastore's state. A pool goes
// only when no address is allocated in its blocks and no floating IP inside it
// is claimed; its empty blocks go with it. A node goes only when no workload
// endpoint is left on it. A BGP peer goes as it is; a FloatingIP with its
// status (the controller then releases its claim). Pure.
import type { KvCompare, KvOp } from "../datastore/kv.js";
import { keys } from "./store.js";
import { planBlockDeletes } from "./plan-block-deletes.js";
import { CliError } from "../cli/cli-error.js";
import type { EtcdDatastoreState, Plan } from "./etcd-state.js";
import type { DeleteTarget } from "../cli/manifest.js";
import { poolUsage, refuseDeleteInUse } from "../cli/pool-usage.js";

export function planDelete(state: EtcdDatastoreState, targets: readonly DeleteTarget[]): Plan {
  const compares: KvCompare[] = [];
  const ops: KvOp[] = [];
  const seen = new Set<string>();
  for (const target of targets) {
    const id = `${target.kind} ${target.name}`;
    if (seen.has(id)) continue;
    seen.add(id);
    if (target.kind === "IPPool") {
      const pool = state.pools.find((candidate) => candidate.value.name === target.name);
      if (!pool) throw new CliError(`IP pool ${target.name} does not exist`);
      const usage = poolUsage(pool.value, state.blocks, state.claims);
      refuseDeleteInUse(pool.value, usage);
      const deletes = planBlockDeletes(usage.emptyBlocks, state.regions);
      compares.push(...deletes.compares);
      ops.push(...deletes.ops);
      compares.push({ key: keys.pool(target.name), modRevision: Number(pool.revision) });
      ops.push({ delete: keys.pool(target.name) });
    } else if (target.kind === "Node") {
      const node = state.nodes.find((candidate) => candidate.value.name === target.name);
      if (!node) throw new CliError(`node ${target.name} does not exist`);
      const endpoints = state.endpoints.filter((endpoint) => endpoint.value.node === target.name);
      if (endpoints.length > 0) {
        throw new CliError(
          `cannot delete node ${target.name}: ${endpoints.length} workload endpoint(s) are still on it`,
        );
      }
      compares.push({ key: keys.node(target.name), modRevision: Number(node.revision) });
      ops.push({ delete: keys.node(target.name) });
    } else if (target.kind === "FloatingIP") {
      // Its status goes with it; the controller releases the claim it held.
      const record = state.floatingIpResources?.find(
        (entry) => `${entry.value.namespace}/${entry.value.name}` === target.name,
      );
      if (!record) throw new CliError(`FloatingIP ${target.name} does not exist`);
      const { namespace, name } = record.value;
      compares.push({
        key: keys.floatingIp(namespace, name),
        modRevision: Number(record.revision),
      });
      ops.push({ delete: keys.floatingIp(namespace, name) });
      ops.push({ delete: keys.floatingIpStatus(namespace, name) });
    } else if (target.kind === "Pod") {
      const record = state.pods?.find(
        (entry) => `${entry.value.metadata.namespace}/${entry.value.metadata.name}` === target.name,
      );
      if (!record) throw new CliError(`pod ${target.name} has no record`);
      const { namespace = "default", name = "" } = record.value.metadata;
      compares.push({ key: keys.pod(namespace, name), modRevision: Number(record.revision) });
      ops.push({ delete: keys.pod(namespace, name) });
    } else if (target.kind === "Namespace") {
      // A namespace without a record has no labels: deleting it takes them away.
      const record = state.namespaces?.find((entry) => entry.value.name === target.name);
      if (!record) throw new CliError(`namespace ${target.name} has no record`);
      compares.push({ key: keys.namespace(target.name), modRevision: Number(record.revision) });
      ops.push({ delete: keys.namespace(target.name) });
    } else {
      const peer = state.peers.find((candidate) => candidate.value.name === target.name);
      if (!peer) throw new CliError(`BGP peer ${target.name} does not exist`);
      compares.push({ key: keys.bgpPeer(target.name), modRevision: Number(peer.revision) });
      ops.push({ delete: keys.bgpPeer(target.name) });
    }
  }
  const deletesEveryPool =
    state.pools.length > 0 && state.pools.every((pool) => seen.has(`IPPool ${pool.value.name}`));
  if (deletesEveryPool && state.poolWritesRevision !== undefined) {
    // The last pool takes apply's bookkeeping key with it: nothing is left behind.
    compares.push({ key: keys.poolWrites, modRevision: Number(state.poolWritesRevision) });
    ops.push({ delete: keys.poolWrites });
  }
  return { compares, ops };
}
