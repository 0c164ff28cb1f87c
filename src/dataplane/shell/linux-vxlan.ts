// The VXLAN overlay's devices and peers (dataplane/vxlan.ts) in the kernel,
// with iproute2's ip and bridge.
import { CommandError, runCommand } from "../../exec/command.js";
import type { Family } from "../../net/address.js";
import {
  VXLAN_DEVICE,
  parseVxlanDevices,
  parseVxlanForwarding,
  parseVxlanNeighbours,
  parseLocalSubnets,
  renderVxlanChanges,
  type VxlanKernelState,
  type VxlanPlan,
} from "../vxlan.js";

export interface Tunnels {
  /** buoy's VXLAN devices, and the neighbours and forwarding entries on them, as the kernel holds them. */
  read(): Promise<VxlanKernelState>;
  /**
   * Makes the kernel hold `desired`, given what it held (`read()`); resolves
   * to the families whose device was made anew: routes through the old one
   * went with it.
   */
  apply(desired: VxlanPlan, current: VxlanKernelState): Promise<Family[]>;
  /** The node's own networks (its global addresses' prefixes), for vxlanMode CrossSubnet. */
  localSubnets(): Promise<string[]>;
}

export class LinuxTunnels implements Tunnels {
  async read(): Promise<VxlanKernelState> {
    const { stdout } = await runCommand([
      "ip",
      "-json",
      "-details",
      "link",
      "show",
      "type",
      "vxlan",
    ]);
    const devices = parseVxlanDevices(JSON.parse(stdout || "[]"));
    const state: VxlanKernelState = { devices, neighbours: [], forwarding: [] };
    for (const { family, name } of devices) {
      const [neighbours, forwarding] = await Promise.all([
        runCommand(["ip", "-json", "neigh", "show", "dev", name]),
        runCommand(["bridge", "-json", "fdb", "show", "dev", name]),
      ]);
      state.neighbours.push(...parseVxlanNeighbours(family, JSON.parse(neighbours.stdout || "[]")));
      state.forwarding.push(...parseVxlanForwarding(family, JSON.parse(forwarding.stdout || "[]")));
    }
    return state;
  }

  async apply(desired: VxlanPlan, current: VxlanKernelState): Promise<Family[]> {
    let changes = renderVxlanChanges(desired, current);
    if (changes.remade.length > 0) {
      changes = renderVxlanChanges(desired, current, await uplinksOf(desired, changes.remade));
    }
    await batch(["ip", "-force", "-batch", "-"], changes.links);
    await batch(["bridge", "-force", "-batch", "-"], changes.fdb);
    return changes.remade;
  }

  async localSubnets(): Promise<string[]> {
    const { stdout } = await runCommand(["ip", "-json", "address", "show"]);
    return parseLocalSubnets(JSON.parse(stdout || "[]"));
  }
}

/** The interfaces that hold the local addresses of the devices about to be made. */
async function uplinksOf(
  desired: VxlanPlan,
  families: readonly Family[],
): Promise<Partial<Record<Family, string>>> {
  const { stdout } = await runCommand(["ip", "-json", "address", "show"]);
  const links = JSON.parse(stdout || "[]") as {
    ifname?: string;
    addr_info?: { local?: string }[];
  }[];
  const uplinks: Partial<Record<Family, string>> = {};
  for (const family of families) {
    const local = desired.devices.find((device) => device.family === family)?.local;
    const link = links.find(
      (entry) =>
        entry.ifname !== VXLAN_DEVICE[family] &&
        entry.addr_info?.some((address) => address.local === local),
    );
    if (link?.ifname !== undefined) uplinks[family] = link.ifname;
  }
  return uplinks;
}

/**
 * Runs a batch, every line tried (-force); an entry already gone when its
 * delete ran is what the delete wanted, anything else rejects.
 */
async function batch(argv: string[], script: string): Promise<void> {
  if (!script) return;
  try {
    await runCommand(argv, { input: script });
  } catch (error) {
    const failures =
      error instanceof CommandError
        ? error.stderr.split("\n").filter((line) => /error|answers/i.test(line))
        : [];
    const gone = (line: string) => /No such file or directory|Cannot find device/.test(line);
    if (failures.length === 0 || !failures.every(gone)) throw error;
  }
}
