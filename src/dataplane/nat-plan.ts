// The floating-IP NAT a node should carry, computed from the datastore's
// records alone. The agent validates again here, every time, what it programs:
// only an ipNAT whose claim is held by the endpoint's own container becomes a
// binding; everything else is refused with a reason and never reaches the kernel.
import type { FloatingIpClaim, IpPool, WorkloadEndpoint } from "../model/records.js";
import { podRef } from "../model/records.js";
import { findPool } from "../floating/validate.js";
import {
  canonicalAddress,
  formatAddress,
  formatPrefix,
  parseAddress,
  parsePrefix,
  prefixMask,
  type Family,
  type Prefix,
} from "../net/address.js";

/** What planNat reads of an endpoint. */
export type PlannedEndpoint = Omit<WorkloadEndpoint, "mac" | "network" | "createdAt" | "podUID">;

/** One floating IP standing for one pod address on this node. */
export interface NatBinding {
  family: Family;
  /** The floating IP, canonical text. */
  floating: string;
  /** The pod address it is translated to, canonical text. */
  pod: string;
  /** The pod's host-side interface: where the floating IP's route points. */
  hostIfname: string;
  /** The pod's new outbound connections leave from this floating IP (one per pod address). */
  egress?: true;
}

/**
 * Why an ipNAT is not programmed; "duplicate egress source": it is, but the
 * pod's address already leaves from another endpoint's floating IP, so its
 * egress is not (fip_egress holds one element per pod address).
 */
export type NatRefusalReason =
  | "not an IP"
  | "family mismatch"
  | "not the pod's address"
  | "not in any pool"
  | "no claim"
  | "claimed by another container"
  | "requested by another endpoint"
  | "host interface missing"
  | "duplicate egress source";

export interface NatRefusal {
  floatingIP: string;
  /** The endpoint that asked for it, `<namespace>/<pod>`. */
  pod: string;
  reason: NatRefusalReason;
}

export interface NatPlan {
  /** Sorted by family, then floating IP. */
  bindings: NatBinding[];
  /** Sorted by floating IP text, then pod. */
  refused: NatRefusal[];
  /** Bindings held back while another node still translates the floating IP (a move in progress). */
  waiting?: NatWaiting[];
  natOutgoing?: NatOutgoing;
}

export interface NatWaiting {
  floatingIP: string;
  pod: string;
  /** The node that still holds it: this node programs it once that node has withdrawn. */
  node: string;
}

/**
 * Whether the endpoint's pod leaves from its floating IPs, and its ipNATs in
 * the order that picks which: the pod's own opt-in (the endpoint's `egress`),
 * or a claim of its own container marked `egress` (a FloatingIP's
 * spec.egress), whose address then comes first (stable otherwise, so the
 * annotation's order decides the rest).
 */
function egressOrder(
  endpoint: PlannedEndpoint,
  claimsByIp: ReadonlyMap<string, Pick<FloatingIpClaim, "containerID" | "egress">>,
): { egress: boolean; ipNATs: readonly PlannedEndpoint["ipNATs"][number][] } {
  const marked = (nat: { externalIP: string }) => {
    const claim = claimsByIp.get(canonicalAddress(nat.externalIP) ?? nat.externalIP);
    return claim?.egress === true && claim.containerID === endpoint.containerID;
  };
  if (!endpoint.ipNATs.some(marked)) {
    return { egress: endpoint.egress === true, ipNATs: endpoint.ipNATs };
  }
  const ipNATs = [...endpoint.ipNATs].sort((a, b) => Number(marked(b)) - Number(marked(a)));
  return { egress: true, ipNATs };
}

/**
 * The bindings `node` should program. With `pools`, a floating IP must also lie
 * inside one of them (any pool, disabled ones included). With `hostInterfaces`
 * (the node's links), an endpoint whose host-side interface is gone (a pod
 * that died without a DEL) is refused instead of routed to nowhere. With
 * `hostedBy` (floating IP -> the node whose status says it translates it), a
 * floating IP another node still translates waits until that node withdraws.
 */
export function planNat(
  endpoints: readonly PlannedEndpoint[],
  node: string,
  claims: readonly Pick<FloatingIpClaim, "ip" | "containerID" | "egress">[],
  pools?: readonly IpPool[],
  hostInterfaces?: ReadonlySet<string>,
  hostedBy?: ReadonlyMap<string, string>,
): NatPlan {
  const claimsByIp = new Map(
    claims.map((claim) => [canonicalAddress(claim.ip) ?? claim.ip, claim]),
  );
  const bindings = new Map<string, NatBinding>();
  const refused: NatRefusal[] = [];
  const refusedKeys = new Set<string>();
  const waiting: NatWaiting[] = [];
  // fip_egress is keyed by pod address: two endpoints claiming one address
  // (a stale record, a pod's address reused) must not both put it there, or
  // nft refuses the whole table. The first endpoint in sorted order keeps it.
  const egressTaken = new Set<string>();
  // Sorted so that which of two endpoints wins a contested IP never depends on listing order.
  for (const endpoint of [...endpoints].filter((e) => e.node === node).sort(compareEndpoints)) {
    const pod = podRef(endpoint);
    const own = new Set(
      endpoint.ipNetworks.map((net) => canonicalAddress(net.split("/")[0] ?? "")),
    );
    // Pod addresses that already leave from one of their floating IPs.
    const egressFrom = new Set<string>();
    const { egress, ipNATs } = egressOrder(endpoint, claimsByIp);
    for (const nat of ipNATs) {
      const floating = parseAddress(nat.externalIP);
      const internal = parseAddress(nat.internalIP);
      const refuse = (reason: NatRefusalReason) => {
        const floatingIP = floating ? formatAddress(floating) : nat.externalIP;
        const key = `${floatingIP} ${pod} ${reason}`;
        if (!refusedKeys.has(key)) refused.push({ floatingIP, pod, reason });
        refusedKeys.add(key);
      };
      if (!floating || !internal) {
        refuse("not an IP");
        continue;
      }
      const binding: NatBinding = {
        family: floating.family,
        floating: formatAddress(floating),
        pod: formatAddress(internal),
        hostIfname: endpoint.interfaceName,
      };
      const claim = claimsByIp.get(binding.floating);
      const earlier = bindings.get(binding.floating);
      if (floating.family !== internal.family) refuse("family mismatch");
      else if (!own.has(binding.pod)) refuse("not the pod's address");
      else if (pools && !findPool(binding.floating, pools)) refuse("not in any pool");
      else if (!claim) refuse("no claim");
      else if (claim.containerID !== endpoint.containerID) refuse("claimed by another container");
      else if (hostInterfaces && !hostInterfaces.has(binding.hostIfname))
        refuse("host interface missing");
      else if (!earlier) {
        // A move: the old node still translates it. Program it once that node has withdrawn.
        const host = hostedBy?.get(binding.floating);
        if (host !== undefined && host !== node) {
          waiting.push({ floatingIP: binding.floating, pod, node: host });
          continue;
        }
        if (egress && !egressFrom.has(binding.pod)) {
          egressFrom.add(binding.pod);
          // The binding stays (its fip_dnat key is its own); only egress is refused.
          if (egressTaken.has(binding.pod)) refuse("duplicate egress source");
          else binding.egress = true;
          egressTaken.add(binding.pod);
        }
        bindings.set(binding.floating, binding);
      } else if (earlier.pod !== binding.pod || earlier.hostIfname !== binding.hostIfname) {
        refuse("requested by another endpoint");
      }
    }
  }
  return {
    ...(waiting.length > 0 ? { waiting } : {}),
    bindings: sortBindings([...bindings.values()]),
    refused: refused.sort(
      (a, b) => compareText(a.floatingIP, b.floatingIP) || compareText(a.pod, b.pod),
    ),
  };
}

/** Family first, then the floating IP's numeric value. */
/**
 * Sorts by family, then numeric address, parsing each address once (a
 * comparator that parses costs ~240 ms at 10k bindings, measured).
 */
export function sortBindings<T extends Pick<NatBinding, "family" | "floating">>(
  bindings: T[],
): T[] {
  const keyed = bindings.map((binding) => ({
    binding,
    value: parseAddress(binding.floating)?.value ?? 0n,
  }));
  keyed.sort((a, b) =>
    a.binding.family !== b.binding.family
      ? a.binding.family - b.binding.family
      : a.value < b.value
        ? -1
        : a.value > b.value
          ? 1
          : 0,
  );
  return keyed.map((entry) => entry.binding);
}

function compareEndpoints(a: PlannedEndpoint, b: PlannedEndpoint): number {
  return (
    compareText(a.namespace, b.namespace) ||
    compareText(a.pod, b.pod) ||
    compareText(a.containerID, b.containerID) ||
    compareText(a.endpoint, b.endpoint)
  );
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * natOutgoing (Calico's pool field): traffic from a pool with it set, to an
 * address outside every pool, leaves the node masqueraded. Floating IPs live
 * in pools, so traffic to them is never masqueraded.
 */
export interface NatOutgoing {
  /** CIDRs of the pools with natOutgoing, canonical, nested ones dropped, sorted. */
  sources: string[];
  /** CIDRs of every pool (disabled ones too), likewise. */
  pools: string[];
}

export function planNatOutgoing(pools: readonly IpPool[]): NatOutgoing {
  return {
    sources: coverPrefixes(pools.filter((pool) => pool.natOutgoing).map((pool) => pool.cidr)),
    pools: coverPrefixes(pools.map((pool) => pool.cidr)),
  };
}

/**
 * The smallest sorted list of the prefixes covering the same addresses when
 * prefixes either nest or are disjoint: duplicates and nested ones dropped
 * (nft refuses overlapping elements in an interval set). Unparsable text is skipped.
 */
export function coverPrefixes(cidrs: readonly string[]): string[] {
  const parsed = cidrs
    .map((cidr) => parsePrefix(cidr, true))
    .filter((prefix) => prefix !== undefined)
    .sort((a, b) =>
      a.family !== b.family
        ? a.family - b.family
        : a.base < b.base
          ? -1
          : a.base > b.base
            ? 1
            : a.length - b.length,
    );
  const kept: Prefix[] = [];
  for (const prefix of parsed) {
    const last = kept.at(-1);
    const inside =
      last !== undefined &&
      last.family === prefix.family &&
      (prefix.base & prefixMask(last.family, last.length)) === last.base;
    if (!inside) kept.push(prefix);
  }
  return kept.map(formatPrefix);
}
