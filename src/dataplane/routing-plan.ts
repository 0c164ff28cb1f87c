// How a node reaches the rest of the cluster, computed from the datastore's
// records alone (pure). Every mode routes a floating IP hosted here to its
// pod; beyond that:
//   direct  every other node's IPAM blocks and hosted floating IPs are routed
//           via that node's address (nodes on one L2 segment, no BGP);
//   bgp     this node's blocks and hosted floating IPs are announced by BIRD
//           to the other nodes (full mesh) and the configured peers; BIRD
//           writes what it learns to the kernel;
//   none    floating IPs on this node only (routing done by someone else).
// Blocks affine to this node get a blackhole route in direct and bgp modes,
// so an unallocated address of them is dropped here rather than sent out the
// default route back to where it came from.
import type { BgpPeer, IpPool, NodeRecord } from "../model/records.js";
import { DEFAULT_AS_NUMBER } from "../model/records.js";
import { findPool } from "../floating/validate.js";
import { canonicalAddress, parseAddress, parsePrefix, type Family } from "../net/address.js";
import type { BirdNeighbor, BirdNodeConfig } from "./bird-config.js";
import type { NatBinding } from "./nat-plan.js";
import type { NodeRoute } from "./node-routes.js";

export type RoutingMode = "none" | "direct" | "bgp";

export interface RoutingInput {
  node: string;
  mode: RoutingMode;
  /** The floating IPs this node translates now. */
  bindings: readonly Pick<NatBinding, "family" | "floating" | "hostIfname">[];
  nodes: readonly NodeRecord[];
  blocks: readonly { cidr: string; affinity: string }[];
  /** Addresses pods hold outside their node's blocks (IPAM borrowed them). */
  borrowed?: readonly { ip: string; node: string }[];
  /** Which node translates which floating IP (the nodes' status records). */
  hosted: readonly { ip: string; node: string }[];
  pools: readonly IpPool[];
  peers: readonly BgpPeer[];
}

export interface RoutingPlan {
  /** The kernel routes this node owns, sorted. */
  routes: NodeRoute[];
  /** bgp mode: BIRD's configuration. */
  bird?: BirdNodeConfig;
  /** What cannot be routed as asked, one line each (logged by the agent). */
  problems: string[];
}

const HOST_LENGTH: Record<Family, number> = { 4: 32, 6: 128 };

export function planRouting(input: RoutingInput): RoutingPlan {
  const { node, mode } = input;
  const problems: string[] = [];
  const routes: NodeRoute[] = input.bindings.map((binding) => ({
    family: binding.family,
    dst: `${binding.floating}/${HOST_LENGTH[binding.family]}`,
    dev: binding.hostIfname,
  }));
  if (mode === "none") return { routes: sortRoutes(routes), problems };

  const nodes = new Map(input.nodes.map((record) => [record.name, record]));
  const addressOf = (name: string, family: Family): string | undefined =>
    nodes.get(name)?.addresses.find((address) => parseAddress(address)?.family === family);
  const localBlocks: { cidr: string; family: Family }[] = [];
  for (const block of input.blocks) {
    const family = parsePrefix(block.cidr)?.family;
    if (!family || block.affinity === "") continue;
    if (block.affinity === node) {
      localBlocks.push({ cidr: block.cidr, family });
      // A block of one address (blockSize 32/128) is the pod's own route's
      // destination: a blackhole would replace that route.
      if (!block.cidr.endsWith(`/${HOST_LENGTH[family]}`)) {
        routes.push({ family, dst: block.cidr, blackhole: true });
      }
    } else if (mode === "direct") {
      const via = addressOf(block.affinity, family);
      if (via) routes.push({ family, dst: block.cidr, via });
      else problems.push(`block ${block.cidr}: node ${block.affinity} has no IPv${family} address`);
    }
  }

  // A pod's address borrowed from another node's block: its own /32
  // (/128), more specific than the block, routed to the pod's node.
  const borrowedHere: string[] = [];
  for (const { ip, node: holder } of input.borrowed ?? []) {
    const family = parseAddress(ip)?.family;
    if (!family) continue;
    if (holder === node) borrowedHere.push(`${ip}/${HOST_LENGTH[family]}`);
    else if (mode === "direct") {
      const via = addressOf(holder, family);
      if (via) routes.push({ family, dst: `${ip}/${HOST_LENGTH[family]}`, via });
      else problems.push(`address ${ip}: node ${holder} has no IPv${family} address`);
    }
  }

  const local = new Set(input.bindings.map((binding) => binding.floating));
  if (mode === "direct") {
    // One route per floating IP; while a move is in flight two nodes may
    // report it for a moment: the first by name wins until the old one withdraws.
    const routed = new Set<string>();
    for (const { ip, node: host } of [...input.hosted].sort((a, b) => compare(a.node, b.node))) {
      const family = parseAddress(ip)?.family;
      if (!family || host === node || local.has(ip) || routed.has(ip)) continue;
      const via = addressOf(host, family);
      if (!via) {
        problems.push(`floating IP ${ip}: node ${host} has no IPv${family} address`);
        continue;
      }
      routed.add(ip);
      routes.push({ family, dst: `${ip}/${HOST_LENGTH[family]}`, via });
    }
    return { routes: sortRoutes(routes), problems };
  }

  // bgp
  const exported = (ip: string) => {
    const pool = findPool(ip, input.pools);
    return pool !== undefined && !pool.disableBGPExport;
  };
  const exports = [
    ...localBlocks.filter((block) => exported(block.cidr.split("/")[0] ?? "")).map((b) => b.cidr),
    ...borrowedHere.filter((cidr) => exported(cidr.split("/")[0] ?? "")),
    ...input.bindings
      .filter((binding) => exported(binding.floating))
      .map((binding) => `${binding.floating}/${HOST_LENGTH[binding.family]}`),
  ];
  const self = nodes.get(node);
  const routerId = self?.addresses.find((address) => parseAddress(address)?.family === 4);
  if (!routerId) {
    problems.push(
      `node ${node} has no IPv4 address in its Node record: BGP needs one as router ID`,
    );
    return { routes: sortRoutes(routes), problems };
  }
  // One session per address; an address given twice (two records, or a
  // peer at a node's or this node's own address) is reported and skipped,
  // so one bad record never stops the node's BGP.
  const neighbors: BirdNeighbor[] = [];
  const own = new Set((self?.addresses ?? []).map((address) => canonicalAddress(address)));
  const taken = new Map<string, string>();
  const addNeighbor = (name: string, address: string, asNumber: number) => {
    const canonical = canonicalAddress(address);
    if (!canonical) return problems.push(`BGP neighbor ${name}: ${address} is not an IP address`);
    if (own.has(canonical))
      return problems.push(`BGP neighbor ${name}: ${address} is this node's own address`);
    const first = taken.get(canonical);
    if (first) return problems.push(`BGP neighbor ${name}: ${address} is already ${first}'s`);
    taken.set(canonical, name);
    neighbors.push({ name, address: canonical, asNumber });
  };
  for (const other of [...nodes.values()].sort((a, b) => compare(a.name, b.name))) {
    if (other.name === node) continue;
    for (const address of other.addresses) {
      addNeighbor(`${other.name}_${address}`, address, other.asNumber ?? DEFAULT_AS_NUMBER);
    }
  }
  for (const peer of [...input.peers].sort((a, b) => compare(a.name, b.name))) {
    if (peer.node !== undefined && peer.node !== "" && peer.node !== node) continue;
    addNeighbor(`peer_${peer.name}`, peer.peerIP, peer.asNumber);
  }
  return {
    routes: sortRoutes(routes),
    bird: { routerId, asNumber: self?.asNumber ?? DEFAULT_AS_NUMBER, neighbors, exports },
    problems,
  };
}

function sortRoutes(routes: NodeRoute[]): NodeRoute[] {
  return routes.sort((a, b) => a.family - b.family || compare(a.dst, b.dst));
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
