// `buoy remove-dataplane`: takes off a node what buoy's agent programmed
// there, for uninstalling (the agent never flushes on exit, so that a restart
// does not interrupt traffic). Removes buoy's nftables tables (floating-IP
// NAT and natOutgoing), the routes with buoy's protocol, and the conntrack
// entries of the floating IPs the tables translated, so that no established
// flow keeps being translated without its rule.
import type { Family } from "../../net/address.js";
import type { Conntrack, Routes } from "./linux-routes.js";
import type { Nft } from "./nft.js";
import { NFT_FAMILY, NFT_TABLE, renderNftTableRemoval } from "../nft-script.js";
import { routeKey, type NodeRoute } from "../node-routes.js";

export interface DataplanePorts {
  nft: Nft;
  routes: Pick<Routes, "read"> & { flush(): Promise<void> };
  conntrack: Conntrack;
}

export interface DataplaneRemoved {
  /** The tables that were there, as `ip buoy`, `ip6 buoy`. */
  tables: string[];
  /** The floating IPs those tables translated. */
  floatingIps: string[];
  routes: NodeRoute[];
  /** The floating IPs that had conntrack entries. */
  conntrackFlushed: string[];
}

const FAMILIES: readonly Family[] = [4, 6];

export async function removeDataplane(ports: DataplanePorts): Promise<DataplaneRemoved> {
  const tables: string[] = [];
  const floating = new Map<Family, string[]>();
  for (const family of FAMILIES) {
    const state = await ports.nft.readTable(family);
    if (state === undefined) continue;
    tables.push(`${NFT_FAMILY[family]} ${NFT_TABLE}`);
    floating.set(
      family,
      state.bindings.map((binding) => binding.floating),
    );
  }
  await ports.nft.apply(renderNftTableRemoval(FAMILIES));
  const routes = await ports.routes.read();
  await ports.routes.flush();
  const conntrackFlushed: string[] = [];
  for (const [family, ips] of floating) {
    conntrackFlushed.push(...(await ports.conntrack.flushDestinations(family, ips)));
  }
  return {
    tables,
    floatingIps: [...floating.values()].flat(),
    routes,
    conntrackFlushed,
  };
}

/** What removeDataplane() did, one line each, for the command's output. */
export function renderDataplaneRemoved(removed: DataplaneRemoved): string {
  const lines: string[] = [];
  for (const table of removed.tables) lines.push(`removed nftables table ${table}`);
  if (removed.floatingIps.length > 0) {
    lines.push(
      `  it translated ${removed.floatingIps.length} floating IPs: ${removed.floatingIps.join(", ")}`,
    );
  }
  if (removed.routes.length > 0) {
    lines.push(`removed ${removed.routes.length} routes with protocol 202:`);
    for (const route of removed.routes) lines.push(`  ${routeKey(route)}`);
  }
  if (removed.conntrackFlushed.length > 0) {
    lines.push(`flushed the conntrack entries of ${removed.conntrackFlushed.join(", ")}`);
  }
  if (lines.length === 0) lines.push("nothing to remove: no buoy table or route on this node");
  return lines.map((line) => `${line}\n`).join("");
}
