// The compares and ops that delete empty blocks in one transaction: each
// block with its affinity record, and each block's region record rewritten
// without it (deleted once it lists none), compared at the revision read, as
// every transaction that creates or deletes a block does (ipam/region.ts).
// Pure.
import type { KvCompare, KvOp } from "../datastore/kv.js";
import type { IpamBlock, IpamRegion, Versioned } from "../model/records.js";
import { regionCidrOf, withoutBlockCidr } from "../ipam/region.js";
import { keys } from "./store.js";
import type { Plan } from "./etcd-state.js";

export function planBlockDeletes(
  blocks: readonly Versioned<IpamBlock>[],
  regions: readonly Versioned<IpamRegion>[],
): Plan {
  const compares: KvCompare[] = [];
  const ops: KvOp[] = [];
  const changed = new Map<string, { read: Versioned<IpamRegion>; after: IpamRegion }>();
  const byCidr = new Map(regions.map((region) => [region.value.cidr, region]));
  for (const block of blocks) {
    const key = keys.block(block.value.cidr);
    compares.push({ key, modRevision: Number(block.revision) });
    ops.push({ delete: key }, { delete: keys.affinity(block.value.affinity, block.value.cidr) });
    const regionCidr = regionCidrOf(block.value.cidr) ?? "";
    const read = byCidr.get(regionCidr);
    if (!read) continue; // a block made before regions: listed nowhere
    const after = withoutBlockCidr(changed.get(regionCidr)?.after ?? read.value, block.value.cidr);
    changed.set(regionCidr, { read, after });
  }
  for (const [cidr, { read, after }] of changed) {
    const key = keys.region(cidr);
    compares.push({ key, modRevision: Number(read.revision) });
    ops.push(
      after.blocks.length === 0 ? { delete: key } : { put: key, value: JSON.stringify(after) },
    );
  }
  return { compares, ops };
}
