// The agent's routes (dataplane/node-routes.ts) and conntrack, with iproute2 and conntrack(8).
import { CommandError, runCommand } from "../../exec/command.js";
import type { Family } from "../../net/address.js";
import {
  BUOY_ROUTE_PROTOCOL,
  parseIpRouteLine,
  renderRouteChanges,
  type NodeRoute,
} from "../node-routes.js";

export interface Routes {
  /** buoy's routes (protocol 202) as the kernel holds them. */
  read(): Promise<NodeRoute[]>;
  /**
   * Applies the changes; resolves to the lines the kernel refused for a next
   * hop it cannot reach (the rest is applied), rejects on anything else.
   */
  apply(added: readonly NodeRoute[], removed: readonly NodeRoute[]): Promise<string[]>;
  /** Names of the node's network interfaces (routes can only point at these). */
  readInterfaces(): Promise<Set<string>>;
}

export interface Conntrack {
  /**
   * Deletes every entry whose original destination is one of `ips` (flows to
   * the floating IP) or whose reply destination is (a pod's egress flows,
   * source-translated to it); resolves to the IPs that had entries.
   */
  flushDestinations(family: Family, ips: readonly string[]): Promise<string[]>;
}

export class LinuxRoutes implements Routes {
  async read(): Promise<NodeRoute[]> {
    const routes: NodeRoute[] = [];
    for (const family of [4, 6] as const) {
      // Text, one route a line, read line by line: `ip -json` at 100k routes
      // was one listing parsed whole (~35 MiB of objects at once).
      const { stdout } = await runCommand([
        "ip",
        "-o",
        `-${family}`,
        "route",
        "show",
        "proto",
        String(BUOY_ROUTE_PROTOCOL),
      ]);
      for (let start = 0; start < stdout.length;) {
        const end = stdout.indexOf("\n", start);
        const line = stdout.slice(start, end < 0 ? stdout.length : end);
        start = end < 0 ? stdout.length : end + 1;
        const route = line.trim() ? parseIpRouteLine(line, family) : undefined;
        if (route) routes.push(route);
      }
    }
    return routes;
  }

  async apply(added: readonly NodeRoute[], removed: readonly NodeRoute[]): Promise<string[]> {
    const script = renderRouteChanges(added, removed);
    if (!script) return [];
    try {
      await runCommand(["ip", "-force", "-batch", "-"], { input: script });
    } catch (error) {
      // A route whose device went away meanwhile went with it: that delete is done.
      const failures =
        error instanceof CommandError
          ? error.stderr.split("\n").filter((l) => /error|answers/i.test(l))
          : [];
      if (
        failures.length === 0 ||
        !failures.every((line) =>
          /Cannot find device|No such process|No such device|invalid gateway|Network is unreachable/.test(
            line,
          ),
        )
      ) {
        throw error;
      }
      // A next hop that is not on a connected network (a Node record with a
      // wrong address): -force applied every other line; say which failed.
      return failures.filter((line) => /invalid gateway|Network is unreachable/.test(line));
    }
    return [];
  }

  /** Deletes every route with buoy's protocol, whatever its metric (uninstalling). */
  async flush(): Promise<void> {
    for (const family of [4, 6] as const) {
      await runCommand([
        "ip",
        `-${family}`,
        "route",
        "flush",
        "proto",
        String(BUOY_ROUTE_PROTOCOL),
      ]);
    }
  }

  async readInterfaces(): Promise<Set<string>> {
    const { stdout } = await runCommand(["ip", "-json", "link", "show"]);
    return new Set((JSON.parse(stdout || "[]") as { ifname: string }[]).map((link) => link.ifname));
  }
}

/**
 * One dump of the table, then a delete only for the floating IPs that have
 * entries: a process per IP cost ~13.5 ms each, minutes for a node's first
 * sync of 10k bindings (measured by bench:dataplane).
 */
export class LinuxConntrack implements Conntrack {
  async flushDestinations(family: Family, ips: readonly string[]): Promise<string[]> {
    if (ips.length === 0) return [];
    const wanted = new Set(ips);
    const familyName = family === 4 ? "ipv4" : "ipv6";
    const { stdout } = await runCommand(["conntrack", "-L", "-f", familyName], {
      timeoutMs: 60_000,
    });
    const present = new Map<string, Set<"--orig-dst" | "--reply-dst">>();
    const note = (ip: string | undefined, direction: "--orig-dst" | "--reply-dst") => {
      if (ip === undefined || !wanted.has(ip)) return;
      present.set(ip, (present.get(ip) ?? new Set()).add(direction));
    };
    for (const line of stdout.split("\n")) {
      // The original tuple's dst= comes first, the reply tuple's second.
      const [original, reply] = [...line.matchAll(/\bdst=(\S+)/g)].map((match) => match[1]);
      note(original, "--orig-dst");
      note(reply, "--reply-dst");
    }
    for (const [ip, directions] of present) {
      for (const direction of directions) {
        try {
          await runCommand(["conntrack", "-D", "-f", familyName, direction, ip]);
        } catch (error) {
          // Gone meanwhile (conntrack exits 1 when nothing matched): that is what we wanted.
          if (!(error instanceof CommandError && /0 flow entries/.test(error.stderr))) throw error;
        }
      }
    }
    return [...present.keys()];
  }
}
