// What every Tunnels (the kernel's, the fake) must do: make buoy's VXLAN
// devices and each peer's neighbour and forwarding entry, read them back as
// made, write nothing more when asked again, repair what someone removed,
// make a changed device anew, and remove it all when the plan has none. Run
// on the real kernel by test/integration/vxlan.test.ts and on the fake by
// src/dataplane/tunnels.test.ts.
import { describe, expect, it } from "vitest";
import type { Tunnels } from "../../src/dataplane/shell/linux-vxlan.js";
import { NO_VXLAN, vxlanDevice, type VxlanPlan } from "../../src/dataplane/vxlan.js";

export interface TunnelsRig {
  tunnels: Tunnels;
  /** The addresses the node holds (the devices' local addresses). */
  local: { 4: string; 6: string };
  /** Another address of the node, for a device whose local address changes. */
  otherLocal4: string;
  /** Behind buoy's back: one entry removed from the kernel. */
  remove(kind: "neighbours" | "forwarding", family: 4 | 6, address: string): Promise<void>;
}

export function tunnelsConformance(name: string, rig: () => TunnelsRig): void {
  describe(`${name}: Tunnels conformance`, () => {
    const peerA = { family: 4 as const, address: "192.168.202.12", mac: "02:00:00:00:00:12" };
    const peerB = { family: 4 as const, address: "192.168.203.13", mac: "02:00:00:00:00:13" };
    const peer6 = { family: 6 as const, address: "fd00:202::12", mac: "02:00:00:00:00:14" };
    const plan = (): VxlanPlan => ({
      devices: [vxlanDevice("node-1", 4, rig().local[4]), vxlanDevice("node-1", 6, rig().local[6])],
      peers: [peerA, peerB, peer6],
    });
    const sameAs = async (want: VxlanPlan) => {
      const held = await rig().tunnels.read();
      expect(held.devices).toEqual(want.devices.map((device) => ({ ...device, intact: true })));
      const sorted = <T extends { address: string }>(items: T[]) =>
        [...items].sort((a, b) => (a.address < b.address ? -1 : 1));
      expect(sorted(held.neighbours)).toEqual(sorted(want.peers));
      expect(sorted(held.forwarding)).toEqual(sorted(want.peers));
    };

    it("holds nothing of buoy's at first", async () => {
      const held = await rig().tunnels.read();
      expect(held).toEqual({ devices: [], neighbours: [], forwarding: [] });
    });

    it("makes both devices and every peer's entries, and reads them back as made", async () => {
      const { tunnels } = rig();
      expect(await tunnels.apply(plan(), await tunnels.read())).toEqual([4, 6]);
      await sameAs(plan());
    });

    it("makes nothing anew when asked again", async () => {
      const { tunnels } = rig();
      expect(await tunnels.apply(plan(), await tunnels.read())).toEqual([]);
      await sameAs(plan());
    });

    it("repairs an entry someone removed, and removes a peer that went", async () => {
      const { tunnels, remove } = rig();
      await remove("neighbours", 4, peerA.address);
      await remove("forwarding", 6, peer6.address);
      const fewer = { ...plan(), peers: [peerA, peer6] };
      expect(await tunnels.apply(fewer, await tunnels.read())).toEqual([]);
      await sameAs(fewer);
    });

    it("makes a device anew, with its peers, when its local address changes", async () => {
      const { tunnels, otherLocal4 } = rig();
      const moved: VxlanPlan = {
        devices: [vxlanDevice("node-1", 4, otherLocal4), plan().devices[1]!],
        peers: [peerA, peer6],
      };
      expect(await tunnels.apply(moved, await tunnels.read())).toEqual([4]);
      await sameAs(moved);
    });

    it("removes every device and entry when the plan has none", async () => {
      const { tunnels } = rig();
      expect(await tunnels.apply(NO_VXLAN, await tunnels.read())).toEqual([]);
      expect(await tunnels.read()).toEqual({ devices: [], neighbours: [], forwarding: [] });
    });
  });
}
