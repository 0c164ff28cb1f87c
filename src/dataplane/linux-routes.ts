// Floating-IP routes and conntrack, with iproute2 and conntrack(8).
import { CommandError, runCommand } from "../exec/command.js";
import type { Family } from "../net/address.js";
import {
  FLOATING_ROUTE_PROTOCOL,
  renderRouteChanges,
  type FloatingRoute,
} from "./floating-routes.js";

export interface Routes {
  /** buoy's floating-IP routes as the kernel holds them. */
  read(): Promise<FloatingRoute[]>;
  apply(added: readonly FloatingRoute[], removed: readonly FloatingRoute[]): Promise<void>;
  /** Names of the node's network interfaces (routes can only point at these). */
  readInterfaces(): Promise<Set<string>>;
}

export interface Conntrack {
  /** Deletes every entry whose original destination is `ip`; resolves to how many. */
  flushDestination(family: Family, ip: string): Promise<number>;
}

export class LinuxRoutes implements Routes {
  async read(): Promise<FloatingRoute[]> {
    const routes: FloatingRoute[] = [];
    for (const family of [4, 6] as const) {
      const { stdout } = await runCommand([
        "ip",
        "-json",
        `-${family}`,
        "route",
        "show",
        "proto",
        String(FLOATING_ROUTE_PROTOCOL),
      ]);
      for (const route of JSON.parse(stdout || "[]") as { dst: string; dev?: string }[]) {
        if (!route.dev) continue;
        routes.push({ family, floating: route.dst.split("/")[0] as string, hostIfname: route.dev });
      }
    }
    return routes;
  }

  async apply(added: readonly FloatingRoute[], removed: readonly FloatingRoute[]): Promise<void> {
    const script = renderRouteChanges(added, removed);
    if (!script) return;
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
        !failures.every((line) => /Cannot find device|No such process|No such device/.test(line))
      ) {
        throw error;
      }
    }
  }

  async readInterfaces(): Promise<Set<string>> {
    const { stdout } = await runCommand(["ip", "-json", "link", "show"]);
    return new Set((JSON.parse(stdout || "[]") as { ifname: string }[]).map((link) => link.ifname));
  }
}

export class LinuxConntrack implements Conntrack {
  async flushDestination(family: Family, ip: string): Promise<number> {
    try {
      const { stderr } = await runCommand([
        "conntrack",
        "-D",
        "-f",
        family === 4 ? "ipv4" : "ipv6",
        "--orig-dst",
        ip,
      ]);
      return Number(/(\d+) flow entries/.exec(stderr)?.[1] ?? 0);
    } catch (error) {
      // conntrack exits 1 when nothing matched.
      if (error instanceof CommandError && /0 flow entries/.test(error.stderr)) return 0;
      throw error;
    }
  }
}
