// Typed records over the Kv port. Every key lives under /buoy/v1/, so buoy
// shares an etcd cluster with anything else without touching its keys.
import type { Kv, KvEntry } from "../datastore/kv.js";
import { truncateEcho } from "../floating/truncate-echo.js";
import { PoolError, storedPool } from "../ipam/pool.js";
import type { AllocationSnapshot } from "../datastore/datastore.js";
import type {
  FloatingIpClaim,
  IpPool,
  IpamBlock,
  IpamRegion,
  NamespaceRecord,
  NodeRecord,
  Versioned,
  WorkloadEndpoint,
} from "../model/records.js";

const ROOT = "/buoy/v1/";

export const keys = {
  pools: `${ROOT}ippools/`,
  pool: (name: string) => `${ROOT}ippools/${name}`,
  /** Rewritten by every apply that writes a pool: its compare serialises pool writes. */
  poolWrites: `${ROOT}ippool-writes`,
  blocks: `${ROOT}ipam/blocks/`,
  /**
   * One key per region (ipam/region.ts): the CIDRs of its blocks. Every
   * transaction that creates or deletes a block compares and rewrites it.
   */
  regions: `${ROOT}ipam/regions/`,
  region: (cidr: string) => `${ROOT}ipam/regions/${cidr.replace("/", "-")}`,
  block: (cidr: string) => `${ROOT}ipam/blocks/${cidr.replace("/", "-")}`,
  /**
   * One key per block, written with the block when it is made and deleted
   * with it: which node a block is affine to. Routing agents watch these, not
   * the blocks, whose every allocation would wake every node.
   */
  affinities: `${ROOT}ipam/affinities/`,
  /**
   * An address given to a pod on a node other than its block's (the node's
   * own blocks were full): routed to that node by itself, as a /32 (/128).
   * Written and deleted with the allocation.
   */
  borrowed: `${ROOT}ipam/borrowed/`,
  borrowedAddress: (ip: string) => `${ROOT}ipam/borrowed/${ip}`,
  /**
   * The same, under the node it was given to (value: the address and its
   * block): how a node finds the blocks it borrowed from without a list of
   * all (issue 14). Written and deleted with the allocation.
   */
  nodeBorrowed: (node: string) => `${ROOT}ipam/node-borrowed/${segment(node)}/`,
  nodeBorrowedAddress: (node: string, ip: string) =>
    `${ROOT}ipam/node-borrowed/${segment(node)}/${ip}`,
  nodeAffinities: (node: string) => `${ROOT}ipam/affinities/${segment(node)}/`,
  affinity: (node: string, cidr: string) =>
    `${ROOT}ipam/affinities/${segment(node)}/${cidr.replace("/", "-")}`,
  endpoints: `${ROOT}workloadendpoints/`,
  nodeEndpoints: (node: string) => `${ROOT}workloadendpoints/${segment(node)}/`,
  endpoint: (node: string, containerID: string, ifname: string) =>
    `${ROOT}workloadendpoints/${segment(node)}/${segment(containerID)}/${segment(ifname)}`,
  claims: `${ROOT}floatingipclaims/`,
  claim: (ip: string) => `${ROOT}floatingipclaims/${ip}`,
  /**
   * A container's claims being made in parts (ADR 0012): written with a
   * lease in the first part and again in the part that writes the endpoint,
   * so that part fails if it expired. While it exists the claim collector
   * leaves the container's claims alone.
   */
  claimIntents: `${ROOT}floatingipclaim-intents/`,
  claimIntent: (node: string, containerID: string) =>
    `${ROOT}floatingipclaim-intents/${segment(node)}/${segment(containerID)}`,
  statuses: `${ROOT}floatingipstatus/`,
  nodeStatuses: (node: string) => `${ROOT}floatingipstatus/${segment(node)}/`,
  status: (node: string, ip: string) => `${ROOT}floatingipstatus/${segment(node)}/${ip}`,
  bgpPeers: `${ROOT}bgppeers/`,
  bgpPeer: (name: string) => `${ROOT}bgppeers/${name}`,
  /** A namespace's labels (NamespaceRecord): etcd has no Namespace objects. */
  namespaces: `${ROOT}namespaces/`,
  namespace: (name: string) => `${ROOT}namespaces/${name}`,
  nodes: `${ROOT}nodes/`,
  node: (name: string) => `${ROOT}nodes/${name}`,
  /**
   * A node's liveness (issue 15): put by its agent under its status lease,
   * gone when the lease lapses. The FloatingIP controller reads no other
   * sign of a node's life.
   */
  nodesAlive: `${ROOT}nodesalive/`,
  nodeAlive: (node: string) => `${ROOT}nodesalive/${segment(node)}`,
  /** Namespaced FloatingIPs (FloatingIpRecord), as `buoy apply` writes them. */
  floatingIps: `${ROOT}floatingips/`,
  floatingIp: (namespace: string, name: string) =>
    `${ROOT}floatingips/${segment(namespace)}/${segment(name)}`,
  /** What the controller reports of each (FloatingIpStatusShape); apply never writes it. */
  floatingIpStatuses: `${ROOT}floatingips-status/`,
  floatingIpStatus: (namespace: string, name: string) =>
    `${ROOT}floatingips-status/${segment(namespace)}/${segment(name)}`,
  /** Pods' labels, node and readiness (PodRecord): etcd's stand-in for the Pod objects. */
  pods: `${ROOT}pods/`,
  pod: (namespace: string, name: string) => `${ROOT}pods/${segment(namespace)}/${segment(name)}`,
  /** The acting FloatingIP controller, under its lease. */
  controllerLeader: `${ROOT}controller/leader`,
};

/**
 * A node name, container ID or interface name as one key segment. The
 * entries validate them (cni/env.ts, cni/netconf.ts, the agent's --node); this
 * is the last guard: an empty one or one with '/' would name, or as a range
 * prefix read and delete, another node's or container's keys.
 */
function segment(value: string): string {
  if (value === "" || value.includes("/")) {
    throw new Error(`'${truncateEcho(value)}' cannot be part of a datastore key`);
  }
  return value;
}

export type { AllocationSnapshot } from "../datastore/datastore.js";

export class Store {
  constructor(readonly kv: Kv) {}

  /**
   * Pools, blocks, claims, every endpoint and the namespaces' labels, in one
   * request: what a live floating-IP change checks.
   */
  async readLiveState(): Promise<
    AllocationSnapshot & {
      endpoints: Versioned<WorkloadEndpoint>[];
      namespaces: NamespaceRecord[];
    }
  > {
    const [pools = [], blocks = [], claims = [], endpoints = [], namespaces = [], regions = []] =
      await this.kv.readMany([
        { prefix: keys.pools },
        { prefix: keys.blocks },
        { prefix: keys.claims },
        { prefix: keys.endpoints },
        { prefix: keys.namespaces },
        { prefix: keys.regions },
      ]);
    return {
      pools: validPools(pools),
      regions: regions.map((entry) => versioned<IpamRegion>(entry)),
      blocks: blocks.map((entry) => versioned<IpamBlock>(entry)),
      claims: claims.map((entry) => versioned<FloatingIpClaim>(entry)),
      endpoints: endpoints.map((entry) => versioned<WorkloadEndpoint>(entry)),
      namespaces: namespaces.map((entry) => decode<NamespaceRecord>(entry)),
    };
  }

  async listPools(): Promise<IpPool[]> {
    return validPools(await this.kv.list(keys.pools));
  }

  async putPool(pool: IpPool): Promise<void> {
    await this.kv.txn([], [{ put: keys.pool(pool.name), value: JSON.stringify(pool) }]);
  }

  async listBlocks(): Promise<Versioned<IpamBlock>[]> {
    return (await this.kv.list(keys.blocks)).map((entry) => versioned<IpamBlock>(entry));
  }

  async getBlock(cidr: string): Promise<Versioned<IpamBlock> | undefined> {
    const entry = await this.kv.get(keys.block(cidr));
    return entry && versioned<IpamBlock>(entry);
  }

  async listClaims(): Promise<Versioned<FloatingIpClaim>[]> {
    return (await this.kv.list(keys.claims)).map((entry) => versioned<FloatingIpClaim>(entry));
  }

  async getClaim(ip: string): Promise<Versioned<FloatingIpClaim> | undefined> {
    const entry = await this.kv.get(keys.claim(ip));
    return entry && versioned<FloatingIpClaim>(entry);
  }

  async listEndpoints(node?: string): Promise<Versioned<WorkloadEndpoint>[]> {
    const prefix = node === undefined ? keys.endpoints : keys.nodeEndpoints(node);
    return (await this.kv.list(prefix)).map((entry) => versioned<WorkloadEndpoint>(entry));
  }

  async getEndpoint(
    node: string,
    containerID: string,
    ifname: string,
  ): Promise<Versioned<WorkloadEndpoint> | undefined> {
    const entry = await this.kv.get(keys.endpoint(node, containerID, ifname));
    return entry && versioned<WorkloadEndpoint>(entry);
  }

  /** The namespace's labels; {} without a record. */
  async readNamespaceLabels(name: string): Promise<Record<string, string>> {
    const entry = await this.kv.get(keys.namespace(name));
    return (entry && decode<Partial<NamespaceRecord>>(entry).labels) ?? {};
  }

  async listNodes(): Promise<NodeRecord[]> {
    return (await this.kv.list(keys.nodes)).map((entry) => decode<NodeRecord>(entry));
  }

  /** Deletes one key; resolves to whether it existed. */
  async deleteKey(key: string): Promise<boolean> {
    const entry = await this.kv.get(key);
    if (!entry) return false;
    return this.kv.txn([{ key, modRevision: entry.modRevision }], [{ delete: key }]);
  }
}

export class CorruptRecordError extends Error {
  override readonly name = "CorruptRecordError";
}

function decode<T>(entry: KvEntry): T {
  try {
    return JSON.parse(entry.value) as T;
  } catch (error) {
    throw new CorruptRecordError(
      `record ${entry.key} is not valid JSON: ${(error as Error).message}`,
    );
  }
}

/**
 * The pools as validatePool() reads them: one written past `buoy apply`
 * (straight to etcd) with a field it refuses, say a blockSize outside
 * 20..32, is no pool, as on Kubernetes (kube-datastore.ts).
 */
export function validPools(entries: readonly KvEntry[]): IpPool[] {
  return entries.flatMap((entry) => {
    const pool = decode<Partial<IpPool>>(entry);
    try {
      return [storedPool(String(pool.name), pool)];
    } catch (error) {
      if (error instanceof PoolError) return [];
      throw error;
    }
  });
}

export function versioned<T>(entry: KvEntry): Versioned<T> {
  return { value: decode<T>(entry), revision: String(entry.modRevision) };
}
