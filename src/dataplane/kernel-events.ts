// What the kernel's own change notices say about buoy's dataplane: the lines
// of `nft -j monitor` and of `ip -o monitor label link route`, read into
// events (issue 14: the resync learns of changes instead of reading 100k
// elements and routes back every tick). Pure; dataplane/shell/kernel-monitor.ts
// runs the two monitors.
import { canonicalAddress, type Family } from "../net/address.js";
import { NFT_TABLE } from "./nft-script.js";
import { BUOY_ROUTE_PROTOCOL, parseIpRouteLine, routeKey } from "./node-routes.js";

/** The maps whose elements are compared one by one; any other change to buoy's tables is read back whole. */
export type WatchedMap = "fip_dnat" | "fip_hairpin" | "fip_egress";

export type KernelEvent =
  /**
   * An element of one of buoy's maps, added (`present`) or deleted. `key`:
   * the floating IP (fip_dnat), `pod . floating` (fip_hairpin), the pod
   * (fip_egress); `value` what it maps to, also for a deletion.
   */
  | {
      kind: "element";
      family: Family;
      map: WatchedMap;
      key: string;
      value: string;
      present: boolean;
    }
  /** A route of buoy's protocol in the main table, by routeKey, added or deleted. */
  | { kind: "route"; key: string; present: boolean }
  /** A network interface, by index: its name now, or deleted. */
  | { kind: "link"; index: number; name: string; present: boolean }
  /** Something else in buoy's tables changed (a table, chain, rule or set; an element not understood). */
  | { kind: "table" };

const FAMILIES: Record<string, Family> = { ip: 4, ip6: 6 };
const WATCHED = new Set<string>(["fip_dnat", "fip_hairpin", "fip_egress"]);

/** One line of `nft -j monitor`: events for buoy's tables, none for other tables. */
export function parseNftMonitorLine(line: string): KernelEvent[] {
  if (!line.includes(`"${NFT_TABLE}"`)) return []; // another table's (or not JSON)
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return [{ kind: "table" }];
  }
  const [op, body] = isRecord(parsed) ? (Object.entries(parsed)[0] ?? []) : [];
  if ((op !== "add" && op !== "delete") || !isRecord(body)) return [{ kind: "table" }];
  const [objectKind, object] = Object.entries(body)[0] ?? [];
  if (!isRecord(object)) return [{ kind: "table" }];
  const table = objectKind === "table" ? object.name : object.table;
  const family = typeof object.family === "string" ? FAMILIES[object.family] : undefined;
  if (table !== NFT_TABLE) return [];
  if (family === undefined) return [];
  const map = object.name;
  if (objectKind !== "element" || typeof map !== "string" || !WATCHED.has(map)) {
    return [{ kind: "table" }];
  }
  const items = isRecord(object.elem) && Array.isArray(object.elem.set) ? object.elem.set : [];
  const events: KernelEvent[] = [];
  for (const item of items) {
    const element =
      Array.isArray(item) && item.length === 2 ? readElement(item, family) : undefined;
    if (!element) return [{ kind: "table" }];
    events.push({
      kind: "element",
      family,
      map: map as WatchedMap,
      ...element,
      present: op === "add",
    });
  }
  return events.length > 0 ? events : [{ kind: "table" }];
}

function readElement(
  [key, value]: unknown[],
  family: Family,
): { key: string; value: string } | undefined {
  const to = address(value, family);
  if (!to) return undefined;
  if (typeof key === "string") {
    const from = address(key, family);
    return from ? { key: from, value: to } : undefined;
  }
  const parts = isRecord(key) && Array.isArray(key.concat) ? key.concat : [];
  const [pod, floating] = parts.map((part) => address(part, family));
  return parts.length === 2 && pod && floating
    ? { key: `${pod} . ${floating}`, value: to }
    : undefined;
}

const ROUTE_PROTOCOL = new RegExp(`\\bproto ${BUOY_ROUTE_PROTOCOL}\\b`);
const LINK = /^(Deleted )?(\d+): ([^\s:@]+)(@\S*)?:/;

/** One line of `ip -o monitor label link route`: buoy's routes and every interface. */
export function parseIpMonitorLine(line: string): KernelEvent[] {
  if (line.startsWith("[LINK]")) {
    const match = LINK.exec(line.slice("[LINK]".length));
    if (!match) return [];
    return [
      {
        kind: "link",
        index: Number(match[2]),
        name: match[3] as string,
        present: match[1] === undefined,
      },
    ];
  }
  if (!line.startsWith("[ROUTE]") || !ROUTE_PROTOCOL.test(line)) return [];
  let words = line.slice("[ROUTE]".length).trim().split(/\s+/);
  const present = words[0] !== "Deleted";
  if (!present) words = words.slice(1);
  // Only the main table's (what `ip route show proto 202` reads back).
  const table = words.indexOf("table");
  if (table >= 0 && words[table + 1] !== "main") return [];
  const dst = words[0] === "blackhole" ? words[1] : words[0];
  const route = parseIpRouteLine(words, dst?.includes(":") ? 6 : 4);
  return route ? [{ kind: "route", key: routeKey(route), present }] : [];
}

function address(value: unknown, family: Family): string | undefined {
  if (typeof value !== "string") return undefined;
  const canonical = canonicalAddress(value);
  return canonical && canonical.includes(":") === (family === 6) ? canonical : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
