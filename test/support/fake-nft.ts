// An nftables kernel for unit tests, behind the Nft port
// (src/dataplane/shell/nft.ts). It reads the scripts src/dataplane/nft-script.ts
// renders the way `nft -f` does, one transaction each: a whole table
// (`table ip buoy { ... }`), element additions and deletions, table
// deletions. Like the kernel it refuses, changing nothing, an element deleted
// that is not there, one added that is there with another value, and any
// statement it does not know: a renderer change the fake has not learned
// fails the tests instead of passing unread.
import type { Family } from "../../src/net/address.js";
import { sortBindings } from "../../src/dataplane/nat-plan.js";
import {
  NFT_FAMILY,
  NFT_TABLE,
  renderNftTable,
  type NftBinding,
  type NftTableState,
} from "../../src/dataplane/nft-script.js";
import type { Nft } from "../../src/dataplane/shell/nft.js";
import type { KernelEvent } from "../../src/dataplane/kernel-events.js";

const MAPS = ["fip_dnat", "fip_hairpin", "fip_egress"] as const;
const SETS = ["nat_sources", "pool_cidrs"] as const;
type MapName = (typeof MAPS)[number];
type SetName = (typeof SETS)[number];

interface Table {
  maps: Partial<Record<MapName, Map<string, string>>>;
  sets: Partial<Record<SetName, string[]>>;
  /** Chain name -> its lines, as declared. */
  chains: Map<string, string[]>;
  /** Someone other than buoy changed it (alter()). */
  altered: boolean;
}

/** A `head {` ... `}` block of a script, or a line of one. */
interface Node {
  head: string;
  body?: Node[];
}

const ENOENT = "Error: Could not process rule: No such file or directory";
const EEXIST = "Error: Could not process rule: File exists";

export interface FakeNftOptions {
  /**
   * Where each applied script is noted, after it applied: "replace ipv4" (a
   * whole table), "elements ipv4", "remove ipv4". Share one with the other
   * fakes to see what happened before what.
   */
  journal?: string[];
}

export class FakeNft implements Nft {
  readonly journal: string[];
  /** How many times readTable() was called. */
  reads = 0;
  /** Refuse every element change, as the kernel does when an element changed under buoy. */
  refuseElementChanges = false;
  /** Hears what `nft monitor` would print of each change (FakeKernelMonitor). */
  onNotice: ((events: KernelEvent[]) => void) | undefined;
  #tables = new Map<Family, Table>();

  constructor(options: FakeNftOptions = {}) {
    this.journal = options.journal ?? [];
  }

  async apply(script: string): Promise<void> {
    const tables = new Map([...this.#tables].map(([family, table]) => [family, clone(table)]));
    const notes = new Map<Family, string>();
    for (const statement of parse(script)) {
      const { verb, family, map } = classify(statement.head);
      const table = tables.get(family);
      if (verb === "define") {
        const defined = table ?? emptyTable();
        define(defined, statement.body ?? []);
        tables.set(family, defined);
        if ((statement.body ?? []).length > 0) notes.set(family, "replace");
      } else if (verb === "add table") {
        if (!table) tables.set(family, emptyTable());
      } else if (verb === "delete table") {
        if (!table) throw new Error(ENOENT);
        tables.delete(family);
        notes.set(family, "remove");
      } else {
        if (this.refuseElementChanges) throw new Error(ENOENT);
        const elements = table?.maps[map as MapName];
        if (!elements) throw new Error(ENOENT);
        for (const item of items(statement.body ?? [])) {
          if (verb === "delete element") {
            if (!elements.delete(item.split(" : ")[0] ?? "")) throw new Error(ENOENT);
          } else addElement(elements, item);
        }
        if (!notes.has(family)) notes.set(family, "elements");
      }
    }
    const before = this.#tables;
    this.#tables = tables;
    for (const [family, note] of notes) this.journal.push(`${note} ipv${family}`);
    const events: KernelEvent[] = [];
    for (const [family, note] of notes) {
      if (note !== "elements") events.push({ kind: "table" });
      else events.push(...elementNotices(family, before.get(family), tables.get(family)));
    }
    if (events.length > 0) this.onNotice?.(events);
  }

  async readTable(family: Family): Promise<NftTableState | undefined> {
    this.reads += 1;
    const table = this.#tables.get(family);
    if (!table) return undefined;
    const dnat = table.maps.fip_dnat ?? new Map<string, string>();
    const hairpin = table.maps.fip_hairpin ?? new Map<string, string>();
    const egress = table.maps.fip_egress ?? new Map<string, string>();
    const bindings: NftBinding[] = [...dnat].map(([floating, pod]) => ({
      family,
      floating,
      pod,
      ...(egress.get(pod) === floating ? { egress: true } : {}),
    }));
    const reference = referenceChains(family);
    const intact =
      !table.altered &&
      MAPS.every((name) => table.maps[name] !== undefined) &&
      SETS.every((name) => table.sets[name] !== undefined) &&
      table.chains.size === reference.size &&
      [...reference].every(
        ([name, lines]) => table.chains.get(name)?.join("\n") === lines.join("\n"),
      ) &&
      hairpin.size === bindings.length &&
      bindings.every(({ pod, floating }) => hairpin.get(`${pod} . ${floating}`) === floating) &&
      bindings.filter((binding) => binding.egress).length === egress.size;
    return {
      bindings: sortBindings(bindings),
      intact,
      natOutgoing: {
        sources: [...(table.sets.nat_sources ?? [])],
        pools: [...(table.sets.pool_cidrs ?? [])],
      },
    };
  }

  // ---- what a test looks at or does behind buoy's back ------------------------

  /** fip_dnat of one family: what the kernel translates, sorted. */
  bindings(family: Family): NftBinding[] {
    const dnat = this.#tables.get(family)?.maps.fip_dnat ?? new Map<string, string>();
    return sortBindings([...dnat].map(([floating, pod]) => ({ family, floating, pod })));
  }

  /** The pod address `floating` is translated to, if any. */
  translates(floating: string): string | undefined {
    for (const table of this.#tables.values()) {
      const pod = table.maps.fip_dnat?.get(floating);
      if (pod !== undefined) return pod;
    }
    return undefined;
  }

  hasTable(family: Family): boolean {
    return this.#tables.has(family);
  }

  /** Someone changes the table (a rule added by hand): no longer intact. */
  alter(family: Family): void {
    const table = this.#tables.get(family);
    if (table) table.altered = true;
    this.onNotice?.([{ kind: "table" }]);
  }

  /** Someone deletes the table (`nft delete table ip buoy`). */
  deleteTable(family: Family): void {
    this.#tables.delete(family);
    this.onNotice?.([{ kind: "table" }]);
  }

  /** Someone deletes a floating IP's translation (`nft delete element ip buoy fip_dnat { F }`). */
  deleteTranslation(family: Family, floating: string): void {
    const dnat = this.#tables.get(family)?.maps.fip_dnat;
    const pod = dnat?.get(floating);
    if (pod === undefined) return;
    dnat?.delete(floating);
    this.onNotice?.([
      { kind: "element", family, map: "fip_dnat", key: floating, value: pod, present: false },
    ]);
  }
}

/** The element notices of one family's maps going from `before` to `after`. */
function elementNotices(
  family: Family,
  before: Table | undefined,
  after: Table | undefined,
): KernelEvent[] {
  const events: KernelEvent[] = [];
  for (const map of MAPS) {
    const [old, now] = [before?.maps[map] ?? new Map(), after?.maps[map] ?? new Map()];
    for (const [key, value] of old) {
      if (now.get(key) !== value)
        events.push({ kind: "element", family, map, key, value, present: false });
    }
    for (const [key, value] of now) {
      if (old.get(key) !== value)
        events.push({ kind: "element", family, map, key, value, present: true });
    }
  }
  return events;
}

// ---- the script -----------------------------------------------------------------

function parse(script: string): Node[] {
  const root: Node = { head: "", body: [] };
  const stack: Node[] = [root];
  for (const raw of script.split("\n")) {
    const line = raw.trim();
    const parent = stack.at(-1) as Node;
    if (line === "" || line.startsWith("#")) continue;
    if (line === "}") {
      if (stack.length === 1) throw new Error(`Error: syntax error, unexpected '}'`);
      stack.pop();
    } else if (line.endsWith("{}")) {
      parent.body?.push({ head: line.slice(0, -2).trim(), body: [] });
    } else if (line.endsWith("{")) {
      const node: Node = { head: line.slice(0, -1).trim(), body: [] };
      parent.body?.push(node);
      stack.push(node);
    } else {
      parent.body?.push({ head: line });
    }
  }
  if (stack.length !== 1) throw new Error("Error: syntax error, unexpected end of file");
  return root.body ?? [];
}

type Verb = "define" | "add table" | "delete table" | "add element" | "delete element";

function classify(head: string): { verb: Verb; family: Family; map?: string } {
  const families: Record<string, Family> = { [NFT_FAMILY[4]]: 4, [NFT_FAMILY[6]]: 6 };
  const match =
    /^(table|add table|delete table|add element|delete element) (ip6?) (\S+)(?: (\S+))?$/.exec(
      head,
    );
  const family = match ? families[match[2] as string] : undefined;
  const verb: Verb | undefined = match
    ? match[1] === "table"
      ? "define"
      : (match[1] as Verb)
    : undefined;
  const element = verb === "add element" || verb === "delete element";
  if (
    !match ||
    !verb ||
    family === undefined ||
    match[3] !== NFT_TABLE ||
    element !== (match[4] !== undefined)
  ) {
    throw new Error(`Error: syntax error: the fake does not know '${head}'`);
  }
  return { verb, family, ...(match[4] ? { map: match[4] } : {}) };
}

/** A table's declaration, added to what it holds (as `nft -f` does). */
function define(table: Table, body: Node[]): void {
  for (const node of body) {
    const [kind, name] = node.head.split(" ");
    if (kind === "comment" && node.body === undefined) continue;
    if (kind === "map" && MAPS.includes(name as MapName)) {
      const elements = (table.maps[name as MapName] ??= new Map());
      for (const item of items(elementsOf(node))) addElement(elements, item);
    } else if (kind === "set" && SETS.includes(name as SetName)) {
      const cidrs = (table.sets[name as SetName] ??= []);
      for (const item of items(elementsOf(node))) if (!cidrs.includes(item)) cidrs.push(item);
    } else if (kind === "chain" && name && node.body) {
      table.chains.set(
        name,
        node.body.map((line) => line.head),
      );
    } else {
      throw new Error(`Error: syntax error: the fake does not know '${node.head}'`);
    }
  }
}

function elementsOf(node: Node): Node[] {
  return node.body?.find((child) => child.head === "elements =")?.body ?? [];
}

/** A block's elements, one a line, without the separating commas. */
function items(lines: Node[]): string[] {
  return lines.map((line) => line.head.replace(/,$/, ""));
}

function addElement(elements: Map<string, string>, item: string): void {
  const [key, value, ...rest] = item.split(" : ");
  if (key === undefined || value === undefined || rest.length > 0) {
    throw new Error(`Error: syntax error: '${item}' is no map element`);
  }
  const held = elements.get(key);
  if (held !== undefined && held !== value) throw new Error(EEXIST);
  elements.set(key, value);
}

function emptyTable(): Table {
  return { maps: {}, sets: {}, chains: new Map(), altered: false };
}

function clone(table: Table): Table {
  return {
    maps: Object.fromEntries(
      Object.entries(table.maps).map(([name, elements]) => [name, new Map(elements)]),
    ),
    sets: Object.fromEntries(Object.entries(table.sets).map(([name, cidrs]) => [name, [...cidrs]])),
    chains: new Map(table.chains),
    altered: table.altered,
  };
}

/** The chains renderNftTable declares: what an intact table holds. */
function referenceChains(family: Family): Map<string, string[]> {
  const table = emptyTable();
  const [statement] = parse(renderNftTable({ bindings: [] }, family)).filter(
    (node) => (node.body ?? []).length > 0,
  );
  define(table, statement?.body ?? []);
  return table.chains;
}
