// How a node reaches the rest of the cluster, computed from the datastore's
// records alone (pure). Every mode routes a floating IP hosted here to its
// pod; beyond that:
//   direct  every other node's IPAM blocks and hosted floating IPs are routed
//           via that node's address (nodes on one L2 segment, no BGP);
//   bgp     this node's blocks and hosted floating IPs are announced by BIRD
//           to the other nodes (full mesh) and the configured peers; BIRD
//           writes what it learns to the kernel;
//   vxlan   as direct, through a VXLAN device (vxlan.ts) for the pools whose
//           vxlanMode asks for it: Always (the default), CrossSubnet (only
//           to nodes outside this node's own subnets); Never routes direct;
//   none    floating IPs on this node only (routing done by someone else).
// Blocks affine to this node get a blackhole route in direct and bgp modes,
// so an unallocated address of them is dropped here rather than sent out the
// default route back to where it came from.
//
// One bad record never stops the node: the kernel holds one route per
// destination and BIRD one session per protocol name and address, so of two
// items that would share one, the later in sorted order is skipped, reported
// and counted (the first wins on every node and every run).
import type { BgpPeer, IpPool, NodeRecord } from "../model/records.js";
import { DEFAULT_AS_NUMBER } from "../model/records.js";
import { findPool } from "../floating/validate.js";
import {
  addressRange,
  canonicalAddress,
  formatPrefix,
  parseAddress,
  parsePrefix,
  prefixContains,
  type Address,
  type Family,
} from "../net/address.js";
import {
  isValidAsNumber,
  renderBirdPeerNames,
  type BirdNeighbor,
  type BirdNodeConfig,
} from "./bird-config.js";
import type { NatBinding } from "./nat-plan.js";
import { routeKey, type NodeRoute } from "./node-routes.js";
import {
  VXLAN_DEVICE,
  vtepMac,
  vxlanDevice,
  type VxlanDevice,
  type VxlanPeer,
  type VxlanPlan,
} from "./vxlan.js";

export type RoutingMode = "none" | "direct" | "bgp" | "vxlan";

/** Whether the mode routes to every other node's addresses itself (so reads every node's floating IPs). */
export function routesToNodes(mode: RoutingMode): boolean {
  return mode === "direct" || mode === "vxlan";
}

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
  /** The AS number of a node whose record names none (`buoy agent --as-number`; DEFAULT_AS_NUMBER). */
  defaultAsNumber?: number;
  /** vxlan mode: this node's own networks (its addresses' prefixes), for vxlanMode CrossSubnet. */
  subnets?: readonly string[];
}

export interface RoutingPlan {
  /** The kernel routes this node owns, sorted. */
  routes: NodeRoute[];
  /** bgp mode: BIRD's configuration. */
  bird?: BirdNodeConfig;
  /** vxlan mode: the devices and the peers the routes through them need. */
  vxlan?: VxlanPlan;
  /** What cannot be routed as asked, one line each (logged by the agent). */
  problems: string[];
  /** Items skipped so that the rest can be applied, by reason (counted by the agent). */
  refused: RoutingRefusal[];
}

export type RoutingRefusalReason =
  | "not an IP"
  | "invalid AS number"
  | "duplicate route"
  | "duplicate BGP neighbor name"
  | "duplicate BGP neighbor address"
  | "BGP neighbor at own address"
  | "outside every pool"
  | "duplicate tunnel endpoint"
  | "unusable tunnel endpoint";

export interface RoutingRefusal {
  /** What was skipped: a route's destination, a BGP neighbor's name. */
  item: string;
  reason: RoutingRefusalReason;
}

const HOST_LENGTH: Record<Family, number> = { 4: 32, 6: 128 };

export function planRouting(input: RoutingInput): RoutingPlan {
  const { node, mode } = input;
  const problems: string[] = [];
  const refused: RoutingRefusal[] = [];
  const refuse = (item: string, reason: RoutingRefusalReason, problem: string) => {
    refused.push({ item, reason });
    problems.push(problem);
  };
  // The kernel keys a route by its destination (buoy's metric and table are
  // fixed): a second route to one destination would replace the first on
  // every sync, and a delete of one would remove the other. The first added
  // wins: floating IPs hosted here, then blocks, borrowed addresses and
  // floating IPs hosted elsewhere, each in sorted order.
  const byDst = new Map<string, NodeRoute>();
  const routes: NodeRoute[] = [];
  const addRoute = (route: NodeRoute) => {
    const first = byDst.get(route.dst);
    if (first) {
      return refuse(
        route.dst,
        "duplicate route",
        `route ${routeKey(route)} skipped: ${routeKey(first)} routes the same destination`,
      );
    }
    byDst.set(route.dst, route);
    routes.push(route);
  };
  for (const binding of input.bindings) {
    addRoute({
      family: binding.family,
      dst: `${binding.floating}/${HOST_LENGTH[binding.family]}`,
      dev: binding.hostIfname,
    });
  }
  if (mode === "none") return { routes: sortRoutes(routes), problems, refused };

  const nodes = new Map(input.nodes.map((record) => [record.name, record]));
  const addressOf = (name: string, family: Family): string | undefined =>
    nodes.get(name)?.addresses.find((address) => parseAddress(address)?.family === family);
  // direct and vxlan: routes to other nodes' addresses, via their own.
  const toNodes = routesToNodes(mode);
  const tunnels = mode === "vxlan" ? planTunnels(input, nodes, refuse, problems) : undefined;
  const routeTo = (holder: string, family: Family, dst: string, what: string) => {
    const via = addressOf(holder, family);
    if (!via) {
      problems.push(`${what}: node ${holder} has no IPv${family} address`);
      return;
    }
    if (!tunnels?.encapsulates(dst, via)) return addRoute({ family, dst, via });
    const peer = tunnels.peer(holder, family, via);
    if (peer) addRoute({ family, dst, via: peer.address, dev: VXLAN_DEVICE[family], onlink: true });
  };
  const localBlocks: { cidr: string; family: Family }[] = [];
  // A block affine to two nodes (a bad record) goes to the first by name
  // on every node: that node blackholes it, the others route it there.
  const blocks = input.blocks
    .flatMap(({ cidr, affinity }) => {
      const prefix = parsePrefix(cidr);
      return prefix ? [{ cidr: formatPrefix(prefix), family: prefix.family, affinity }] : [];
    })
    .sort((a, b) => compare(a.cidr, b.cidr) || compare(a.affinity, b.affinity));
  // A block record any node's plugin may write: only a block inside a pool
  // is routed (a 0.0.0.0/1 "block" would send the host's traffic to its node).
  const pooled = input.pools.flatMap((pool) => {
    const prefix = parsePrefix(pool.cidr);
    return prefix ? [prefix] : [];
  });
  const inPools = (cidr: string) => {
    const prefix = parsePrefix(cidr);
    return (
      prefix !== undefined &&
      pooled.some(
        (pool) =>
          pool.length <= prefix.length &&
          prefixContains(pool, { family: prefix.family, value: prefix.base }),
      )
    );
  };
  for (const { cidr, family, affinity } of blocks) {
    if (affinity === "") continue;
    if (!inPools(cidr)) {
      refuse(cidr, "outside every pool", `block ${cidr} skipped: it lies in no IP pool`);
      continue;
    }
    if (affinity === node) {
      localBlocks.push({ cidr, family });
      // A block of one address (blockSize 32/128) is the pod's own route's
      // destination: a blackhole would replace that route.
      if (!cidr.endsWith(`/${HOST_LENGTH[family]}`)) {
        addRoute({ family, dst: cidr, blackhole: true });
      }
    } else if (toNodes) routeTo(affinity, family, cidr, `block ${cidr}`);
  }

  // A pod's address borrowed from another node's block: its own /32
  // (/128), more specific than the block, routed to the pod's node.
  const borrowedHere: string[] = [];
  const borrowed = canonicalItems(input.borrowed ?? []);
  for (const { ip, family, node: holder } of borrowed) {
    if (!inPools(`${ip}/${HOST_LENGTH[family]}`)) {
      refuse(ip, "outside every pool", `borrowed address ${ip} skipped: it lies in no IP pool`);
      continue;
    }
    if (holder === node) borrowedHere.push(`${ip}/${HOST_LENGTH[family]}`);
    else if (toNodes) routeTo(holder, family, `${ip}/${HOST_LENGTH[family]}`, `address ${ip}`);
  }

  const local = new Set(input.bindings.map((binding) => binding.floating));
  if (toNodes) {
    // One route per floating IP; while a move is in flight two nodes may
    // report it for a moment: the first by name wins until the old one withdraws.
    const routed = new Set<string>();
    for (const { ip, family, node: host } of canonicalItems(input.hosted)) {
      if (host === node || local.has(ip) || routed.has(ip)) continue;
      routed.add(ip);
      routeTo(host, family, `${ip}/${HOST_LENGTH[family]}`, `floating IP ${ip}`);
    }
    return {
      routes: sortRoutes(routes),
      ...(tunnels ? { vxlan: tunnels.plan() } : {}),
      problems,
      refused,
    };
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
    return { routes: sortRoutes(routes), problems, refused };
  }
  const fallbackAs = input.defaultAsNumber ?? DEFAULT_AS_NUMBER;
  const asNumber = self?.asNumber ?? fallbackAs;
  if (!isValidAsNumber(asNumber)) {
    refuse(
      node,
      "invalid AS number",
      `node ${node} has AS number ${asNumber}: BGP needs 1-4294967295`,
    );
    return { routes: sortRoutes(routes), problems, refused };
  }
  // One session per address and per name; an address given twice (two
  // records, or a peer at a node's or this node's own address), a name given
  // twice (node "peer" at 10.0.0.1 and BGPPeer "10.0.0.1") or an AS number
  // BIRD refuses is reported and skipped, so one bad record never stops the
  // node's BGP.
  const neighbors: BirdNeighbor[] = [];
  const own = new Set((self?.addresses ?? []).map((address) => canonicalAddress(address)));
  const taken = new Map<string, string>();
  const names = new Set<string>();
  const addNeighbor = (name: string, address: string, asNumber: number) => {
    const canonical = canonicalAddress(address);
    if (!canonical)
      return refuse(name, "not an IP", `BGP neighbor ${name}: ${address} is not an IP address`);
    if (!isValidAsNumber(asNumber))
      return refuse(
        name,
        "invalid AS number",
        `BGP neighbor ${name}: AS number ${asNumber} is not in 1-4294967295`,
      );
    if (own.has(canonical))
      return refuse(
        name,
        "BGP neighbor at own address",
        `BGP neighbor ${name}: ${address} is this node's own address`,
      );
    const first = taken.get(canonical);
    if (first)
      return refuse(
        name,
        "duplicate BGP neighbor address",
        `BGP neighbor ${name}: ${address} is already ${first}'s`,
      );
    if (names.has(name))
      return refuse(
        name,
        "duplicate BGP neighbor name",
        `BGP neighbor ${name} at ${address}: the name is already a neighbor's`,
      );
    taken.set(canonical, name);
    names.add(name);
    neighbors.push({ name, address: canonical, asNumber });
  };
  for (const other of [...nodes.values()].sort((a, b) => compare(a.name, b.name))) {
    if (other.name === node) continue;
    for (const address of other.addresses) {
      addNeighbor(`${other.name}_${address}`, address, other.asNumber ?? fallbackAs);
    }
  }
  for (const peer of [...input.peers].sort((a, b) => compare(a.name, b.name))) {
    if (peer.node !== undefined && peer.node !== "" && peer.node !== node) continue;
    addNeighbor(`peer_${peer.name}`, peer.peerIP, peer.asNumber);
  }
  dropCollidingProtocols(neighbors, refuse);
  return {
    routes: sortRoutes(routes),
    bird: { routerId, asNumber, neighbors, exports },
    problems,
    refused,
  };
}

/**
 * BIRD refuses two sessions with one protocol name. Distinct neighbor names
 * can still share one after renderBirdPeerNames (a 32-bit hash, or a hashed
 * name equal to another's plain one): the later is dropped until none do.
 */
function dropCollidingProtocols(
  neighbors: BirdNeighbor[],
  refuse: (item: string, reason: RoutingRefusalReason, problem: string) => void,
): void {
  for (;;) {
    const protocols = renderBirdPeerNames(neighbors);
    const seen = new Set<string>();
    const index = neighbors.findIndex(({ name }) => {
      const protocol = protocols.get(name) as string;
      if (seen.has(protocol)) return true;
      seen.add(protocol);
      return false;
    });
    if (index < 0) return;
    const [dropped] = neighbors.splice(index, 1) as [BirdNeighbor];
    refuse(
      dropped.name,
      "duplicate BGP neighbor name",
      `BGP neighbor ${dropped.name} at ${dropped.address}: its BIRD protocol name ${protocols.get(dropped.name)} is already a neighbor's`,
    );
  }
}

/** Where no packet may be sent to as a tunnel's outer destination (ipaddr.js's range names). */
const UNUSABLE_ENDPOINT = new Set([
  "unspecified",
  "loopback",
  "multicast",
  "broadcast",
  "linkLocal",
  "ipv4Mapped",
]);

/**
 * The VXLAN devices of this node (one per family it has an address of), and
 * the peers its routes use: one per other node and family, at the node's own
 * address. Two nodes that give one address (a bad or hostile record) would
 * share one tunnel endpoint: the first by name keeps it, nothing is tunnelled
 * to the other.
 */
function planTunnels(
  input: RoutingInput,
  nodes: ReadonlyMap<string, NodeRecord>,
  refuse: (item: string, reason: RoutingRefusalReason, problem: string) => void,
  problems: string[],
) {
  const devices = new Map<Family, VxlanDevice>();
  const owner = new Map<string, string>();
  for (const address of nodes.get(input.node)?.addresses ?? []) {
    const canonical = canonicalAddress(address);
    const family = parseAddress(address)?.family;
    if (!canonical || !family) continue;
    owner.set(canonical, input.node);
    if (!devices.has(family)) devices.set(family, vxlanDevice(input.node, family, canonical));
  }
  for (const record of [...nodes.values()].sort((a, b) => compare(a.name, b.name))) {
    for (const address of record.addresses) {
      const canonical = canonicalAddress(address);
      if (canonical && !owner.has(canonical)) owner.set(canonical, record.name);
    }
  }
  const subnets = (input.subnets ?? []).flatMap((cidr) => parsePrefix(cidr) ?? []);
  const peers = new Map<string, VxlanPeer>();
  const told = new Set<string>();
  const once = (key: string, tell: () => void) => {
    if (told.has(key)) return;
    told.add(key);
    tell();
  };
  return {
    /** Whether a route to `dst` via `via` goes through the tunnel, as its pool's vxlanMode says. */
    encapsulates(dst: string, via: string): boolean {
      const mode = findPool(dst.slice(0, dst.lastIndexOf("/")), input.pools)?.vxlanMode;
      if (mode === "Never") return false;
      if (mode !== "CrossSubnet") return true;
      const next = parseAddress(via);
      return !next || !subnets.some((subnet) => prefixContains(subnet, next));
    },
    /** The peer a route to `holder` at `via` goes through; undefined (and told) when there can be none. */
    peer(holder: string, family: Family, via: string): VxlanPeer | undefined {
      if (!devices.has(family)) {
        once(`device ${family}`, () =>
          problems.push(
            `node ${input.node} has no IPv${family} address in its Node record: VXLAN needs one as its tunnel endpoint`,
          ),
        );
        return undefined;
      }
      const address = canonicalAddress(via) as string;
      const range = addressRange(parseAddress(address) as Address);
      if (UNUSABLE_ENDPOINT.has(range)) {
        once(`endpoint ${holder} ${address}`, () =>
          refuse(
            holder,
            "unusable tunnel endpoint",
            `node ${holder}: its address ${address} is ${range}, not a tunnel endpoint; nothing is tunnelled to it`,
          ),
        );
        return undefined;
      }
      const first = owner.get(address);
      if (first !== holder) {
        once(`endpoint ${holder} ${address}`, () =>
          refuse(
            holder,
            "duplicate tunnel endpoint",
            `node ${holder}: its address ${address} is ${first}'s too; nothing is tunnelled to it`,
          ),
        );
        return undefined;
      }
      const key = `${family} ${address}`;
      let peer = peers.get(key);
      if (!peer) peers.set(key, (peer = { family, address, mac: vtepMac(holder, family) }));
      return peer;
    },
    plan(): VxlanPlan {
      return {
        devices: [...devices.values()].sort((a, b) => a.family - b.family),
        peers: [...peers.values()].sort(
          (a, b) => a.family - b.family || compare(a.address, b.address),
        ),
      };
    },
  };
}

/** Items with a canonical address, sorted by it, then by node: unparsable ones left out. */
function canonicalItems(
  items: readonly { ip: string; node: string }[],
): { ip: string; family: Family; node: string }[] {
  return items
    .flatMap(({ ip, node }) => {
      const address = parseAddress(ip);
      return address ? [{ ip: canonicalAddress(ip) as string, family: address.family, node }] : [];
    })
    .sort((a, b) => compare(a.ip, b.ip) || compare(a.node, b.node));
}

function sortRoutes(routes: NodeRoute[]): NodeRoute[] {
  return routes.sort((a, b) => a.family - b.family || compare(a.dst, b.dst));
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
