// The CLI's I/O shell over etcd: read everything a command looks at in
// one pass, and commit a plan (compares + ops) as one transaction, planning
// again from a fresh read when something changed in between.
import type { KvCompare, KvEntry, KvOp } from "../datastore/kv.js";
import type {
  BgpPeer,
  FloatingIpStatus,
  IpPool,
  IpamRegion,
  NamespaceRecord,
  NodeRecord,
  Versioned,
} from "../model/records.js";
import { CorruptRecordError, keys, type Store } from "./store.js";
import { CliError } from "../cli/cli-error.js";
import type { DatastoreState } from "../datastore/datastore-state.js";
import type { PodView } from "../failover/candidates.js";
import type { FloatingIpRecord, FloatingIpStatusShape } from "../failover/floating-ip.js";

export type { DatastoreState } from "../datastore/datastore-state.js";

/** The state, plus the revision of the key every pool write rewrites (absent: never written). */
export interface EtcdDatastoreState extends DatastoreState {
  poolWritesRevision?: string;
  /** The region records (ipam/region.ts), rewritten with every block deleted. */
  regions: Versioned<IpamRegion>[];
  /** The pods' records (labels, node, readiness) FloatingIPs select from. */
  pods?: Versioned<PodView>[];
}

export interface Plan {
  compares: KvCompare[];
  ops: KvOp[];
}

export async function readDatastoreState(store: Store): Promise<EtcdDatastoreState> {
  const [
    pools,
    blocks,
    claims,
    endpoints,
    nodes,
    peers,
    statuses,
    namespaces,
    poolWrites,
    regions,
    floatingIps,
    floatingIpStatuses,
    pods,
  ] = await Promise.all([
    store.kv.list(keys.pools),
    store.listBlocks(),
    store.listClaims(),
    store.listEndpoints(),
    store.kv.list(keys.nodes),
    store.kv.list(keys.bgpPeers),
    store.kv.list(keys.statuses),
    store.kv.list(keys.namespaces),
    store.kv.get(keys.poolWrites),
    store.kv.list(keys.regions),
    store.kv.list(keys.floatingIps),
    store.kv.list(keys.floatingIpStatuses),
    store.kv.list(keys.pods),
  ]);
  const statusOf = new Map(
    floatingIpStatuses.map((entry) => [
      entry.key.slice(keys.floatingIpStatuses.length),
      versioned<FloatingIpStatusShape>(entry).value,
    ]),
  );
  return {
    pools: pools.map((entry) => versioned<IpPool>(entry)),
    blocks,
    claims,
    endpoints,
    nodes: nodes.map((entry) => versioned<NodeRecord>(entry)),
    peers: peers.map((entry) => versioned<BgpPeer>(entry)),
    statuses: statuses.map((entry) => versioned<FloatingIpStatus>(entry).value),
    namespaces: namespaces.map((entry) => versioned<NamespaceRecord>(entry)),
    regions: regions.map((entry) => versioned<IpamRegion>(entry)),
    floatingIpResources: floatingIps.map((entry) => {
      const record = versioned<FloatingIpRecord>(entry);
      const status = statusOf.get(`${record.value.namespace}/${record.value.name}`);
      return { ...record, ...(status ? { status } : {}) };
    }),
    pods: pods.map((entry) => versioned<PodView>(entry)),
    ...(poolWrites ? { poolWritesRevision: String(poolWrites.modRevision) } : {}),
  };
}

const MAX_ATTEMPTS = 5;

/** Reads, plans and commits; plans throw to refuse. `action` names the command in messages. */
export async function commitPlan(
  store: Store,
  plan: (state: EtcdDatastoreState) => Plan,
  action: string,
): Promise<void> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const { compares, ops } = plan(await readDatastoreState(store));
    if (await store.kv.txn(compares, ops)) return;
  }
  throw new CliError(
    `the datastore kept changing while trying to ${action} (${MAX_ATTEMPTS} attempts); try again`,
  );
}

function versioned<T>(entry: KvEntry): Versioned<T> {
  try {
    return { value: JSON.parse(entry.value) as T, revision: String(entry.modRevision) };
  } catch (error) {
    throw new CorruptRecordError(
      `record ${entry.key} is not valid JSON: ${(error as Error).message}`,
    );
  }
}
