// BIRD 2 configurations for buoy's BGP, and birdc's replies read back. Pure;
// dataplane/shell/bird.ts writes the file and runs birdc. buoy never speaks BGP
// itself: BIRD announces the node's prefixes and writes what it learns to
// the kernel.
//
// A node's config:
//   buoy_exports4/6  static protocols holding the prefixes to announce as
//                    blackhole routes, there only to be exported over BGP
//   buoy_kernel4/6   kernel protocols that write BGP-learned routes (and only
//                    those) to the kernel, with BIRD's route protocol 12
//                    (`proto bird`), and read nothing from it
//   peer_<name>      one BGP session per neighbor, in the neighbor's address
//                    family; same AS is iBGP, another AS eBGP
// A lab router's config has the same kernel protocols and sessions that
// import everything and export nothing.
import {
  formatAddress,
  formatPrefix,
  parseAddress,
  parsePrefix,
  type Family,
} from "../net/address.js";

export interface BirdNeighbor {
  /** Free text (a node name, a peer's name): the session's protocol name is derived from it. */
  name: string;
  /** IPv4 or IPv6 address on a segment the node is attached to. */
  address: string;
  asNumber: number;
}

export interface BirdNodeConfig {
  /** The node's IPv4 address. */
  routerId: string;
  asNumber: number;
  /** Other nodes (same AS: iBGP) and external peers (another AS: eBGP). */
  neighbors: BirdNeighbor[];
  /** Prefixes to announce (local IPAM blocks, /32 and /128 floating IPs). */
  exports: string[];
}

export interface BirdRouterConfig {
  routerId: string;
  asNumber: number;
  neighbors: BirdNeighbor[];
}

/** A BGP protocol as `birdc show protocols` lists it. */
export interface BgpSession {
  /** BIRD's protocol name (see renderBirdPeerNames). */
  name: string;
  /** BIRD's protocol state: `up`, `start`, `down`, `flush`… */
  state: string;
  /** The Info column: the BGP state (`Established`, `Active`, `Connect`…), then the last error if any. */
  info: string;
}

export class BirdConfigError extends Error {
  override readonly name = "BirdConfigError";
}

const EXPORTS_PROTOCOL: Record<Family, string> = { 4: "buoy_exports4", 6: "buoy_exports6" };
const KERNEL_PROTOCOL: Record<Family, string> = { 4: "buoy_kernel4", 6: "buoy_kernel6" };
const CHANNEL: Record<Family, string> = { 4: "ipv4", 6: "ipv6" };
const FAMILIES: readonly Family[] = [4, 6];
const PEER_TEMPLATE = "buoy_peer";
const PEER_PREFIX = "peer_";
/** BIRD refuses symbols longer than 64 characters; longer names are cut and hashed. */
const MAX_PEER_NAME = 48;
const MAX_AS = 4_294_967_295;

/** A node's BIRD config: announces `exports` to every neighbor, writes what it learns to the kernel. */
export function renderBirdNodeConfig(config: BirdNodeConfig): string {
  const routerId = validateRouterId(config.routerId);
  validateAs(config.asNumber, "the node");
  const neighbors = validateNeighbors(config.neighbors, routerId);
  const exports = validateExports(config.exports);
  return lines([
    "# BIRD 2 config of a buoy node, rendered by buoy: every change is overwritten.",
    `# AS ${config.asNumber}, ${neighbors.length} neighbor(s), ${exports.length} exported prefix(es).`,
    "",
    `router id ${routerId};`,
    "",
    ...deviceProtocol(),
    ...bfdProtocol(),
    "# The prefixes to announce, as blackhole routes that exist only to be",
    "# exported over BGP: the kernel protocols take BGP routes alone, so these",
    "# never reach the kernel (the agent installs the node's own routes).",
    ...FAMILIES.flatMap((family) => [
      `protocol static ${EXPORTS_PROTOCOL[family]} {`,
      `\t${CHANNEL[family]};`,
      ...exports
        .filter((prefix) => prefix.family === family)
        .map((prefix) => `\troute ${prefix.text} blackhole;`),
      "}",
      "",
    ]),
    ...kernelProtocols(),
    ...peerTemplate(config.asNumber),
    ...sessions(
      neighbors,
      config.asNumber,
      (family) => `where proto = "${EXPORTS_PROTOCOL[family]}"`,
    ),
  ]);
}

/** A lab router's BIRD config: takes every route its neighbors announce into its kernel, announces nothing. */
export function renderBirdRouterConfig(config: BirdRouterConfig): string {
  const routerId = validateRouterId(config.routerId);
  validateAs(config.asNumber, "the router");
  const neighbors = validateNeighbors(config.neighbors, routerId);
  return lines([
    "# BIRD 2 config of a buoy lab router, rendered by buoy: every change is overwritten.",
    `# AS ${config.asNumber}, ${neighbors.length} neighbor(s); announces nothing.`,
    "",
    `router id ${routerId};`,
    "",
    ...deviceProtocol(),
    ...bfdProtocol(),
    ...kernelProtocols(),
    ...peerTemplate(config.asNumber),
    ...sessions(neighbors, config.asNumber, undefined),
  ]);
}

/**
 * The BIRD protocol name of each neighbor's session, by neighbor name:
 * `peer_` and the name with every character outside `[A-Za-z0-9_]` turned
 * into `_`. A name that is too long, or that collides with another once
 * turned, gets a hash of the original instead of its tail.
 */
export function renderBirdPeerNames(
  neighbors: readonly Pick<BirdNeighbor, "name">[],
): Map<string, string> {
  const plain = (name: string) => PEER_PREFIX + name.replace(/[^A-Za-z0-9_]/g, "_");
  const uses = new Map<string, number>();
  for (const { name } of neighbors) uses.set(plain(name), (uses.get(plain(name)) ?? 0) + 1);
  const names = new Map<string, string>();
  for (const { name } of neighbors) {
    const id = plain(name);
    const unique = id.length <= MAX_PEER_NAME && uses.get(id) === 1;
    names.set(name, unique ? id : `${id.slice(0, MAX_PEER_NAME - 9)}_${fnv1a(name)}`);
  }
  return names;
}

/** BGP protocols in the output of `birdc show protocols`, in its order. */
export function parseBirdProtocols(output: string): BgpSession[] {
  const sessions: BgpSession[] = [];
  for (const line of output.split("\n")) {
    const [name, proto, , state, ...rest] = line.trim().split(/\s+/);
    if (proto !== "BGP" || name === undefined || state === undefined) continue;
    // The Since column is a time, a date, or both, depending on its age and `timeformat`.
    while (rest[0] !== undefined && SINCE_PART.test(rest[0])) rest.shift();
    sessions.push({ name, state, info: rest.join(" ") });
  }
  return sessions;
}

const SINCE_PART = /^(\d{4}-\d{2}-\d{2}|\d{2}:\d{2}:\d{2}(\.\d+)?)$/;

/**
 * Reads the reply of `birdc -v configure` (`-v`: each reply line starts with
 * BIRD's four-digit code): undefined when BIRD took the config, else what
 * BIRD answered, without the codes (a parse error with file, line and
 * column; a reconfiguration ignored because BIRD is shutting down…).
 */
export function parseBirdConfigureReply(output: string): string | undefined {
  const replies: { code: string; text: string }[] = [];
  for (const line of output.split("\n")) {
    const coded = /^(\d{4})[ -](.*)$/.exec(line);
    if (coded) replies.push({ code: coded[1] as string, text: coded[2] as string });
    else if (line.startsWith(" ") && replies.length > 0)
      replies.push({ code: "", text: line.trim() });
  }
  if (replies.some((reply) => CONFIGURE_ACCEPTED.has(reply.code))) return undefined;
  const answer = replies.filter((reply) => !CONFIGURE_PROGRESS.has(reply.code));
  return answer.map((reply) => reply.text).join("\n") || `birdc gave no reply: ${output.trim()}`;
}

/**
 * BIRD's reply codes (doc/reply_codes) for a config it took: 0003
 * Reconfigured, 0004 Reconfiguration in progress (sessions restarting), 0005
 * Reconfiguration already in progress, queueing new config, 0020
 * Configuration OK (`configure check`).
 */
const CONFIGURE_ACCEPTED = new Set(["0003", "0004", "0005", "0020"]);
/** 0001 the greeting, 0002 Reading configuration from <file>. */
const CONFIGURE_PROGRESS = new Set(["0001", "0002"]);

function deviceProtocol(): string[] {
  return [
    "# Interfaces and their addresses: `direct` sessions and next hops resolve on them.",
    "protocol device buoy_device {",
    "}",
    "",
  ];
}

function bfdProtocol(): string[] {
  return [
    "# BFD (RFC 5880) beside every session: a peer that goes silent (its node",
    "# lost, powered off, its link cut behind a switch) is down after 1 s, 5",
    "# missed packets 200 ms apart, instead of the hold time's 9 s, and its",
    "# routes (a moved floating IP's old node among them) are withdrawn then.",
    "# A peer that runs no BFD keeps its session: BIRD drops one only when its",
    "# BFD session goes from up to down.",
    "protocol bfd buoy_bfd {",
    '\tinterface "*" {',
    "\t\tmin rx interval 200 ms;",
    "\t\tmin tx interval 200 ms;",
    "\t\tmultiplier 5;",
    "\t};",
    "}",
    "",
  ];
}

function kernelProtocols(): string[] {
  return [
    "# Routes learned over BGP, and only those, go to the kernel (route protocol",
    "# 12, `proto bird`, metric 32); nothing is read from it. Only routes with a",
    "# usable next hop: one BIRD cannot resolve would go in as `unreachable` and",
    "# hide any less specific route. BIRD removes its routes when it stops.",
    ...FAMILIES.flatMap((family) => [
      `protocol kernel ${KERNEL_PROTOCOL[family]} {`,
      `\t${CHANNEL[family]} {`,
      "\t\timport none;",
      "\t\texport where source = RTS_BGP && dest = RTD_UNICAST;",
      "\t};",
      "}",
      "",
    ]),
  ];
}

function peerTemplate(asNumber: number): string[] {
  return [
    "# Every session. BIRD's defaults suit routers that rarely restart; a node",
    "# and its peers start in any order, and must notice a dead peer quickly.",
    "#   hold time 9, keepalive time 3: a peer that stops answering (its BIRD",
    "#     hung, the link silently broken) is dropped, and its routes withdrawn,",
    "#     after 9 s instead of 240 s; keepalives every 3 s keep RFC 4271's 1:3",
    "#     ratio, so two can be lost, and 9 s rides out a BIRD starved of CPU",
    "#     on a loaded node. Withdrawals from a live peer go out at once, timers",
    "#     or not.",
    "#   connect delay time 1: the first connection 1 s after the session starts",
    "#     (and after a refused one) instead of 5 s; BIRD raises 0 to 1.",
    "#   connect retry time 5: a connection attempt left unanswered (the peer's",
    "#     node is down, its address not answering ARP) is given up after 5 s",
    "#     and a new one made, instead of after 120 s: a peer that comes back",
    "#     and does not connect itself (a passive router) is up within 5 s.",
    "#   error wait time 1, 10: a session that failed (hold timer expired, a",
    "#     notification) restarts after 1 s, doubling on repeated errors up to",
    "#     10 s, instead of 60 s up to 300 s.",
    "#   direct: the neighbor is on a connected segment (one L2 segment, no",
    "#     IGP): eBGP's default; iBGP otherwise assumes multihop, which rules",
    "#     out `gateway direct`.",
    "#   bfd on: the session follows its BFD session (buoy_bfd above).",
    `template bgp ${PEER_TEMPLATE} {`,
    `\tlocal as ${asNumber};`,
    "\tdirect;",
    "\thold time 9;",
    "\tkeepalive time 3;",
    "\tconnect delay time 1;",
    "\tconnect retry time 5;",
    "\terror wait time 1, 10;",
    "\tbfd on;",
    "}",
    "",
  ];
}

/**
 * One session per neighbor, in its address family's channel. `gateway direct`
 * takes the announced next hop as a neighbor on the segment (eBGP's default;
 * iBGP's default, `gateway recursive`, looks the next hop up in BIRD's table,
 * where no IGP put a route to it, and every learned route stays unreachable).
 * `next hop self` announces this node's address on the segment whatever the
 * exported route's own next hop (eBGP does it anyway; iBGP would keep it).
 * `announce` is the export filter by family; undefined exports nothing.
 */
function sessions(
  neighbors: readonly ValidNeighbor[],
  asNumber: number,
  announce: ((family: Family) => string) | undefined,
): string[] {
  return neighbors.flatMap((neighbor) => [
    `# ${text(neighbor.name)}: ${neighbor.asNumber === asNumber ? "iBGP" : "eBGP"}`,
    `protocol bgp ${neighbor.protocol} from ${PEER_TEMPLATE} {`,
    `\tdescription "${text(neighbor.name)}";`,
    `\tneighbor ${neighbor.address} as ${neighbor.asNumber};`,
    `\t${CHANNEL[neighbor.family]} {`,
    "\t\timport all;",
    ...(announce
      ? [`\t\texport ${announce(neighbor.family)};`, "\t\tnext hop self;"]
      : ["\t\texport none;"]),
    "\t\tgateway direct;",
    "\t};",
    "}",
    "",
  ]);
}

interface ValidNeighbor extends BirdNeighbor {
  family: Family;
  protocol: string;
}

interface ValidPrefix {
  family: Family;
  text: string;
}

function validateRouterId(routerId: string): string {
  const address = parseAddress(routerId);
  if (address?.family !== 4) {
    throw new BirdConfigError(`router ID '${routerId}' is not an IPv4 address`);
  }
  return formatAddress(address);
}

/** Whether BIRD takes `asNumber` as an AS number (1 to 2^32-1). */
export function isValidAsNumber(asNumber: number): boolean {
  return Number.isInteger(asNumber) && asNumber >= 1 && asNumber <= MAX_AS;
}

function validateAs(asNumber: number, whose: string): void {
  if (!isValidAsNumber(asNumber)) {
    throw new BirdConfigError(`AS number ${asNumber} of ${whose} is not in 1-${MAX_AS}`);
  }
}

/** Checks the neighbors and sorts them by protocol name. */
function validateNeighbors(neighbors: readonly BirdNeighbor[], routerId: string): ValidNeighbor[] {
  const protocols = renderBirdPeerNames(neighbors);
  const names = new Set<string>();
  const addresses = new Map<string, string>();
  const valid: ValidNeighbor[] = [];
  for (const neighbor of neighbors) {
    const address = parseAddress(neighbor.address);
    const protocol = protocols.get(neighbor.name) as string;
    if (!address) {
      throw new BirdConfigError(
        `neighbor ${text(neighbor.name)}: '${neighbor.address}' is not an IP address`,
      );
    }
    validateAs(neighbor.asNumber, `neighbor ${text(neighbor.name)}`);
    const canonical = formatAddress(address);
    if (names.has(neighbor.name)) {
      throw new BirdConfigError(`neighbor name ${text(neighbor.name)} is given twice`);
    }
    const other = addresses.get(canonical);
    if (other !== undefined) {
      throw new BirdConfigError(
        `neighbors ${text(other)} and ${text(neighbor.name)} have the same address ${canonical}`,
      );
    }
    if (canonical === routerId) {
      throw new BirdConfigError(
        `neighbor ${text(neighbor.name)} has the router ID's address ${canonical}`,
      );
    }
    names.add(neighbor.name);
    addresses.set(canonical, neighbor.name);
    valid.push({ ...neighbor, address: canonical, family: address.family, protocol });
  }
  if (new Set(protocols.values()).size !== protocols.size) {
    throw new BirdConfigError("two neighbor names hash to the same BIRD protocol name");
  }
  return valid.sort((a, b) => (a.protocol < b.protocol ? -1 : a.protocol > b.protocol ? 1 : 0));
}

/** Canonical, deduplicated, sorted by family, address, then length. */
function validateExports(exports: readonly string[]): ValidPrefix[] {
  const prefixes = new Map<string, { family: Family; base: bigint; length: number }>();
  for (const text of exports) {
    const prefix = parsePrefix(text);
    if (!prefix) {
      throw new BirdConfigError(`exported prefix '${text}' is not a CIDR without host bits`);
    }
    prefixes.set(formatPrefix(prefix), prefix);
  }
  return [...prefixes]
    .sort(
      ([, a], [, b]) =>
        a.family - b.family || (a.base < b.base ? -1 : a.base > b.base ? 1 : a.length - b.length),
    )
    .map(([text, prefix]) => ({ family: prefix.family, text }));
}

/**
 * Free text for a BIRD string or comment: BIRD 2.0 strings have no escapes
 * and end at `"` or a line break, so anything outside printable ASCII, `"`
 * and `\` become `_`.
 */
function text(value: string): string {
  return value.replace(/[^\x20-\x7e]|["\\]/g, "_");
}

/** 32-bit FNV-1a of the UTF-16 code units, as 8 hex digits. */
function fnv1a(value: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < value.length; i++) {
    hash ^= value.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, "0");
}

/** One line each, without the trailing blank ones. */
function lines(all: string[]): string {
  while (all.at(-1) === "") all.pop();
  return all.map((line) => line + "\n").join("");
}
