// A FloatingIP's address from its spec.pool on etcd (issue 15): the first of
// the candidates its uid orders (failover/pool-address.ts) that no claim
// holds and no pod has as its own address, read in one request for them all
// (their claims and regions, then the blocks those list). The claim that
// gives it to a pod is still created only if absent: this only picks.
// Which address a FloatingIP with spec.pool stands for, in poolAddressFor.
import { FloatingIpError } from "../floating/annotation.js";
import { checkClaims } from "../floating/claim-check.js";
import { floatingIpKey, type FloatingIpRecord } from "../failover/floating-ip.js";
import {
  ALLOCATION_TRIES,
  inPool,
  poolAddressCandidates,
  poolToAllocateFrom,
} from "../failover/pool-address.js";
import type { IpPool } from "../model/records.js";
import type { Labels } from "../model/selector.js";
import { readClaimLookup } from "./claims-transaction.js";
import type { Store } from "./store.js";

export async function allocatePoolAddress(
  store: Store,
  pools: readonly IpPool[],
  pool: IpPool,
  seed: string,
  namespace: string,
  /** Addresses known to be taken without a read (claimed, or another FloatingIP's). */
  taken: (address: string) => boolean,
  attempt = 0,
  /** The FloatingIP (namespace/name): a candidate whose claim it already holds is its own. */
  mine?: string,
): Promise<string | undefined> {
  const candidates = [...poolAddressCandidates(pool, seed, ALLOCATION_TRIES, taken, attempt)];
  if (candidates.length === 0) return undefined;
  const lookup = await readClaimLookup(store, pools, candidates);
  const nobody = { namespace, pod: "", containerID: "", node: "" };
  return candidates.find((address) => {
    // Claimed a moment ago, its watch event still on the way.
    if (mine !== undefined && lookup.claim(address)?.value.floatingIP === mine) return true;
    try {
      checkClaims([address], nobody, lookup);
      return true;
    } catch (error) {
      if (error instanceof FloatingIpError) return false;
      throw error;
    }
  });
}

export interface PoolAddressContext {
  store: Store;
  pools: readonly IpPool[];
  /** The FloatingIP's namespace's labels. */
  labels: Labels;
  /** The addresses its claims hold (its floatingIP mark). */
  held: Iterable<string>;
  /** The address its status names, if any. */
  named: string | undefined;
  /** The address it found taken when it came to claim it: not picked again. */
  passedOver: string | undefined;
  claimedByOther(address: string): boolean;
  /** Another FloatingIP's spec or status names it. */
  namedByOther(address: string): boolean;
  /** Attempts already found the pool full (each looks further on); undefined: may not try yet. */
  attempt: number | undefined;
}

export type PoolAddress =
  { address: string; allocated?: true; reason?: undefined } | { reason: string; message: string };

/**
 * The address a FloatingIP with spec.pool stands for: the one its claim
 * holds, else the one its status names while no other holds it, else one
 * allocated now; or why none (the pool is not its namespace's, or full).
 */
export async function poolAddressFor(
  fip: Pick<FloatingIpRecord, "namespace" | "name" | "uid">,
  name: string,
  context: PoolAddressContext,
): Promise<PoolAddress> {
  let pool: IpPool;
  try {
    pool = poolToAllocateFrom(name, context.pools, fip.namespace, context.labels);
  } catch (error) {
    if (error instanceof FloatingIpError) return { reason: "PoolRefused", message: error.message };
    throw error;
  }
  const held = [...context.held].find((ip) => inPool(ip, pool));
  if (held !== undefined) return { address: held };
  const { named, passedOver } = context;
  if (
    named !== undefined &&
    named !== passedOver &&
    inPool(named, pool) &&
    !context.claimedByOther(named)
  ) {
    return { address: named };
  }
  const taken = (ip: string) =>
    ip === passedOver || context.claimedByOther(ip) || context.namedByOther(ip);
  const allocated =
    context.attempt === undefined
      ? undefined
      : await allocatePoolAddress(
          context.store,
          context.pools,
          pool,
          fip.uid,
          fip.namespace,
          taken,
          context.attempt,
          floatingIpKey(fip.namespace, fip.name),
        );
  if (allocated === undefined) {
    return {
      reason: "PoolExhausted",
      message: `no free address in IP pool ${pool.name} (${ALLOCATION_TRIES} tried)`,
    };
  }
  return { address: allocated, allocated: true };
}
