// The VXLAN overlay's part of a complete reconcile: the devices and peers a
// routing plan needs, made before the routes through them; the node's own
// networks the plan reads (vxlanMode CrossSubnet). A node in another mode
// removes the devices a switch away from vxlan left behind.
import type { RoutingMode } from "../dataplane/routing-plan.js";
import type { Tunnels } from "../dataplane/shell/linux-vxlan.js";
import {
  NO_VXLAN,
  VXLAN_DEVICE,
  type VxlanKernelState,
  type VxlanPlan,
} from "../dataplane/vxlan.js";

export class TunnelSync {
  /** What the kernel held after the last apply; undefined: read it. */
  #held: VxlanKernelState | undefined;
  #subnets: string[] | undefined;

  constructor(
    private readonly tunnels: Tunnels | undefined,
    private readonly mode: RoutingMode,
  ) {}

  /** vxlan: the node's own networks, read for the first plan and again on every read-back. */
  async subnets(verify: boolean): Promise<string[] | undefined> {
    if (this.mode !== "vxlan" || !this.tunnels) return undefined;
    if (verify || !this.#subnets) this.#subnets = await this.tunnels.localSubnets();
    return this.#subnets;
  }

  /**
   * Makes the kernel hold `plan` (none outside vxlan mode); `verify` reads
   * the kernel back first. Resolves to whether a device was made anew: the
   * routes through the old one went with it, so the routes must be read back.
   */
  async sync(
    plan: VxlanPlan | undefined,
    interfaces: ReadonlySet<string>,
    verify: boolean,
  ): Promise<boolean> {
    const { tunnels } = this;
    if (!tunnels) return false;
    const leftOver = Object.values(VXLAN_DEVICE).some((name) => interfaces.has(name));
    if (this.mode !== "vxlan" && !leftOver) return false;
    const desired = this.mode === "vxlan" ? (plan ?? NO_VXLAN) : NO_VXLAN;
    const current = (!verify && this.#held) || (await tunnels.read());
    this.#held = undefined; // until this apply has succeeded
    const remade = await tunnels.apply(desired, current);
    const families = new Set(desired.devices.map((device) => device.family));
    const peers = desired.peers.filter((peer) => families.has(peer.family));
    this.#held = {
      devices: desired.devices.map((device) => ({ ...device, intact: true })),
      neighbours: peers,
      forwarding: peers,
    };
    return remade.length > 0;
  }
}
