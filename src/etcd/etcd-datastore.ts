// The Datastore port over etcd (the Kv port): a container's claims and
// endpoint are one transaction that also compares the blocks of its floating
// IPs (ADR 0002); a block write is one transaction that also checks the
// address it hands out is not claimed.
import { snapshotLookup } from "../floating/claim-check.js";
import {
  commitClaimsAndEndpoint,
  planClaimCompares,
  readClaimLookup,
} from "./claims-transaction.js";
import type {
  AllocationSnapshot,
  AttachedContainer,
  Attachment,
  BlockWrite,
  Datastore,
  EndpointRef,
  PodInfo,
  ReleaseTarget,
  Released,
} from "../datastore/datastore.js";
import { releaseContainer } from "./etcd-release.js";
import type { KvCompare, KvOp } from "../datastore/kv.js";
import type { FloatingIpClaim, IpamBlock, Versioned, WorkloadEndpoint } from "../model/records.js";
import { keys, Store } from "./store.js";

export class EtcdDatastore implements Datastore {
  constructor(readonly store: Store) {}

  readAllocationSnapshot(): Promise<AllocationSnapshot> {
    return this.store.readAllocationSnapshot();
  }

  listBlocks(): Promise<Versioned<IpamBlock>[]> {
    return this.store.listBlocks();
  }

  writeBlock({ block, revision, assigned, released = [] }: BlockWrite): Promise<boolean> {
    const key = keys.block(block.cidr);
    const compares: KvCompare[] = [
      revision === undefined ? { key, createRevision: 0 } : { key, modRevision: Number(revision) },
    ];
    const ops: KvOp[] = [{ put: key, value: JSON.stringify(block) }];
    if (revision === undefined) {
      // The affinity record of a new block (see keys.affinity).
      ops.push({
        put: keys.affinity(block.affinity, block.cidr),
        value: JSON.stringify({ cidr: block.cidr, node: block.affinity }),
      });
    }
    if (assigned) {
      compares.push({ key: keys.claim(assigned.ip), createRevision: 0 });
      if (assigned.node !== block.affinity) {
        ops.push({ put: keys.borrowedAddress(assigned.ip), value: JSON.stringify(assigned) });
      }
    }
    for (const ip of released) ops.push({ delete: keys.borrowedAddress(ip) });
    return this.store.kv.txn(compares, ops);
  }

  readNamespaceLabels(namespace: string): Promise<Record<string, string>> {
    return this.store.readNamespaceLabels(namespace);
  }

  async readPod(): Promise<PodInfo | undefined> {
    return undefined;
  }

  async commitAttachment({ endpoint, claims, pools, seen }: Attachment): Promise<void> {
    const ips = claims.map((claim) => claim.ip);
    const lookup = seen ? snapshotLookup(seen) : await readClaimLookup(this.store, pools, ips);
    const compares = planClaimCompares(pools, ips, endpoint, lookup);
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
