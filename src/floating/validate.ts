// Floating-IP checks that need only data: pool membership, address family,
// and the conflict rules against existing claims and allocations (SPEC §4).
import { parseAddress, parsePrefix, prefixContains, type Family } from "../net/address.js";
import type { AllocationOwner, FloatingIpClaim, IpPool } from "../model/records.js";
import { podRef } from "../model/records.js";
import { FloatingIpError } from "./annotation.js";
import type { Labels } from "../model/selector.js";
import { poolRestrictsNamespaces, poolSelectsNamespace } from "../ipam/pool.js";

/** Floating IPs one pod may hold unless the CNI config's `max_floating_ips_per_pod` says otherwise. */
export const DEFAULT_MAX_FLOATING_IPS = 16;
/** The highest bound a config may set (a 4 KiB annotation holds about 400 addresses anyway). */
export const MAX_FLOATING_IPS_LIMIT = 1024;

export interface FloatingBinding {
  externalIP: string;
  internalIP: string;
}

/** The pool a floating IP lies in, any pool (disabled pools included). */
export function findPool(ip: string, pools: readonly IpPool[]): IpPool | undefined {
  const address = parseAddress(ip);
  if (!address) return undefined;
  return pools.find((pool) => {
    const prefix = parsePrefix(pool.cidr);
    return prefix !== undefined && prefixContains(prefix, address);
  });
}

/** Throws when a pod asks for more floating IPs (distinct addresses) than `max`. */
export function validateFloatingIpCount(ips: readonly string[], max: number): void {
  if (ips.length > max) {
    throw new FloatingIpError(`pod asks for ${ips.length} floating IPs; at most ${max}`);
  }
}

/** Throws unless every floating IP lies inside a configured pool. */
export function validateInPools(ips: readonly string[], pools: readonly IpPool[]): void {
  for (const ip of ips) {
    if (!findPool(ip, pools)) {
      throw new FloatingIpError(`floating IP ${ip} is not within any configured IP pool`);
    }
  }
}

/**
 * Pairs each floating IP with the pod's first address of the same family.
 * `podIps` are bare addresses (no prefix length).
 */
export function planBindings(ips: readonly string[], podIps: readonly string[]): FloatingBinding[] {
  return ips.map((externalIP) => {
    const family = parseAddress(externalIP)?.family;
    const internalIP = podIps.find((ip) => parseAddress(ip)?.family === family);
    if (internalIP === undefined) {
      const name: Record<Family, string> = { 4: "IPv4", 6: "IPv6" };
      const wanted = name[family ?? 4];
      throw new FloatingIpError(
        `floating IP ${externalIP} is ${wanted} but the pod has no ${wanted} address`,
      );
    }
    return { externalIP, internalIP };
  });
}

/** The container asking for a floating IP, and its pod's namespace. */
export interface ClaimRequester {
  containerID: string;
  namespace: string;
}

/**
 * Checks one floating IP against the claim that exists for it (if any) and the
 * pod address allocation at the same address (if any). The pod in the way is
 * named only to a requester of its own namespace (SPEC §4): a tenant learns
 * nothing of another namespace's pods from a refusal.
 */
export function checkClaimConflict(
  ip: string,
  requester: ClaimRequester,
  claim: FloatingIpClaim | undefined,
  allocation: AllocationOwner | undefined,
): void {
  if (claim && claim.containerID !== requester.containerID) {
    throw new FloatingIpError(`floating IP ${ip} is already held by ${podFor(requester, claim)}`);
  }
  if (allocation) {
    throw new FloatingIpError(
      `floating IP ${ip} is the address of ${podFor(requester, allocation)}`,
    );
  }
}

function podFor(
  requester: ClaimRequester,
  owner: { namespace?: string | undefined; pod?: string | undefined },
): string {
  return (owner.namespace ?? "default") === requester.namespace
    ? `pod ${podRef(owner)}`
    : "a pod in another namespace";
}

/**
 * Throws unless the pod's namespace may use the pool of every floating IP
 * (the pool's namespaceSelector against the namespace's labels; SPEC §4).
 * IPs in no pool are validateInPools()' to refuse.
 */
export function validatePoolNamespaces(
  ips: readonly string[],
  pools: readonly IpPool[],
  namespace: string,
  labels: Labels,
): void {
  for (const ip of ips) {
    const pool = findPool(ip, pools);
    if (pool && !poolSelectsNamespace(pool, labels)) {
      throw new FloatingIpError(
        `floating IP ${ip} is in pool ${pool.name}, which namespace ${namespace} may not use`,
      );
    }
  }
}

/** Whether checking `ips` needs the namespace's labels: some pool of theirs restricts namespaces. */
export function poolNamespacesMatter(ips: readonly string[], pools: readonly IpPool[]): boolean {
  return ips.some((ip) => {
    const pool = findPool(ip, pools);
    return pool !== undefined && poolRestrictsNamespaces(pool);
  });
}
