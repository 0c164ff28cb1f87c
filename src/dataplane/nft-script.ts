// buoy's nftables table, one per family (`table ip buoy`, `table ip6 buoy`):
// rendered as `nft -f` scripts, and read back from `nft -j` listings. Pure;
// dataplane/shell/nft.ts runs them.
//
// The table holds two maps and three one-rule chains, with no protocol match,
// so every IP protocol is translated, and one map lookup per new connection
// whatever the number of floating IPs:
//   fip_dnat     floating IP -> pod IP, used from prerouting (traffic arriving
//                at the node) and output (traffic the node itself sends)
//   fip_hairpin  pod IP . floating IP it dialled -> that floating IP, used from
//                postrouting: a pod that reaches its own floating IP is
//                source-translated to it, so its replies come back through the
//                node. The key's second half is the connection's original
//                destination (`ct original ip daddr`), not the translated one,
//                so a pod holding several floating IPs of one family has one
//                element per floating IP (`pod . pod` keys would collide, and
//                nft refuses the whole table).
import { canonicalAddress, parseAddress, type Family } from "../net/address.js";
import { coverPrefixes, sortBindings, type NatBinding, type NatOutgoing } from "./nat-plan.js";

export const NFT_TABLE = "buoy";
export const NFT_FAMILY: Record<Family, "ip" | "ip6"> = { 4: "ip", 6: "ip6" };
const ADDRESS_TYPE: Record<Family, string> = { 4: "ipv4_addr", 6: "ipv6_addr" };
const OWNER_COMMENT = "floating-IP NAT owned by buoy: every change is overwritten";

/** What the nftables table holds of a binding (the route holds the interface). */
export type NftBinding = Pick<NatBinding, "family" | "floating" | "pod" | "egress">;

/**
 * A script that replaces buoy's table of one family with one holding exactly
 * the plan's bindings of that family, in one transaction: create it if absent,
 * delete it, define it whole. Connections already translated keep their
 * conntrack entries, so a replacement does not interrupt them.
 */
export function renderNftTable(
  plan: { readonly bindings: readonly NftBinding[]; readonly natOutgoing?: NatOutgoing },
  family: Family,
): string {
  const table = `${NFT_FAMILY[family]} ${NFT_TABLE}`;
  const ip = NFT_FAMILY[family];
  const type = ADDRESS_TYPE[family];
  const bindings = ofFamily(plan.bindings, family);
  const masquerade = natOutgoingFor(plan.natOutgoing, family);
  return [
    `# buoy floating-IP NAT for IPv${family}: replaces the whole table in one transaction`,
    `table ${table} {}`,
    `delete table ${table}`,
    `table ${table} {`,
    `\tcomment "${OWNER_COMMENT}"`,
    "\tmap fip_dnat {",
    `\t\ttype ${type} : ${type}`,
    '\t\tcomment "floating IP : pod IP"',
    ...elementsBlock(bindings.map(dnatElement)),
    "\t}",
    "\tmap fip_hairpin {",
    `\t\ttype ${type} . ${type} : ${type}`,
    '\t\tcomment "pod IP . floating IP it dialled : floating IP"',
    ...elementsBlock(bindings.map(hairpinElement)),
    "\t}",
    "\tmap fip_egress {",
    `\t\ttype ${type} : ${type}`,
    '\t\tcomment "pod IP : floating IP its new connections leave from (opt-in)"',
    ...elementsBlock(bindings.filter((b) => b.egress).map(egressElement)),
    "\t}",
    ...intervalSet("nat_sources", type, "pools with natOutgoing", masquerade.sources),
    ...intervalSet("pool_cidrs", type, "every IP pool", masquerade.pools),
    "\tchain prerouting {",
    "\t\ttype nat hook prerouting priority dstnat; policy accept;",
    `\t\tdnat to ${ip} daddr map @fip_dnat comment "floating IP to pod"`,
    "\t}",
    "\tchain output {",
    // nft 1.0.6 refuses the `dstnat` keyword on the output hook; -100 is its value.
    "\t\ttype nat hook output priority -100; policy accept;",
    `\t\tdnat to ${ip} daddr map @fip_dnat comment "floating IP to pod, from the node"`,
    "\t}",
    "\tchain postrouting {",
    "\t\ttype nat hook postrouting priority srcnat; policy accept;",
    `\t\tsnat to ${ip} saddr . ct original ${ip} daddr map @fip_hairpin comment "hairpin: a pod reaching its own floating IP"`,
    `\t\tsnat to ${ip} saddr map @fip_egress comment "egress: a pod that opted in leaves from its floating IP"`,
    `\t\t${ip} saddr @nat_sources ${ip} daddr != @pool_cidrs masquerade comment "natOutgoing: pod traffic leaving every pool"`,
    "\t}",
    "}",
  ]
    .map((line) => line + "\n")
    .join("");
}

/**
 * A script of element removals, then additions, for both maps of one family's
 * table, in one transaction; bindings of the other family are left out. A
 * floating IP that changes pod is given as removed and added. The kernel
 * refuses the whole script when a removed element is missing or an added
 * floating IP is present with another pod: then replace the table. Empty when
 * there is nothing to change.
 */
export function renderNftElementChanges(
  family: Family,
  added: readonly NftBinding[],
  removed: readonly NftBinding[],
): string {
  const table = `${NFT_FAMILY[family]} ${NFT_TABLE}`;
  const [adds, removes] = [ofFamily(added, family), ofFamily(removed, family)];
  const lines: string[] = [];
  if (removes.length + adds.length === 0) return "";
  lines.push(`# buoy floating-IP NAT for IPv${family}: -${removes.length} +${adds.length}`);
  if (removes.length > 0) {
    lines.push(`delete element ${table} fip_dnat {`, ...items(removes.map((b) => b.floating)), "}");
    lines.push(`delete element ${table} fip_hairpin {`, ...items(removes.map(hairpinKey)), "}");
  }
  const egressRemoves = removes.filter((b) => b.egress);
  if (egressRemoves.length > 0) {
    lines.push(
      `delete element ${table} fip_egress {`,
      ...items(egressRemoves.map((b) => b.pod)),
      "}",
    );
  }
  if (adds.length > 0) {
    lines.push(`add element ${table} fip_dnat {`, ...items(adds.map(dnatElement)), "}");
    lines.push(`add element ${table} fip_hairpin {`, ...items(adds.map(hairpinElement)), "}");
  }
  const egressAdds = adds.filter((b) => b.egress);
  if (egressAdds.length > 0) {
    lines.push(`add element ${table} fip_egress {`, ...items(egressAdds.map(egressElement)), "}");
  }
  return lines.map((line) => line + "\n").join("");
}

/**
 * A script that deletes buoy's table of each family whether or not it exists
 * (nft 1.0.6 has no `destroy`: adding the table first makes the delete always
 * valid), in one transaction.
 */
export function renderNftTableRemoval(families: readonly Family[]): string {
  return families
    .map((family) => `${NFT_FAMILY[family]} ${NFT_TABLE}`)
    .map((table) => `add table ${table}\ndelete table ${table}\n`)
    .join("");
}

/** buoy's table of one family as `nft -j list table` shows it. */
export interface NftTableState {
  /** The elements of fip_dnat, sorted like a plan's bindings. */
  bindings: NftBinding[];
  /**
   * Whether everything else (chains, rules, fip_hairpin) is exactly what
   * renderNftTable makes for these bindings. When not, replace the table.
   */
  intact: boolean;
  /** The natOutgoing sets as the kernel holds them (this family's CIDRs). */
  natOutgoing: NatOutgoing;
}

/**
 * Reads the output of `nft -j list table <ip|ip6> buoy`. Anything unexpected
 * (a foreign chain, a changed rule, a hairpin element without its binding)
 * makes the state not intact rather than an error.
 */
export function parseNftTable(listing: unknown, family: Family): NftTableState {
  const ip = NFT_FAMILY[family];
  const type = ADDRESS_TYPE[family];
  const objects = isRecord(listing) && Array.isArray(listing.nftables) ? listing.nftables : [];
  const bindings: NftBinding[] = [];
  const hairpin = new Set<string>();
  // pod IP -> the floating IP its new connections leave from.
  const egress = new Map<string, string>();
  const chains = new Map<string, unknown>();
  const rules = new Map<string, unknown[]>();
  let intact = objects.length > 0;
  let maps = 0;
  const sets: Record<"nat_sources" | "pool_cidrs", string[] | undefined> = {
    nat_sources: undefined,
    pool_cidrs: undefined,
  };
  for (const object of objects) {
    if (!isRecord(object)) {
      intact = false;
    } else if ("metainfo" in object || "table" in object) {
      continue;
    } else if (isRecord(object.map) && object.map.name === "fip_dnat") {
      maps++;
      intact &&= sameJson(object.map.type, type) && object.map.map === type;
      for (const [key, value] of elements(object.map.elem)) {
        const [floating, pod] = [address(key, family), address(value, family)];
        if (floating && pod) bindings.push({ family, floating, pod });
        else intact = false;
      }
    } else if (isRecord(object.map) && object.map.name === "fip_hairpin") {
      maps++;
      intact &&= sameJson(object.map.type, [type, type]) && object.map.map === type;
      for (const [key, value] of elements(object.map.elem)) {
        const parts = isRecord(key) && Array.isArray(key.concat) ? key.concat : [];
        const [pod, floating] = parts.map((part) => address(part, family));
        if (parts.length === 2 && pod && floating && floating === address(value, family)) {
          hairpin.add(hairpinKey({ pod, floating }));
        } else intact = false;
      }
    } else if (isRecord(object.map) && object.map.name === "fip_egress") {
      maps++;
      intact &&= sameJson(object.map.type, type) && object.map.map === type;
      for (const [key, value] of elements(object.map.elem)) {
        const [pod, floating] = [address(key, family), address(value, family)];
        if (pod && floating) egress.set(pod, floating);
        else intact = false;
      }
    } else if (
      isRecord(object.set) &&
      typeof object.set.name === "string" &&
      object.set.name in sets
    ) {
      const set = object.set;
      sets[set.name as keyof typeof sets] = prefixes(set.elem, family);
      intact &&=
        set.type === type &&
        sameJson(set.flags, ["interval"]) &&
        sets[set.name as keyof typeof sets] !== undefined;
    } else if (isRecord(object.chain) && typeof object.chain.name === "string") {
      const { type: chainType, hook, prio, policy } = object.chain;
      chains.set(object.chain.name, { type: chainType, hook, prio, policy });
    } else if (isRecord(object.rule) && typeof object.rule.chain === "string") {
      const chainRules = rules.get(object.rule.chain) ?? [];
      chainRules.push(object.rule.expr);
      rules.set(object.rule.chain, chainRules);
    } else {
      intact = false;
    }
  }
  for (const binding of bindings) {
    if (egress.get(binding.pod) === binding.floating) binding.egress = true;
  }
  const expected = expectedChains(ip);
  intact &&=
    maps === 3 &&
    chains.size === expected.length &&
    rules.size === expected.length &&
    expected.every(
      ({ name, chain, exprs }) =>
        sameJson(chains.get(name), chain) && sameJson(rules.get(name), exprs),
    ) &&
    sets.nat_sources !== undefined &&
    sets.pool_cidrs !== undefined &&
    hairpin.size === bindings.length &&
    bindings.every((binding) => hairpin.has(hairpinKey(binding))) &&
    // Every egress element belongs to a binding: fip_egress holds no stray source.
    bindings.filter((binding) => binding.egress).length === egress.size;
  return {
    bindings: sortBindings(bindings),
    intact,
    natOutgoing: { sources: sets.nat_sources ?? [], pools: sets.pool_cidrs ?? [] },
  };
}

/** The chains and their one rule each, as nft 1.0.6 lists them in JSON. */
function expectedChains(ip: "ip" | "ip6") {
  const chain = (hook: string, prio: number) => ({ type: "nat", hook, prio, policy: "accept" });
  const dnat = {
    dnat: {
      addr: { map: { key: { payload: { protocol: ip, field: "daddr" } }, data: "@fip_dnat" } },
    },
  };
  const snat = {
    snat: {
      addr: {
        map: {
          key: {
            concat: [
              { payload: { protocol: ip, field: "saddr" } },
              { ct: { key: `${ip} daddr`, dir: "original" } },
            ],
          },
          data: "@fip_hairpin",
        },
      },
    },
  };
  const egress = {
    snat: {
      addr: {
        map: { key: { payload: { protocol: ip, field: "saddr" } }, data: "@fip_egress" },
      },
    },
  };
  const masquerade = [
    {
      match: {
        op: "==",
        left: { payload: { protocol: ip, field: "saddr" } },
        right: "@nat_sources",
      },
    },
    {
      match: {
        op: "!=",
        left: { payload: { protocol: ip, field: "daddr" } },
        right: "@pool_cidrs",
      },
    },
    { masquerade: null },
  ];
  return [
    { name: "prerouting", chain: chain("prerouting", -100), exprs: [[dnat]] },
    { name: "output", chain: chain("output", -100), exprs: [[dnat]] },
    {
      name: "postrouting",
      chain: chain("postrouting", 100),
      exprs: [[snat], [egress], masquerade],
    },
  ];
}

function ofFamily<T extends NftBinding>(bindings: readonly T[], family: Family): T[] {
  return sortBindings(bindings.filter((binding) => binding.family === family));
}

function dnatElement(binding: NftBinding): string {
  return `${binding.floating} : ${binding.pod}`;
}

function hairpinKey(binding: Pick<NftBinding, "pod" | "floating">): string {
  return `${binding.pod} . ${binding.floating}`;
}

function hairpinElement(binding: NftBinding): string {
  return `${hairpinKey(binding)} : ${binding.floating}`;
}

function egressElement(binding: NftBinding): string {
  return `${binding.pod} : ${binding.floating}`;
}

/** An `elements = { … }` block, one element a line; nothing when empty (nft refuses `{ }`). */
function elementsBlock(elements: string[]): string[] {
  if (elements.length === 0) return [];
  return ["\t\telements = {", ...items(elements).map((line) => "\t\t" + line), "\t\t}"];
}

function items(elements: string[]): string[] {
  return elements.map((element, i) => `\t${element}${i < elements.length - 1 ? "," : ""}`);
}

/** A map's `elem` list as [key, value] pairs; malformed entries are dropped. */
function elements(elem: unknown): [unknown, unknown][] {
  if (!Array.isArray(elem)) return [];
  return elem.flatMap((entry): [unknown, unknown][] =>
    Array.isArray(entry) && entry.length === 2 ? [[entry[0], entry[1]]] : [[undefined, undefined]],
  );
}

function address(value: unknown, family: Family): string | undefined {
  if (typeof value !== "string" || parseAddress(value)?.family !== family) return undefined;
  return canonicalAddress(value);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Structural equality of JSON values, ignoring object key order. */
function sameJson(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) || Array.isArray(b)) {
    return (
      Array.isArray(a) &&
      Array.isArray(b) &&
      a.length === b.length &&
      a.every((item, i) => sameJson(item, b[i]))
    );
  }
  if (isRecord(a) && isRecord(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((key) => sameJson(a[key], b[key]));
  }
  return a === b;
}

/** This family's part of a natOutgoing plan, normalised as the sets hold it (and parseNftTable reports it). */
export function natOutgoingFor(natOutgoing: NatOutgoing | undefined, family: Family): NatOutgoing {
  const mine = (cidrs: readonly string[] = []) =>
    coverPrefixes(cidrs).filter((cidr) => cidr.includes(":") === (family === 6));
  return { sources: mine(natOutgoing?.sources), pools: mine(natOutgoing?.pools) };
}

function intervalSet(name: string, type: string, comment: string, cidrs: string[]): string[] {
  return [
    `\tset ${name} {`,
    `\t\ttype ${type}`,
    "\t\tflags interval",
    `\t\tcomment "${comment}"`,
    ...elementsBlock(cidrs),
    "\t}",
  ];
}

/** An interval set's `elem` list as CIDRs; undefined when an element is not a prefix. */
function prefixes(elem: unknown, family: Family): string[] | undefined {
  if (elem === undefined) return [];
  if (!Array.isArray(elem)) return undefined;
  const cidrs: string[] = [];
  for (const item of elem) {
    const single = address(item, family);
    if (single) {
      cidrs.push(`${single}/${family === 4 ? 32 : 128}`);
      continue;
    }
    const prefix = isRecord(item) && isRecord(item.prefix) ? item.prefix : undefined;
    const addr = prefix ? address(prefix.addr, family) : undefined;
    if (!prefix || !addr || typeof prefix.len !== "number") return undefined;
    cidrs.push(`${addr}/${prefix.len}`);
  }
  return coverPrefixes(cidrs);
}
