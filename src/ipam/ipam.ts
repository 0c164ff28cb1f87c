// Block-based address allocation against the datastore. Every write is a
// compare-and-swap on the block's revision that also checks no floating-IP
// claim exists for the chosen address, so two concurrent ADDs never get the
// same address and IPAM never hands out a held floating IP.
import {
  formatPrefix,
  parseAddress,
  parsePrefix,
  prefixContains,
  type Family,
} from "../net/address.js";
import type { AllocationOwner, IpPool, IpamBlock, Versioned } from "../datastore/model.js";
import { keys, type AllocationSnapshot, type Store } from "../datastore/store.js";
import {
  addressesOfHandle,
  emptyBlock,
  findFreeAddress,
  withAllocation,
  withoutHandle,
} from "./block.js";
import { blockPrefixes, poolPrefix, poolSelected } from "./pool.js";

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
}

const MAX_ATTEMPTS = 50;

/**
 * Assigns one address of `request.family`; an owner that already has one gets
 * it back. A snapshot read by the caller serves the first attempt; a conflict
 * re-reads.
 */
export async function assignAddress(
  store: Store,
  request: AssignRequest,
  snapshot?: AllocationSnapshot,
): Promise<string> {
  let state = snapshot;
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const { pools: allPools, blocks, claims } = state ?? (await store.readAllocationSnapshot());
    state = undefined;
    const pools = allPools.filter(
      (pool) =>
        !pool.disabled &&
        poolPrefix(pool).family === request.family &&
        poolSelected(pool, request.pools),
    );
    if (pools.length === 0) {
      const which = request.pools.length > 0 ? ` among ${request.pools.join(", ")}` : "";
      throw new IpamExhaustedError(`no enabled IPv${request.family} IP pool${which}`);
    }
    const existing = blocks
      .flatMap(({ value }) => addressesOfHandle(value, request.owner.handle))
      .find((ip) => parseAddress(ip)?.family === request.family);
    if (existing) return existing;

    const claimed = new Set([...claims.map((claim) => claim.value.ip), ...(request.exclude ?? [])]);
    const outcome = await tryAssign(store, request.owner, pools, blocks, claimed);
    if (outcome === "exhausted") {
      throw new IpamExhaustedError(
        `no free IPv${request.family} address in IP pools ${pools.map((pool) => pool.cidr).join(", ")}`,
      );
    }
    if (outcome !== "conflict") return outcome;
    await sleep(Math.random() * Math.min(50, 2 * (attempt + 1)));
  }
  throw new IpamConflictError(`address assignment kept conflicting after ${MAX_ATTEMPTS} attempts`);
}

async function tryAssign(
  store: Store,
  owner: AllocationOwner,
  pools: readonly IpPool[],
  blocks: readonly Versioned<IpamBlock>[],
  claimed: ReadonlySet<string>,
): Promise<string | "conflict" | "exhausted"> {
  const blocksByCidr = new Map(blocks.map((block) => [block.value.cidr, block]));
  const inPool = (pool: IpPool) =>
    blocks.filter((block) => poolOf(pools, block.value.cidr) === pool);

  // 1. A block already affine to this node.
  for (const pool of pools) {
    for (const block of inPool(pool).filter((b) => b.value.affinity === owner.node)) {
      const ip = findFreeAddress(block.value, claimed);
      if (ip) return write(block.value, block.revision, ip);
    }
  }
  // 2. A new block, affine to this node.
  for (const pool of pools) {
    for (const prefix of blockPrefixes(pool)) {
      const cidr = formatPrefix(prefix);
      if (blocksByCidr.has(cidr)) continue;
      const block = emptyBlock(cidr, owner.node);
      const ip = findFreeAddress(block, claimed);
      if (ip) return write(block, 0, ip);
    }
  }
  // 3. Borrow a free address from another node's block.
  for (const pool of pools) {
    for (const block of inPool(pool)) {
      const ip = findFreeAddress(block.value, claimed);
      if (ip) return write(block.value, block.revision, ip);
    }
  }
  return "exhausted";

  async function write(
    block: IpamBlock,
    revision: number,
    ip: string,
  ): Promise<string | "conflict"> {
    const key = keys.block(block.cidr);
    const written = await store.kv.txn(
      [
        revision === 0 ? { key, createRevision: 0 } : { key, modRevision: revision },
        { key: keys.claim(ip), createRevision: 0 },
      ],
      [
        { put: key, value: JSON.stringify(withAllocation(block, ip, owner)) },
        ...(revision === 0 ? [affinityPut(block)] : []),
        ...(block.affinity !== owner.node
          ? [{ put: keys.borrowedAddress(ip), value: JSON.stringify({ ip, node: owner.node }) }]
          : []),
      ],
    );
    return written ? ip : "conflict";
  }
}

/** The affinity record of a new block (see keys.affinity). */
function affinityPut(block: IpamBlock): { put: string; value: string } {
  return {
    put: keys.affinity(block.affinity, block.cidr),
    value: JSON.stringify({ cidr: block.cidr, node: block.affinity }),
  };
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

/** Releases every address held by `handle`; resolves to the addresses released. Idempotent. */
export async function releaseHandle(store: Store, handle: string): Promise<string[]> {
  const released: string[] = [];
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const blocks = await store.listBlocks();
    const holding = blocks.filter((block) => addressesOfHandle(block.value, handle).length > 0);
    if (holding.length === 0) return released;
    for (const block of holding) {
      const key = keys.block(block.value.cidr);
      const written = await store.kv.txn(
        [{ key, modRevision: block.revision }],
        [
          { put: key, value: JSON.stringify(withoutHandle(block.value, handle)) },
          ...addressesOfHandle(block.value, handle).map((ip) => ({
            delete: keys.borrowedAddress(ip),
          })),
        ],
      );
      if (written) released.push(...addressesOfHandle(block.value, handle));
    }
  }
  throw new IpamConflictError(
    `releasing ${handle} kept conflicting after ${MAX_ATTEMPTS} attempts`,
  );
}

/** Handles that hold addresses on `node`, with the addresses. */
export async function listNodeHandles(store: Store, node: string): Promise<Map<string, string[]>> {
  const handles = new Map<string, string[]>();
  for (const { value: block } of await store.listBlocks()) {
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
