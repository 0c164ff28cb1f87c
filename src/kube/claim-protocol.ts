// The Kubernetes claim protocol (ADR 0006), one for the CNI plugin's ADD
// (kube-datastore.ts, plain HTTPS) and the agent's live edits (pod-claims.ts,
// client-node). Kubernetes has no multi-object transaction, so a floating IP
// is claimed from one object's guarantees:
//   - the FloatingIPClaim is created if absent; on AlreadyExists it is read
//     again and its holder named (deleted meanwhile: created again);
//   - then the IP is checked to be no pod's address, from the IPAM blocks
//     holding it, found by containment through their region (ipam/region.ts)
//     and read from the API server (quorum reads, not a cache);
//   - a refusal deletes the claims this call created, on their uid.
// A block write reads the claims after it writes (KubernetesDatastore
// writeBlock): whichever side is second sees the first. The calls go through
// ClaimPort, one adapter per client: http-claim-port.ts,
// custom-objects-claim-port.ts.
import { checkClaimConflict, type ClaimRequester } from "../floating/validate.js";
import { blockCidrsToRead, podAllocation } from "../floating/claim-check.js";
import { regionCidrOf } from "../ipam/region.js";
import type { FloatingIpClaim, IpPool, IpamBlock, IpamRegion } from "../model/records.js";
import { claimFromObject, claimToObject, type KubeObject } from "./objects.js";

/** The calls the protocol makes, on claims named by their IP and blocks by their CIDR. */
export interface ClaimPort {
  /** Creates the claim object: its uid, or undefined when one of its name exists (AlreadyExists). */
  createClaim(object: KubeObject): Promise<string | undefined>;
  /** The claim object of `ip`, undefined when there is none. */
  getClaim(ip: string): Promise<KubeObject | undefined>;
  /** Deletes the claim of `ip` while its uid is `uid`. */
  deleteClaim(ip: string, uid: string): Promise<void>;
  /** The IPAM block of `cidr`, undefined when there is none. */
  getBlock(cidr: string): Promise<IpamBlock | undefined>;
  /** The IPAM region of `cidr` (its blocks), undefined when there is none. */
  getRegion(cidr: string): Promise<IpamRegion | undefined>;
}

export interface ClaimOptions {
  /** The owner of the claims (ADR 0006): the node's Node uid, when known. */
  nodeUID: string | undefined;
  /** The pools: a block made before regions is found at its pool's blockSize. */
  pools: readonly IpPool[];
  /** How often a claim is created again after it was deleted between create and read. */
  attempts: number;
  /** The error once every attempt found the claim gone again. */
  exhausted: (ip: string) => Error;
  /**
   * Check each IP's block right after its claim (the agent), or every block
   * after all the claims (the plugin). Both read after writing.
   */
  checkEach: boolean;
  /** More to do before the claims stand (the plugin: patch the pod); a failure undoes them. */
  then?: () => Promise<void>;
  /** The IPs whose claims could not be deleted again after a refusal. */
  notUndone?: (ips: string[]) => void;
}

/**
 * Claims `claims` (all for one container), all or none: resolves when every
 * one is held by its container (created now, or held already); rejects with
 * the refusal (FloatingIpError naming the holder or the pod whose address it
 * is) or the API's error, after deleting the claims it created.
 */
export async function claimAll(
  port: ClaimPort,
  claims: readonly FloatingIpClaim[],
  options: ClaimOptions,
): Promise<void> {
  const created: { ip: string; uid: string }[] = [];
  try {
    for (const claim of claims) {
      const uid = await createClaim(port, claim, options);
      if (uid) created.push({ ip: claim.ip, uid });
      if (options.checkEach) await checkNotPodAddress(port, claim, options.pools);
    }
    if (!options.checkEach) {
      for (const claim of claims) await checkNotPodAddress(port, claim, options.pools);
    }
    await options.then?.();
  } catch (error) {
    const undone = await Promise.allSettled(
      created.map(({ ip, uid }) => port.deleteClaim(ip, uid)),
    );
    const left = created.filter((_, i) => undone[i]?.status === "rejected").map(({ ip }) => ip);
    if (left.length > 0) options.notUndone?.(left);
    throw error;
  }
}

/** Creates the claim if absent: its uid, or undefined when this container held it already. */
async function createClaim(
  port: ClaimPort,
  claim: FloatingIpClaim,
  { nodeUID, attempts, exhausted }: ClaimOptions,
): Promise<string | undefined> {
  for (let attempt = 0; attempt < attempts; attempt++) {
    const uid = await port.createClaim(claimToObject(claim, nodeUID));
    if (uid !== undefined) return uid;
    const holder = await port.getClaim(claim.ip);
    if (!holder) continue; // deleted between the two calls: create again
    checkClaimConflict(claim.ip, requesterOf(claim), claimFromObject(holder), undefined);
    return undefined;
  }
  throw exhausted(claim.ip);
}

/**
 * Refuses a floating IP that is a pod's address, by the blocks holding it as
 * the API server has them now, whatever size they were made with.
 */
async function checkNotPodAddress(
  port: ClaimPort,
  claim: FloatingIpClaim,
  pools: readonly IpPool[],
): Promise<void> {
  const regionCidr = regionCidrOf(claim.ip);
  // The block at each pool's blockSize alongside the region, the rest of
  // what the region lists after it: one round trip where the region lists
  // no other block holding the IP. All of them after the claim's write.
  const guessed = blockCidrsToRead(claim.ip, undefined, pools);
  const [region, first] = await Promise.all([
    regionCidr ? port.getRegion(regionCidr) : undefined,
    Promise.all(guessed.map((cidr) => port.getBlock(cidr))),
  ]);
  const rest = blockCidrsToRead(claim.ip, region, pools).filter((cidr) => !guessed.includes(cidr));
  const blocks = [...first, ...(await Promise.all(rest.map((cidr) => port.getBlock(cidr))))];
  const held = blocks.filter((block): block is IpamBlock => block !== undefined);
  checkClaimConflict(claim.ip, requesterOf(claim), undefined, podAllocation(held, claim.ip));
}

function requesterOf(claim: FloatingIpClaim): ClaimRequester {
  return { containerID: claim.containerID, namespace: claim.namespace ?? "default" };
}
