// Runs the pod-network scripts with iproute2: `ip -batch` in the host
// namespace, `ip -n NAME -batch` or `nsenter --net=PATH ip -batch` in the
// pod's (iproute2's `-n` takes only names under /run/netns, and CNI_NETNS may
// be /proc/PID/ns/net).
import { existsSync, writeFileSync } from "node:fs";
import { CommandError, runCommand } from "../../exec/command.js";
import {
  DEFAULT_ROUTE,
  GATEWAY,
  linkAddArgs,
  renderHostSetup,
  renderPodSetup,
  type PodLinkPlan,
  type PodNetworkPlan,
} from "../pod-network.js";
import { parseAddress } from "../../net/address.js";

/** createLink found a host side of the same name and was told not to replace it. */
export class LinkExistsError extends Error {
  override readonly name = "LinkExistsError";
}

export interface PodNetwork {
  /**
   * Creates the veth pair, the peer inside the pod. A stale host side of the
   * same name (an earlier sandbox of the pod) is replaced, or with
   * `replace: false` left alone and reported as LinkExistsError.
   */
  createLink(plan: PodLinkPlan, options?: { replace?: boolean }): Promise<void>;
  /** Configures both sides of an existing pair (addresses, neighbours, routes). */
  configure(plan: PodNetworkPlan): Promise<void>;
  /** Removes the pod's interface from inside its namespace; no-op when either is gone. */
  deletePodInterface(netns: string, ifname: string): Promise<void>;
  /** Removes a host-side interface (and so its peer); no-op when gone. */
  deleteHostInterface(hostIfname: string): Promise<void>;
  /** Resolves to a list of what differs from the plan (empty: all as planned). */
  check(plan: PodNetworkPlan): Promise<string[]>;
}

interface IpLink {
  ifname: string;
  address?: string;
  operstate?: string;
  flags?: string[];
}

interface IpAddr {
  ifname: string;
  addr_info?: { local: string; prefixlen: number }[];
}

interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
}

const NO_DEVICE = /Cannot find device|does not exist|No such device/;
/** A netns path that is no longer a namespace (left over, unmounted): nothing to delete in it. */
const NO_NAMESPACE = /Invalid argument|No such file or directory|cannot open network namespace/i;

export class LinuxPodNetwork implements PodNetwork {
  async createLink(plan: PodLinkPlan, options: { replace?: boolean } = {}): Promise<void> {
    try {
      await runCommand(["ip", ...linkAddArgs(plan)]);
    } catch (error) {
      if (!(error instanceof CommandError) || !/File exists/.test(error.stderr)) throw error;
      if (options.replace === false) throw new LinkExistsError(`${plan.hostIfname} exists`);
      // A stale host side from an earlier sandbox of the same pod: replace it, as Calico does.
      await this.deleteHostInterface(plan.hostIfname);
      await runCommand(["ip", ...linkAddArgs(plan)]);
    }
    try {
      writeFileSync(`/proc/sys/net/ipv4/conf/${plan.hostIfname}/proxy_arp`, "1");
    } catch (error) {
      // The pair exists: an ADD that fails leaves nothing behind.
      await this.deleteHostInterface(plan.hostIfname);
      throw error;
    }
  }

  async configure(plan: PodNetworkPlan): Promise<void> {
    // The two sides are independent once the pair exists.
    await Promise.all([
      runCommand(["ip", "-batch", "-"], { input: renderHostSetup(plan) }),
      runCommand([...ipIn(plan.netns), "-batch", "-"], { input: renderPodSetup(plan) }),
    ]);
  }

  async deletePodInterface(netns: string, ifname: string): Promise<void> {
    if (!netns || !existsSync(netns)) return;
    try {
      await runCommand([...ipIn(netns), "link", "del", ifname]);
    } catch (error) {
      const stderr = error instanceof CommandError ? error.stderr : "";
      if (NO_DEVICE.test(stderr) || NO_NAMESPACE.test(stderr)) return;
      throw error;
    }
  }

  async deleteHostInterface(hostIfname: string): Promise<void> {
    await ignoreMissing(runCommand(["ip", "link", "del", hostIfname]));
  }

  async check(plan: PodNetworkPlan): Promise<string[]> {
    const problems: string[] = [];
    const inPod = [...ipIn(plan.netns), "-json"];
    const [podAddrs, podRoutes4, podRoutes6, hostLinks, hostRoutes4, hostRoutes6] =
      await Promise.all([
        runJson<IpAddr>([...inPod, "address", "show", "dev", plan.ifname]),
        runJson<IpRoute>([...inPod, "-4", "route", "show", "dev", plan.ifname]),
        runJson<IpRoute>([...inPod, "-6", "route", "show", "dev", plan.ifname]),
        runJson<IpLink>(["ip", "-json", "link", "show", "dev", plan.hostIfname]),
        runJson<IpRoute>(["ip", "-json", "-4", "route", "show", "dev", plan.hostIfname]),
        runJson<IpRoute>(["ip", "-json", "-6", "route", "show", "dev", plan.hostIfname]),
      ]);
    if (podAddrs === undefined) return [`interface ${plan.ifname} is missing in ${plan.netns}`];
    if (hostLinks === undefined) problems.push(`host interface ${plan.hostIfname} is missing`);
    const podHas = new Set(podAddrs.flatMap((entry) => entry.addr_info ?? []).map((a) => a.local));
    const podRoutes = [...(podRoutes4 ?? []), ...(podRoutes6 ?? [])];
    const hostRoutes = new Set([...(hostRoutes4 ?? []), ...(hostRoutes6 ?? [])].map((r) => r.dst));
    for (const ip of plan.addresses) {
      const family = parseAddress(ip)?.family ?? 4;
      if (!podHas.has(ip)) problems.push(`address ${ip} is missing on ${plan.ifname}`);
      const gateway = GATEWAY[family];
      const hasDefault = podRoutes.some(
        (route) =>
          (route.dst === "default" || route.dst === DEFAULT_ROUTE[family]) &&
          route.gateway === gateway,
      );
      if (!hasDefault) problems.push(`default route via ${gateway} is missing in the pod`);
      if (hostLinks !== undefined && !hostRoutes.has(ip)) {
        problems.push(`host route ${ip} dev ${plan.hostIfname} is missing`);
      }
    }
    return problems;
  }
}

/**
 * `ip` inside a network namespace: `ip -n NAME` for namespaces under /run/netns
 * (about a millisecond cheaper), `nsenter --net=PATH ip` for any other path
 * such as /proc/PID/ns/net.
 */
export function ipIn(netns: string): string[] {
  const named = /^\/(?:var\/)?run\/netns\/([^/]+)$/.exec(netns);
  return named ? ["ip", "-n", named[1] as string] : ["nsenter", `--net=${netns}`, "ip"];
}

/** Output of `ip -json` commands; undefined when the device does not exist. */
async function runJson<T>(argv: string[]): Promise<T[] | undefined> {
  try {
    const { stdout } = await runCommand(argv);
    return parseJsonLines<T>(stdout);
  } catch (error) {
    if (error instanceof CommandError && NO_DEVICE.test(error.stderr)) return undefined;
    throw error;
  }
}

/** `ip -json -batch` prints one JSON array per command that has output. */
function parseJsonLines<T>(stdout: string): T[] {
  return stdout
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line.startsWith("["))
    .flatMap((line) => JSON.parse(line) as T[]);
}

async function ignoreMissing(command: Promise<unknown>): Promise<void> {
  try {
    await command;
  } catch (error) {
    if (error instanceof CommandError && NO_DEVICE.test(error.stderr)) return;
    throw error;
  }
}
