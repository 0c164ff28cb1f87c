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
import type { AllocationOwner, IpPool, IpamBlock, Versioned } from "../model/records.js";
import type { AllocationSnapshot, Datastore } from "../datastore/datastore.js";
import {
  addressesOfHandle,
  emptyBlock,
  findFreeAddress,
  withAllocation,
  withoutHandle,
} from "./block.js";
import {
  blockPrefixes,
  poolPrefix,
  poolRestrictsNamespaces,
  poolSelected,
  poolSelectsNamespace,
} from "./pool.js";
import { BlockIndex } from "./region.js";

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

/**
 * Assigns one address of `request.family`; an owner that already has one gets
 * it back. A snapshot read by the caller serves the first attempt; a conflict
 * re-reads.
 */
export async function assignAddress(
  store: Datastore,
  request: AssignRequest,
  snapshot?: AllocationSnapshot,
): Promise<string> {
  let state = snapshot;
  let labels = request.namespaceLabels;
  let afterOverlap = false;
  const namespace = request.owner.namespace ?? "default";
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const { pools: allPools, blocks, claims } = state ?? (await store.readAllocationSnapshot());
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

    const claimed = new Set([...claims.map((claim) => claim.value.ip), ...(request.exclude ?? [])]);
    const outcome = await tryAssign(store, request.owner, pools, blocks, claimed, afterOverlap);
    if (outcome === "conflict-overlap") afterOverlap = true;
    if (outcome === "exhausted") {
      throw new IpamExhaustedError(
        `no free IPv${request.family} address in IP pools ${pools.map((pool) => pool.cidr).join(", ")}`,
      );
    }
    if (outcome !== "conflict" && outcome !== "conflict-overlap") return outcome;
    await sleep(Math.random() * Math.min(50, 2 * (attempt + 1)));
  }
  throw new IpamConflictError(`address assignment kept conflicting after ${MAX_ATTEMPTS} attempts`);
}

async function tryAssign(
  store: Datastore,
  owner: AllocationOwner,
  pools: readonly IpPool[],
  blocks: readonly Versioned<IpamBlock>[],
  claimed: ReadonlySet<string>,
  afterOverlap: boolean,
): Promise<string | "conflict" | "conflict-overlap" | "exhausted"> {
  const index = new BlockIndex(blocks);
  const inPool = (pool: IpPool) =>
    blocks.filter((block) => poolOf(pools, block.value.cidr) === pool);
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
    for (const block of inPool(pool).filter((b) => b.value.affinity === owner.node)) {
      const ip = freeIn(block.value);
      if (ip) return write(block.value, block.revision, ip);
    }
  }
  // 2. A new block, affine to this node, overlapping no block there is:
  // whatever size the blocks were made with, and whatever the pool says now.
  let overlapped = false;
  for (const pool of pools) {
    for (const prefix of blockPrefixes(pool)) {
      const cidr = formatPrefix(prefix);
      if (index.overlaps(cidr) || blocks.some((block) => block.value.cidr === cidr)) continue;
      const block = emptyBlock(cidr, owner.node);
      const ip = findFreeAddress(block, claimed);
      if (!ip) continue;
      const outcome = await write(block, undefined, ip);
      if (outcome !== "overlaps") return outcome;
      // The region lists a block this snapshot did not have: try the next.
      overlapped = true;
    }
  }
  // 3. Borrow a free address from another node's block.
  for (const pool of pools) {
    for (const block of inPool(pool)) {
      const ip = freeIn(block.value);
      if (ip) return write(block.value, block.revision, ip);
    }
  }
  // Blocks this snapshot did not have may hold free addresses: read again,
  // once (a region may also list blocks gone since, on Kubernetes).
  return overlapped && !afterOverlap ? "conflict-overlap" : "exhausted";

  async function write(
    block: IpamBlock,
    revision: string | undefined,
    ip: string,
  ): Promise<string | "conflict" | "overlaps"> {
    const written = await store.writeBlock({
      block: withAllocation(block, ip, owner),
      revision,
      assigned: { ip, node: owner.node },
    });
    return written === "written" ? ip : written;
  }
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
export async function releaseHandle(store: Datastore, handle: string): Promise<string[]> {
  const released: string[] = [];
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const blocks = await store.listBlocks();
    const holding = blocks.filter((block) => addressesOfHandle(block.value, handle).length > 0);
    if (holding.length === 0) return released;
    for (const block of holding) {
      const addresses = addressesOfHandle(block.value, handle);
      const written = await store.writeBlock({
        block: withoutHandle(block.value, handle),
        revision: block.revision,
        released: addresses,
      });
      if (written === "written") released.push(...addresses);
    }
  }
  throw new IpamConflictError(
    `releasing ${handle} kept conflicting after ${MAX_ATTEMPTS} attempts`,
  );
}

/** Handles that hold addresses on `node`, with the addresses. */
export async function listNodeHandles(
  store: Datastore,
  node: string,
): Promise<Map<string, string[]>> {
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
