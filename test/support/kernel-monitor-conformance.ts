// What every KernelMonitor (the kernel's, the fake) must tell: buoy's map
// elements and routes as they change, by whom ever; interfaces coming and
// going; anything else in buoy's tables as a change to read back; nothing
// once stopped. Run on the real kernel by test/integration/kernel-monitor.test.ts
// and on the fakes by src/agent/kernel-watch.test.ts.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KernelEvent } from "../../src/dataplane/kernel-events.js";
import type { KernelMonitor } from "../../src/dataplane/shell/kernel-monitor.js";
import type { Nft } from "../../src/dataplane/shell/nft.js";
import type { Routes } from "../../src/dataplane/shell/linux-routes.js";
import {
  renderNftElementChanges,
  renderNftTable,
  renderNftTableRemoval,
} from "../../src/dataplane/nft-script.js";
import { routeKey, type NodeRoute } from "../../src/dataplane/node-routes.js";
import type { Family } from "../../src/net/address.js";

export interface KernelMonitorRig {
  monitor: KernelMonitor;
  nft: Nft;
  routes: Routes;
  /** An interface the node has when the monitor starts. */
  link: string;
  /** A name for an interface that comes and goes during the suite. */
  spareLink: string;
  addLink(name: string): Promise<void>;
  removeLink(name: string): Promise<void>;
  /** Behind buoy's back: `nft delete element <family> buoy fip_dnat { floating }`. */
  deleteTranslation(family: Family, floating: string): Promise<void>;
  /** Waits this long at most for a notice (the kernel's come asynchronously). */
  waitMs: number;
}

const BINDINGS = [
  { family: 4 as const, floating: "203.0.113.7", pod: "10.244.0.9" },
  { family: 6 as const, floating: "2001:db8:f::7", pod: "fd00:244::9", egress: true as const },
];

export function kernelMonitorConformance(name: string, rig: () => Promise<KernelMonitorRig>): void {
  describe(`KernelMonitor conformance: ${name}`, () => {
    let r: KernelMonitorRig;
    const heard: KernelEvent[] = [];
    const lost: string[] = [];
    let links: Map<number, string>;

    /** Waits until `wanted` were all heard, then takes what was heard. */
    async function hear(wanted: readonly KernelEvent[]): Promise<KernelEvent[]> {
      const until = Date.now() + r.waitMs;
      const has = (event: KernelEvent) =>
        heard.some((got) => JSON.stringify(got) === JSON.stringify(event));
      while (!wanted.every(has) && Date.now() < until) await new Promise((s) => setTimeout(s, 10));
      expect(heard).toEqual(expect.arrayContaining([...wanted]));
      return heard.splice(0);
    }

    beforeAll(async () => {
      r = await rig();
      for (const family of [4, 6] as const) {
        await r.nft.apply(renderNftTable({ bindings: [] }, family));
      }
      links = await r.monitor.start({
        onEvents: (events) => heard.push(...events),
        onLost: (reason) => lost.push(reason),
      });
    });
    afterAll(async () => {
      r.monitor.stop();
      await r.nft.apply(renderNftTableRemoval([4, 6]));
    });

    it("lists the interfaces the node has, by index", () => {
      expect([...links.values()]).toContain(r.link);
      expect(new Set(links.keys()).size).toBe(links.size);
    });

    it("tells each element buoy adds and deletes, with its value", async () => {
      for (const family of [4, 6] as const) {
        const ofFamily = BINDINGS.filter((binding) => binding.family === family);
        await r.nft.apply(renderNftElementChanges(family, ofFamily, []));
      }
      const element = (b: (typeof BINDINGS)[number], present: boolean): KernelEvent[] => [
        {
          kind: "element",
          family: b.family,
          map: "fip_dnat",
          key: b.floating,
          value: b.pod,
          present,
        },
        {
          kind: "element",
          family: b.family,
          map: "fip_hairpin",
          key: `${b.pod} . ${b.floating}`,
          value: b.floating,
          present,
        },
      ];
      const egress = (present: boolean): KernelEvent => ({
        kind: "element",
        family: 6,
        map: "fip_egress",
        key: "fd00:244::9",
        value: "2001:db8:f::7",
        present,
      });
      await hear([...BINDINGS.flatMap((b) => element(b, true)), egress(true)]);
      await r.nft.apply(renderNftElementChanges(6, [], [BINDINGS[1]!]));
      await hear([...element(BINDINGS[1]!, false), egress(false)]);
    });

    it("tells an element deleted behind buoy's back", async () => {
      await r.deleteTranslation(4, "203.0.113.7");
      await hear([
        {
          kind: "element",
          family: 4,
          map: "fip_dnat",
          key: "203.0.113.7",
          value: "10.244.0.9",
          present: false,
        },
      ]);
    });

    it("tells a table replaced as a change to read back", async () => {
      await r.nft.apply(renderNftTable({ bindings: BINDINGS }, 4));
      expect(await hear([{ kind: "table" }])).toContainEqual({ kind: "table" });
    });

    it("tells buoy's routes added and deleted, by routeKey", async () => {
      const routes: NodeRoute[] = [
        { family: 4, dst: "203.0.113.7/32", dev: r.link },
        { family: 6, dst: "2001:db8:f::7/128", dev: r.link },
        { family: 4, dst: "10.250.0.0/26", blackhole: true },
      ];
      await r.routes.apply(routes, []);
      await hear(routes.map((route) => ({ kind: "route", key: routeKey(route), present: true })));
      await r.routes.apply([], routes);
      await hear(routes.map((route) => ({ kind: "route", key: routeKey(route), present: false })));
    });

    it("tells an interface coming and going, by index", async () => {
      const named = (present: boolean) =>
        heard.find(
          (event) =>
            event.kind === "link" && event.name === r.spareLink && event.present === present,
        );
      await r.addLink(r.spareLink);
      const until = Date.now() + r.waitMs;
      while (!named(true) && Date.now() < until) await new Promise((s) => setTimeout(s, 10));
      const added = named(true) as (KernelEvent & { kind: "link" }) | undefined;
      expect(added).toBeDefined();
      heard.splice(0);
      await r.removeLink(r.spareLink);
      await hear([{ ...added!, present: false }]);
    });

    it("tells nothing once stopped, and was never lost", async () => {
      r.monitor.stop();
      await r.nft.apply(renderNftElementChanges(6, [BINDINGS[1]!], []));
      await new Promise((s) => setTimeout(s, Math.min(r.waitMs, 300)));
      expect(heard).toEqual([]);
      expect(lost).toEqual([]);
    });
  });
}
