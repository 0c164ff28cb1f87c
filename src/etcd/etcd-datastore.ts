// The Datastore port over etcd (the Kv port): a container's claims and
// endpoint are one transaction that also compares the blocks of its floating
// IPs (ADR 0002); a block write is one transaction that also checks the
// address it hands out is not claimed.
import {
  commitClaimsAndEndpoint,
  etcdSnapshotLookup,
  planClaimCompares,
  readClaimLookup,
} from "./claims-transaction.js";
import { emptyRegion, overlappingCidr, regionCidrOf, withBlockCidr } from "../ipam/region.js";
import {
  listNodeBlocks,
  readAllocationSnapshot,
  readBlocks,
  readClaimedAddresses,
  readRegions,
} from "./allocation-reads.js";
import type {
  AllocationQuery,
  AllocationSnapshot,
  AttachedContainer,
  Attachment,
  BlockWrite,
  BlockWritten,
  Datastore,
  EndpointRef,
  PodInfo,
  ReleaseTarget,
  Released,
} from "../datastore/datastore.js";
import { releaseContainer } from "./etcd-release.js";
import { MAX_TXN_OPS, type KvCompare, type KvOp } from "../datastore/kv.js";
import type {
  FloatingIpClaim,
  IpamBlock,
  IpamRegion,
  Versioned,
  WorkloadEndpoint,
} from "../model/records.js";
import { keys, Store } from "./store.js";

export class EtcdDatastore implements Datastore {
  constructor(readonly store: Store) {}

  readAllocationSnapshot(query: AllocationQuery): Promise<AllocationSnapshot> {
    return readAllocationSnapshot(this.store, query);
  }

  /** Every block (`buoy get`, tests): not on ADD's or DEL's path. */
  listBlocks(): Promise<Versioned<IpamBlock>[]> {
    return this.store.listBlocks();
  }

  listNodeBlocks(node: string): Promise<Versioned<IpamBlock>[]> {
    return listNodeBlocks(this.store, node);
  }

  readRegions(cidrs: readonly string[]): Promise<(Versioned<IpamRegion> | undefined)[]> {
    return readRegions(this.store, cidrs);
  }

  readBlocks(cidrs: readonly string[]): Promise<Versioned<IpamBlock>[]> {
    return readBlocks(this.store, cidrs);
  }

  readClaimedAddresses(ips: readonly string[]): Promise<string[]> {
    return readClaimedAddresses(this.store, ips);
  }

  async writeBlock({
    block,
    revision,
    assigned,
    absent = [],
    released = [],
  }: BlockWrite): Promise<BlockWritten> {
    const key = keys.block(block.cidr);
    const compares: KvCompare[] = [
      revision === undefined ? { key, createRevision: 0 } : { key, modRevision: Number(revision) },
    ];
    const ops: KvOp[] = [{ put: key, value: JSON.stringify(block) }];
    if (revision === undefined) {
      // A new block: listed in its region in the same transaction, which
      // compares the region unchanged since it was read, so no block
      // overlapping it can be made meanwhile.
      const regionCidr = regionCidrOf(block.cidr);
      if (regionCidr === undefined) throw new Error(`'${block.cidr}' is not a block CIDR`);
      const regionKey = keys.region(regionCidr);
      const entry = await this.store.kv.get(regionKey);
      const region = entry ? (JSON.parse(entry.value) as IpamRegion) : emptyRegion(regionCidr);
      if (overlappingCidr(region.blocks, block.cidr) !== undefined) return "overlaps";
      compares.push(
        entry
          ? { key: regionKey, modRevision: entry.modRevision }
          : { key: regionKey, createRevision: 0 },
      );
      ops.push({ put: regionKey, value: JSON.stringify(withBlockCidr(region, block.cidr)) });
      // As many as the transaction has room for are compared; the widest
      // of the rest (a wide IPv6 pool of long blocks) are read first: only
      // an older buoy made blocks listed in no region, so none appears later.
      const room = MAX_TXN_OPS - compares.length - (assigned ? 1 : 0);
      const readFirst = absent.slice(0, Math.max(0, absent.length - room));
      if ((await readBlocks(this.store, readFirst)).length > 0) return "overlaps";
      for (const cidr of absent.slice(readFirst.length)) {
        compares.push({ key: keys.block(cidr), createRevision: 0 });
      }
      // The affinity record of a new block (see keys.affinity).
      ops.push({
        put: keys.affinity(block.affinity, block.cidr),
        value: JSON.stringify({ cidr: block.cidr, node: block.affinity }),
      });
    }
    if (assigned) {
      compares.push({ key: keys.claim(assigned.ip), createRevision: 0 });
      if (assigned.node !== block.affinity) {
        ops.push(
          { put: keys.borrowedAddress(assigned.ip), value: JSON.stringify(assigned) },
          {
            put: keys.nodeBorrowedAddress(assigned.node, assigned.ip),
            value: JSON.stringify({ ip: assigned.ip, cidr: block.cidr }),
          },
        );
      }
    }
    for (const { ip, node } of released) {
      ops.push(
        { delete: keys.borrowedAddress(ip) },
        { delete: keys.nodeBorrowedAddress(node, ip) },
      );
    }
    if (await this.store.kv.txn(compares, ops)) return "written";
    if (revision === undefined && absent.length > 0) {
      if ((await readBlocks(this.store, absent)).length > 0) return "overlaps";
    }
    // Which compare failed: a claim of the address is the caller's to
    // learn (it picks another); anything else is a lost race.
    return assigned && (await this.store.kv.get(keys.claim(assigned.ip))) ? "claimed" : "conflict";
  }

  readNamespaceLabels(namespace: string): Promise<Record<string, string>> {
    return this.store.readNamespaceLabels(namespace);
  }

  async readPod(): Promise<PodInfo | undefined> {
    return undefined;
  }

  async commitAttachment({ endpoint, claims, pools, seen }: Attachment): Promise<void> {
    const ips = claims.map((claim) => claim.ip);
    const lookup = seen ? etcdSnapshotLookup(seen) : await readClaimLookup(this.store, pools, ips);
    const compares = planClaimCompares(ips, endpoint, lookup);
    await commitClaimsAndEndpoint(this.store, pools, claims, endpoint, compares);
  }

  release(target: ReleaseTarget): Promise<Released> {
    return releaseContainer(this.store, target);
  }

  async getEndpoint(ref: EndpointRef): Promise<WorkloadEndpoint | undefined> {
    return (await this.store.getEndpoint(ref.node, ref.containerID, ref.ifname))?.value;
  }

  async getClaim(ip: string): Promise<FloatingIpClaim | undefined> {
    return (await this.store.getClaim(ip))?.value;
  }

  async listAttachedContainers(node: string, network: string): Promise<AttachedContainer[]> {
    const endpoints = await this.store.listEndpoints(node);
    return endpoints
      .filter(({ value }) => value.network === network)
      .map(({ value }) => ({
        containerID: value.containerID,
        namespace: value.namespace,
        pod: value.pod,
      }));
  }

  async reportRefusal(): Promise<void> {
    // No orchestrator to tell: the CNI error is the report.
  }

  ping(): Promise<void> {
    return this.store.kv.ping();
  }
}
