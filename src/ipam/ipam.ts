// Block-based address allocation against the datastore. Every write is a
// compare-and-swap on the block's revision that also checks no floating-IP
// claim exists for the chosen address, so two concurrent ADDs never get the
// same address and IPAM never hands out a held floating IP.
import {
  enclosingPrefix,
  formatPrefix,
  parseAddress,
  parsePrefix,
  prefixContains,
  type Family,
} from "../net/address.js";
import type {
  AllocationOwner,
  IpPool,
  IpamBlock,
  IpamRegion,
  Versioned,
} from "../model/records.js";
import type { AllocationSnapshot, Datastore } from "../datastore/datastore.js";
import {
  addressesOfHandle,
  emptyBlock,
  findFreeAddress,
  withAllocation,
  withoutHandle,
} from "./block.js";
import { freeBlockCidrs, poolRegionCidrs } from "./new-block.js";
import { poolPrefix, poolRestrictsNamespaces, poolSelected, poolSelectsNamespace } from "./pool.js";
import { BlockIndex, cidrsHolding, emptyRegion, regionCidrOf } from "./region.js";

export class IpamExhaustedError extends Error {
  override readonly name = "IpamExhaustedError";
}

export class IpamConflictError extends Error {
  override readonly name = "IpamConflictError";
}

export interface AssignRequest {
  family: Family;
  owner: AllocationOwner;
  /** Pool names or CIDRs to draw from (`ipv4_pools` / `ipv6_pools`); empty: every enabled pool. */
  pools: readonly string[];
  /** Addresses not to hand out besides the claimed ones: the floating IPs this same ADD asks for. */
  exclude?: readonly string[];
  /**
   * The labels of the owner's namespace, when the caller read them already;
   * else they are read if a pool's namespaceSelector needs them.
   */
  namespaceLabels?: Readonly<Record<string, string>>;
}

const MAX_ATTEMPTS = 50;

/** The most writes one assignment finds claimed (each learns up to CLAIM_LOOKAHEAD more). */
const MAX_CLAIMED_SKIPS = 256;

/**
 * A write that meets a claim reads the claims of the block's next free
 * addresses too, by key: floating IPs drawn from a pod pool cost one read
 * per this many, not a write and a snapshot each.
 */
const CLAIM_LOOKAHEAD = 64;

/** The most region records, and blocks, one read of the walk asks for. */
const MAX_BATCH = 32;

type Outcome =
  | { ip: string }
  | { claimed: string; block: IpamBlock }
  | { unlisted: Versioned<IpamBlock>[] }
  | "conflict"
  | "exhausted";

/**
 * Assigns one address of `request.family`; an owner that already has one gets
 * it back. A snapshot read by the caller serves the first attempt; a conflict
 * re-reads. What it reads is bounded by the node, not the cluster (issue 14):
 * the node's blocks first, then region records up to the first with room for
 * a new block, and only when there is none, the blocks those regions list.
 */
export async function assignAddress(
  store: Datastore,
  request: AssignRequest,
  snapshot?: AllocationSnapshot,
): Promise<string> {
  let state = snapshot;
  let labels = request.namespaceLabels;
  const namespace = request.owner.namespace ?? "default";
  // Addresses a write found claimed: the snapshot holds only the claims
  // this ADD asks for, so others are learnt from the writes that meet them.
  const learnt = new Set<string>();
  // Blocks listed in no region (an older buoy's) that a new block met.
  const unlisted = new Map<string, Versioned<IpamBlock>>();
  let conflicts = 0;
  let claimedWrites = 0;
  while (conflicts < MAX_ATTEMPTS) {
    const {
      pools: allPools,
      blocks,
      claims,
    } = state ??
    (await store.readAllocationSnapshot({
      node: request.owner.node,
      floatingIps: request.exclude ?? [],
    }));
    state = undefined;
    const enabled = allPools.filter(
      (pool) =>
        !pool.disabled &&
        poolPrefix(pool).family === request.family &&
        poolSelected(pool, request.pools),
    );
    const which = request.pools.length > 0 ? ` among ${request.pools.join(", ")}` : "";
    if (enabled.length === 0) {
      throw new IpamExhaustedError(`no enabled IPv${request.family} IP pool${which}`);
    }
    if (labels === undefined && enabled.some(poolRestrictsNamespaces)) {
      labels = await store.readNamespaceLabels(namespace);
    }
    const pools = enabled.filter((pool) => poolSelectsNamespace(pool, labels ?? {}));
    if (pools.length === 0) {
      throw new IpamExhaustedError(
        `no enabled IPv${request.family} IP pool${which} that namespace ${namespace} may use`,
      );
    }
    const existing = blocks
      .flatMap(({ value }) => addressesOfHandle(value, request.owner.handle))
      .find((ip) => parseAddress(ip)?.family === request.family);
    if (existing) return existing;

    const claimed = new Set([
      ...claims.map((claim) => claim.value.ip),
      ...(request.exclude ?? []),
      ...learnt,
    ]);
    const seen = new Set(blocks.map((block) => block.value.cidr));
    const outcome = await tryAssign(
      store,
      request.owner,
      pools,
      [...blocks, ...[...unlisted.values()].filter((block) => !seen.has(block.value.cidr))],
      claimed,
    );
    if (outcome === "exhausted") {
      throw new IpamExhaustedError(
        `no free IPv${request.family} address in IP pools ${pools.map((pool) => pool.cidr).join(", ")}`,
      );
    }
    if (typeof outcome === "object" && "unlisted" in outcome) {
      for (const block of outcome.unlisted) unlisted.set(block.value.cidr, block);
      conflicts++;
      continue;
    }
    if (outcome === "conflict") {
      conflicts++;
      await sleep(Math.random() * Math.min(50, 2 * conflicts));
      continue;
    }
    if ("ip" in outcome) return outcome.ip;
    learnt.add(outcome.claimed);
    claimedWrites++;
    if (claimedWrites > MAX_CLAIMED_SKIPS) {
      throw new IpamExhaustedError(
        `no free IPv${request.family} address: more than ${MAX_CLAIMED_SKIPS} writes met floating IPs' claims`,
      );
    }
    // The claims on the addresses the next attempts would pick, in one read.
    const ahead = freeAddresses(outcome.block, new Set([...claimed, ...learnt]), CLAIM_LOOKAHEAD);
    for (const ip of await store.readClaimedAddresses(ahead)) learnt.add(ip);
  }
  throw new IpamConflictError(`address assignment kept conflicting after ${MAX_ATTEMPTS} attempts`);
}

async function tryAssign(
  store: Datastore,
  owner: AllocationOwner,
  pools: readonly IpPool[],
  blocks: readonly Versioned<IpamBlock>[],
  claimed: ReadonlySet<string>,
): Promise<Outcome> {
  const index = new BlockIndex(blocks);
  const known = blocks.map((block) => block.value.cidr);
  // An address allocated in an overlapping block (records older than
  // regions) is taken too: two pods never get one address.
  const freeIn = (block: IpamBlock) => {
    const overlapping = index.allocatedInOverlapping(block.cidr);
    return findFreeAddress(
      block,
      overlapping.length === 0 ? claimed : new Set([...claimed, ...overlapping]),
    );
  };

  // 1. A block already affine to this node.
  for (const pool of pools) {
    for (const block of blocks) {
      if (block.value.affinity !== owner.node || poolOf(pools, block.value.cidr) !== pool) continue;
      const ip = freeIn(block.value);
      if (ip) return settled(await write(block.value, block.revision, ip));
    }
  }
  // 2. A new block, affine to this node, in the first region with room:
  // the region records say which CIDRs are free, whatever size the blocks
  // there were made with and whatever the pool says now.
  const walked: IpamRegion[] = [];
  for (const pool of pools) {
    for await (const region of walkRegions(store, pool)) {
      walked.push(region);
      for (const cidr of freeBlockCidrs(pool, region, known)) {
        const outcome = await create(pool, cidr);
        if (outcome) return outcome;
      }
    }
  }
  // 3. Borrow a free address from another node's block, reading the blocks
  // the walked regions list, a batch at a time, up to the first with room.
  // A listed CIDR whose block is gone (Kubernetes keeps a deleted block's
  // CIDR listed, ADR 0011) is made a block again first.
  const listed = walked.flatMap((region) => region.blocks).filter((cidr) => !known.includes(cidr));
  let candidates = blocks.filter((block) => poolOf(pools, block.value.cidr));
  for (let start = 0; ; start += MAX_BATCH) {
    for (const block of candidates) {
      const ip = freeIn(block.value);
      if (ip) return settled(await write(block.value, block.revision, ip));
    }
    if (start >= listed.length) break;
    const batch = listed.slice(start, start + MAX_BATCH);
    candidates = await store.readBlocks(batch);
    const found = new Set(candidates.map((block) => block.value.cidr));
    for (const cidr of batch) {
      const pool = found.has(cidr) ? undefined : poolOfBlock(pools, cidr);
      const outcome = pool && (await create(pool, cidr));
      if (outcome) return outcome;
    }
  }
  return "exhausted";

  /** A new block at `cidr`, affine to this node; undefined when nothing in it is free. */
  async function create(pool: IpPool, cidr: string): Promise<Outcome | undefined> {
    const block = emptyBlock(cidr, owner.node);
    const ip = findFreeAddress(block, claimed);
    if (!ip) return undefined;
    const absent = enclosingCidrs(pool, cidr);
    const outcome = await write(block, undefined, ip, absent);
    if (outcome !== "overlaps") return outcome;
    // An older buoy's block around it, or the region listed a new block
    // since it was read: either way, read again, knowing the first.
    return { unlisted: await store.readBlocks(absent) };
  }

  async function write(
    block: IpamBlock,
    revision: string | undefined,
    ip: string,
    absent?: readonly string[],
  ): Promise<Outcome | "overlaps"> {
    const written = await store.writeBlock({
      block: withAllocation(block, ip, owner),
      revision,
      assigned: { ip, node: owner.node },
      ...(absent ? { absent } : {}),
    });
    if (written === "written") return { ip };
    if (written === "claimed") return { claimed: ip, block };
    return written;
  }
}

/**
 * The prefixes around a new block, from its pool's length up to (not
 * including) the block's own: where an older buoy's block, listed in no
 * region, could hold it (made when the pool's blockSize was shorter).
 */
function enclosingCidrs(pool: IpPool, cidr: string): string[] {
  const block = parsePrefix(cidr);
  if (!block) return [];
  const from = poolPrefix(pool).length;
  return Array.from({ length: Math.max(0, block.length - from) }, (_, i) =>
    formatPrefix(enclosingPrefix({ family: block.family, value: block.base }, from + i)),
  );
}

/** Up to `count` addresses of `block` neither allocated nor in `excluded`, in order. */
function freeAddresses(block: IpamBlock, excluded: ReadonlySet<string>, count: number): string[] {
  const found: string[] = [];
  const skip = new Set(excluded);
  for (let ip = findFreeAddress(block, skip); ip && found.length < count;) {
    found.push(ip);
    skip.add(ip);
    ip = findFreeAddress(block, skip);
  }
  return found;
}

/** "overlaps" only answers a new block; elsewhere, and there too, it means: read again. */
function settled(outcome: Outcome | "overlaps"): Outcome {
  return outcome === "overlaps" ? "conflict" : outcome;
}

/**
 * The pool's region records in address order (an empty record where there
 * is none), read in batches that double from one: the first region with
 * room costs one read, a full cluster a few.
 */
async function* walkRegions(store: Datastore, pool: IpPool): AsyncGenerator<IpamRegion> {
  const cidrs = poolRegionCidrs(pool);
  let size = 1;
  for (;;) {
    const batch: string[] = [];
    for (let next = cidrs.next(); !next.done; next = cidrs.next()) {
      batch.push(next.value);
      if (batch.length === size) break;
    }
    if (batch.length === 0) return;
    const regions = await store.readRegions(batch);
    for (const [i, cidr] of batch.entries()) yield regions[i]?.value ?? emptyRegion(cidr);
    size = Math.min(size * 2, MAX_BATCH);
  }
}

/** The pool `cidr` is a block of at the pool's blockSize now, if any. */
function poolOfBlock(pools: readonly IpPool[], cidr: string): IpPool | undefined {
  const pool = poolOf(pools, cidr);
  return pool && parsePrefix(cidr)?.length === pool.blockSize ? pool : undefined;
}

function poolOf(pools: readonly IpPool[], blockCidr: string): IpPool | undefined {
  const block = parsePrefix(blockCidr);
  return (
    block &&
    pools.find((pool) =>
      prefixContains(poolPrefix(pool), { family: block.family, value: block.base }),
    )
  );
}

/**
 * Releases every address held by `handle`, which `node` allocated (in its
 * blocks or ones it borrowed from); resolves to the addresses released.
 * `addresses`, the container's as its endpoint records them, are also
 * looked for by containment where the node's index does not name their
 * block (an older buoy's: blocks without node labels, addresses borrowed
 * before node-borrowed records). Idempotent.
 */
export async function releaseHandle(
  store: Datastore,
  handle: string,
  node: string,
  addresses: readonly string[] = [],
): Promise<string[]> {
  const listed = await store.listNodeBlocks(node);
  // The blocks of the addresses the caller knows, read again by name: the
  // node's list may come from a cache a moment behind (Kubernetes).
  const index = new BlockIndex(listed);
  const fresh = await store.readBlocks([
    ...new Set(addresses.flatMap((ip) => index.holding(ip).map((block) => block.value.cidr))),
  ]);
  const byCidr = new Map(listed.map((block) => [block.value.cidr, block]));
  for (const block of [...fresh, ...(await readBlocksHolding(store, addresses, listed))]) {
    byCidr.set(block.value.cidr, block);
  }
  const holds = (block: Versioned<IpamBlock>) => addressesOfHandle(block.value, handle).length > 0;
  let pending = [...byCidr.values()].filter(holds);
  const released: string[] = [];
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    if (pending.length === 0) return released;
    const conflicted: string[] = [];
    for (const block of pending) {
      const ips = addressesOfHandle(block.value, handle);
      const written = await store.writeBlock({
        block: withoutHandle(block.value, handle),
        revision: block.revision,
        released: ips.map((ip) => ({ ip, node: block.value.allocations[ip]?.node ?? node })),
      });
      if (written === "written") released.push(...ips);
      else conflicted.push(block.value.cidr);
    }
    // Only the blocks that changed under us are read again.
    pending = (await store.readBlocks(conflicted)).filter(holds);
  }
  throw new IpamConflictError(
    `releasing ${handle} kept conflicting after ${MAX_ATTEMPTS} attempts`,
  );
}

/**
 * The blocks holding those of `addresses` that none of `known` holds, found
 * through their regions' records: two bounded reads, none when all are known.
 */
export async function readBlocksHolding(
  store: Datastore,
  addresses: readonly string[],
  known: readonly Versioned<IpamBlock>[],
): Promise<Versioned<IpamBlock>[]> {
  const index = new BlockIndex(known);
  const missing = addresses.filter((ip) => index.holding(ip).length === 0);
  if (missing.length === 0) return [];
  const regionCidrs = [...new Set(missing.flatMap((ip) => regionCidrOf(ip) ?? []))];
  const regions = await store.readRegions(regionCidrs);
  const listed = regions.flatMap((region) => region?.value.blocks ?? []);
  const knownCidrs = new Set(known.map((block) => block.value.cidr));
  const cidrs = [...new Set(missing.flatMap((ip) => cidrsHolding(listed, ip)))].filter(
    (cidr) => !knownCidrs.has(cidr),
  );
  return cidrs.length === 0 ? [] : store.readBlocks(cidrs);
}

/** Handles that hold addresses on `node`, with the addresses. */
export async function listNodeHandles(
  store: Datastore,
  node: string,
): Promise<Map<string, string[]>> {
  const handles = new Map<string, string[]>();
  for (const { value: block } of await store.listNodeBlocks(node)) {
    for (const [ip, owner] of Object.entries(block.allocations)) {
      if (owner.node !== node) continue;
      handles.set(owner.handle, [...(handles.get(owner.handle) ?? []), ip]);
    }
  }
  return handles;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
