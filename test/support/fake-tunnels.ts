// A node's VXLAN devices and peers for unit tests, behind the Tunnels port
// (src/dataplane/shell/linux-vxlan.ts): apply() does what the scripts of
// renderVxlanChanges() do to the kernel, a device deleted takes its entries
// with it, and read() gives back what is held.
import type { Family } from "../../src/net/address.js";
import type { Tunnels } from "../../src/dataplane/shell/linux-vxlan.js";
import {
  renderVxlanChanges,
  type VxlanKernelState,
  type VxlanPlan,
} from "../../src/dataplane/vxlan.js";

export class FakeTunnels implements Tunnels {
  #state: VxlanKernelState = { devices: [], neighbours: [], forwarding: [] };
  /** What localSubnets() answers. */
  subnets: string[] = [];

  /** `interfaces`: the node's interface names (FakeRoutes'), which the devices join and leave. */
  constructor(private readonly interfaces: Set<string> = new Set()) {}

  async localSubnets(): Promise<string[]> {
    return [...this.subnets];
  }
  /** Where each apply() that changed something is noted, as "tunnels <links lines> <fdb lines>". */
  readonly journal: string[] = [];

  async read(): Promise<VxlanKernelState> {
    return structuredClone(this.#state);
  }

  async apply(desired: VxlanPlan, current: VxlanKernelState): Promise<Family[]> {
    const changes = renderVxlanChanges(desired, current);
    const count = (script: string) => script.split("\n").filter(Boolean).length;
    if (changes.links || changes.fdb)
      this.journal.push(`tunnels ${count(changes.links)} ${count(changes.fdb)}`);
    // What the scripts leave: the desired devices, intact; the desired
    // peers' entries on them; nothing else (on a kept device, what no peer
    // has was deleted; a remade or removed device took its entries with it).
    const families = new Set(desired.devices.map((device) => device.family));
    const peers = desired.peers.filter((peer) => families.has(peer.family));
    for (const device of this.#state.devices) this.interfaces.delete(device.name);
    for (const device of desired.devices) this.interfaces.add(device.name);
    this.#state = {
      devices: desired.devices.map((device) => ({ ...device, intact: true })),
      neighbours: peers.map((peer) => ({ ...peer })),
      forwarding: peers.map((peer) => ({ ...peer })),
    };
    return changes.remade;
  }

  /** Behind buoy's back: an entry removed (ip neigh del / bridge fdb del). */
  remove(kind: "neighbours" | "forwarding", address: string): void {
    this.#state[kind] = this.#state[kind].filter((entry) => entry.address !== address);
  }
}
