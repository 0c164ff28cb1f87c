// The VXLAN overlay (`buoy agent --routing vxlan`) as data: one device per
// family on each node, and for every other node this one tunnels to a peer
// entry, a permanent neighbour (the other node's address -> its device's MAC)
// and a forwarding entry (that MAC -> the other node's address). Routes to
// the other node's blocks, borrowed addresses and floating IPs go `via <its
// address> dev <device> onlink`, so no tunnel address is allocated: the next
// hop is the node's own address, resolved by the permanent neighbour, never
// by ARP or flooding across the tunnel.
//
// A device's MAC is derived from its node's name, so every node knows every
// other's without a record anyone writes. Pure: the shell
// (shell/linux-vxlan.ts) reads and writes the kernel.
import {
  canonicalAddress,
  enclosingPrefix,
  formatPrefix,
  parseAddress,
  type Family,
} from "../net/address.js";

/** buoy's devices, apart from Calico's vxlan.calico and vxlan-v6.calico. */
export const VXLAN_DEVICE: Record<Family, string> = { 4: "vxlan.buoy", 6: "vxlan6.buoy" };
/**
 * Not Calico's 4096: during a migration both overlays run on one node, and
 * the kernel refuses a second device with one VNI on one port.
 */
export const VXLAN_VNI: Record<Family, number> = { 4: 4100, 6: 6100 };
/** IANA's VXLAN port. */
export const VXLAN_PORT = 4789;
/** What encapsulation adds to a packet: outer IP, UDP and VXLAN headers and the inner Ethernet header. */
export const VXLAN_OVERHEAD: Record<Family, number> = { 4: 50, 6: 70 };

export interface VxlanDevice {
  family: Family;
  name: string;
  vni: number;
  port: number;
  /** This node's address, the outer source of what it encapsulates. */
  local: string;
  mac: string;
}

/** Another node this one tunnels to. */
export interface VxlanPeer {
  family: Family;
  /** Its address: the outer destination, and the next hop of the routes through it. */
  address: string;
  mac: string;
}

/** What the kernel should hold. */
export interface VxlanPlan {
  devices: VxlanDevice[];
  peers: VxlanPeer[];
}

export const NO_VXLAN: VxlanPlan = { devices: [], peers: [] };

/**
 * What the kernel holds: buoy's devices, and the neighbours and forwarding
 * entries on them, each read on its own, so half a peer (an entry someone
 * removed or added) is seen and repaired.
 */
export interface VxlanKernelState {
  devices: (VxlanDevice & { intact: boolean })[];
  /** Neighbours: address -> MAC. */
  neighbours: KernelEntry[];
  /** Forwarding entries with a remote address: MAC -> address. */
  forwarding: KernelEntry[];
}

/** An entry as read: `stale` when not permanent (the kernel's own, or someone's), which no peer is. */
export type KernelEntry = VxlanPeer & { stale?: true };

export const NO_VXLAN_KERNEL: VxlanKernelState = { devices: [], neighbours: [], forwarding: [] };

/**
 * A unicast, locally administered MAC from the node's name and the family:
 * 46 bits of the name's 64-bit FNV-1a hash (no secret is at stake: a node
 * may set its device's MAC to anything; the hash only keeps nodes apart).
 */
export function vtepMac(node: string, family: Family): string {
  let hash = 0xcbf29ce484222325n;
  for (const byte of new TextEncoder().encode(`buoy vxlan ${family} ${node}`)) {
    hash = ((hash ^ BigInt(byte)) * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  const bytes = Array.from({ length: 6 }, (_, index) =>
    Number((hash >> BigInt(8 * index)) & 0xffn),
  );
  bytes[0] = ((bytes[0] as number) & 0xfc) | 0x02;
  return bytes.map((byte) => byte.toString(16).padStart(2, "0")).join(":");
}

export function vxlanDevice(node: string, family: Family, local: string): VxlanDevice {
  return {
    family,
    name: VXLAN_DEVICE[family],
    vni: VXLAN_VNI[family],
    port: VXLAN_PORT,
    local,
    mac: vtepMac(node, family),
  };
}

export interface VxlanChanges {
  /** An `ip -batch` script: devices made, changed or removed, and neighbours. */
  links: string;
  /** A `bridge -batch` script: forwarding entries. */
  fdb: string;
  /** Families whose device is made anew (the routes through the old one went with it). */
  remade: Family[];
}

const deviceKey = (device: VxlanDevice) =>
  `${device.name} ${device.vni} ${device.port} ${device.local} ${device.mac}`;
const peerKey = (peer: VxlanPeer & { stale?: true }) =>
  `${peer.family} ${peer.address} ${peer.mac}${peer.stale ? " stale" : ""}`;

/**
 * The scripts that turn `current` into `desired`. A device whose VNI, port,
 * local address or MAC differs, or that is down or learning, is deleted and
 * made again with its entries; a neighbour or forwarding entry no peer has
 * is deleted, and a peer's missing one added.
 */
export function renderVxlanChanges(
  desired: VxlanPlan,
  current: VxlanKernelState,
  /** The interface that holds each device's local address: the device takes its MTU less the overhead. */
  uplinks: Partial<Record<Family, string>> = {},
): VxlanChanges {
  const links: string[] = [];
  const fdb: string[] = [];
  const remade: Family[] = [];
  const kept = new Set<Family>();
  for (const family of [4, 6] as const) {
    const want = desired.devices.find((device) => device.family === family);
    const have = current.devices.find((device) => device.family === family);
    const same = want && have && have.intact && deviceKey(want) === deviceKey(have);
    if (same) kept.add(family);
    if (have && !same) links.push(`link del ${have.name}`);
    if (want && !same) {
      remade.push(family);
      const dev = uplinks[family] !== undefined ? ` dev ${uplinks[family]}` : "";
      links.push(
        `link add ${want.name} type vxlan id ${want.vni} local ${want.local}${dev} dstport ${want.port} nolearning`,
        `link set ${want.name} address ${want.mac} up`,
      );
    }
  }
  const peers = desired.peers.filter((peer) =>
    desired.devices.some((device) => device.family === peer.family),
  );
  const wanted = new Set(peers.map(peerKey));
  const onKept = (entries: readonly KernelEntry[]) =>
    entries.filter((entry) => kept.has(entry.family));
  const neighbours = new Set(onKept(current.neighbours).map(peerKey));
  const forwarding = new Set(onKept(current.forwarding).map(peerKey));
  for (const entry of onKept(current.neighbours)) {
    if (!wanted.has(peerKey(entry)))
      links.push(`neigh del ${entry.address} dev ${VXLAN_DEVICE[entry.family]}`);
  }
  for (const entry of onKept(current.forwarding)) {
    if (!wanted.has(peerKey(entry)))
      fdb.push(`fdb del ${entry.mac} dev ${VXLAN_DEVICE[entry.family]} dst ${entry.address} self`);
  }
  for (const peer of peers) {
    const dev = VXLAN_DEVICE[peer.family];
    if (!neighbours.has(peerKey(peer)))
      links.push(`neigh replace ${peer.address} lladdr ${peer.mac} dev ${dev} nud permanent`);
    if (!forwarding.has(peerKey(peer)))
      fdb.push(`fdb replace ${peer.mac} dev ${dev} dst ${peer.address} self permanent`);
  }
  return { links: lines(links), fdb: lines(fdb), remade };
}

function lines(items: readonly string[]): string {
  return items.map((line) => line + "\n").join("");
}

// ---- reading the kernel back ----------------------------------------------

/** buoy's devices in `ip -json -details link show type vxlan`; others' are left out. */
export function parseVxlanDevices(listing: unknown): VxlanKernelState["devices"] {
  if (!Array.isArray(listing)) return [];
  const devices: VxlanKernelState["devices"] = [];
  for (const family of [4, 6] as const) {
    const entry = (listing as Record<string, unknown>[]).find(
      (link) => typeof link === "object" && link?.ifname === VXLAN_DEVICE[family],
    );
    if (!entry) continue;
    const info = (entry.linkinfo as { info_data?: Record<string, unknown> } | undefined)?.info_data;
    const up = Array.isArray(entry.flags) && (entry.flags as unknown[]).includes("UP");
    devices.push({
      family,
      name: VXLAN_DEVICE[family],
      vni: Number(info?.id),
      port: Number(info?.port),
      local: canonicalAddress(String(info?.[family === 4 ? "local" : "local6"] ?? "")) ?? "",
      mac: typeof entry.address === "string" ? entry.address : "",
      intact: up && info?.learning === false,
    });
  }
  return devices;
}

/** A device's permanent neighbours, from `ip -json neigh show dev <device>`. */
export function parseVxlanNeighbours(family: Family, listing: unknown): KernelEntry[] {
  const entries = Array.isArray(listing) ? (listing as Record<string, unknown>[]) : [];
  return entries.flatMap((entry): KernelEntry[] => {
    const address = canonicalAddress(String(entry?.dst ?? ""));
    if (!address) return [];
    const mac = typeof entry.lladdr === "string" ? entry.lladdr : "";
    const permanent = Array.isArray(entry.state) && entry.state.includes("PERMANENT");
    return [{ family, address, mac, ...(permanent && mac ? {} : { stale: true as const }) }];
  });
}

/** A device's forwarding entries with a remote address, from `bridge -json fdb show dev <device>`. */
export function parseVxlanForwarding(family: Family, listing: unknown): KernelEntry[] {
  const entries = Array.isArray(listing) ? (listing as Record<string, unknown>[]) : [];
  return entries.flatMap((entry): KernelEntry[] => {
    const address = canonicalAddress(String(entry?.dst ?? ""));
    if (!address || typeof entry.mac !== "string") return [];
    return [
      {
        family,
        address,
        mac: entry.mac,
        ...(entry.state === "permanent" ? {} : { stale: true as const }),
      },
    ];
  });
}

/**
 * The node's own networks from `ip -json address show`: each global
 * address's prefix (what vxlanMode CrossSubnet reaches without the tunnel),
 * buoy's own devices left out.
 */
export function parseLocalSubnets(listing: unknown): string[] {
  const links = Array.isArray(listing) ? (listing as Record<string, unknown>[]) : [];
  const devices = new Set(Object.values(VXLAN_DEVICE));
  const subnets = new Set<string>();
  for (const link of links) {
    if (typeof link?.ifname !== "string" || devices.has(link.ifname)) continue;
    const addresses = Array.isArray(link.addr_info)
      ? (link.addr_info as Record<string, unknown>[])
      : [];
    for (const entry of addresses) {
      const address = parseAddress(String(entry?.local ?? ""));
      if (!address || entry.scope !== "global" || typeof entry.prefixlen !== "number") continue;
      subnets.add(formatPrefix(enclosingPrefix(address, entry.prefixlen)));
    }
  }
  return [...subnets].sort();
}
