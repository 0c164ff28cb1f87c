import { describe, expect, it } from "vitest";
import type { NatBinding } from "../dataplane/nat-plan.js";
import type { NftBinding, NftTableState } from "../dataplane/nft-script.js";
import type { Nft } from "../dataplane/shell/nft.js";
import type { NodeRoute } from "../dataplane/node-routes.js";
import type { Conntrack, Routes } from "../dataplane/shell/linux-routes.js";
import type { Family } from "../net/address.js";
import { syncDataplane, type DesiredDataplane } from "./sync-dataplane.js";

/** Records every call in order, so tests can check what happened before what. */
class FakeKernel implements Nft, Conntrack {
  tables = new Map<Family, NftTableState>();
  routes: NodeRoute[] = [];
  calls: string[] = [];
  refuseElementChanges = false;

  async apply(script: string): Promise<void> {
    const family: Family = script.includes(" ip6 buoy") ? 6 : 4;
    if (script.includes("delete table")) {
      this.calls.push(`replace ipv${family}`);
      const bindings = [...script.matchAll(/^\t\t\t(\S+) : (\S+?),?$/gm)].map(
        ([, floating, pod]) => ({ family, floating: floating!, pod: pod! }),
      );
      this.tables.set(family, { bindings, intact: true, natOutgoing: { sources: [], pools: [] } });
      return;
    }
    if (this.refuseElementChanges)
      throw new Error("Error: Could not process rule: No such file or directory");
    this.calls.push(`elements ipv${family}`);
    const table = this.tables.get(family)!;
    const removed = [
      ...script.matchAll(/^delete element .* fip_dnat \{\n((?:\t.*\n)+)\}/gm),
    ].flatMap(([, body]) => body!.trim().split(/,?\n\t*/));
    const added = [...script.matchAll(/^add element .* fip_dnat \{\n((?:\t.*\n)+)\}/gm)].flatMap(
      ([, body]) =>
        body!
          .trim()
          .split(/,?\n\t*/)
          .map((line) => line.split(" : ") as [string, string]),
    );
    table.bindings = [
      ...table.bindings.filter((binding) => !removed.includes(binding.floating)),
      ...added.map(([floating, pod]) => ({ family, floating, pod })),
    ];
  }
  reads = 0;
  async readTable(family: Family): Promise<NftTableState | undefined> {
    this.reads += 1;
    const table = this.tables.get(family);
    return table && { ...table, bindings: [...table.bindings] };
  }
  async flushDestinations(_family: Family, ips: readonly string[]): Promise<string[]> {
    for (const ip of ips) this.calls.push(`flush ${ip}`);
    return [...ips];
  }
}

class FakeRoutes implements Routes {
  constructor(private readonly kernel: FakeKernel) {}
  async readInterfaces(): Promise<Set<string>> {
    return new Set(this.kernel.routes.flatMap((route) => (route.dev ? [route.dev] : [])));
  }
  async read(): Promise<NodeRoute[]> {
    return [...this.kernel.routes];
  }
  async apply(added: readonly NodeRoute[], removed: readonly NodeRoute[]): Promise<string[]> {
    this.kernel.calls.push(`routes +${added.length} -${removed.length}`);
    const gone = new Set(removed.map((r) => `${r.dst}|${r.dev}`));
    this.kernel.routes = [
      ...this.kernel.routes.filter((r) => !gone.has(`${r.dst}|${r.dev}`)),
      ...added,
    ];
    return [];
  }
}

const binding = (floating: string, pod: string, hostIfname = "calia"): NatBinding => ({
  family: floating.includes(":") ? 6 : 4,
  floating,
  pod,
  hostIfname,
});
const plan = (...bindings: NatBinding[]): DesiredDataplane => ({
  bindings,
  routes: bindings.map((b) => ({
    family: b.family,
    dst: `${b.floating}/${b.family === 4 ? 32 : 128}`,
    dev: b.hostIfname,
  })),
});

function setup() {
  const kernel = new FakeKernel();
  const ports = { nft: kernel, routes: new FakeRoutes(kernel), conntrack: kernel };
  return { kernel, ports };
}
const strip = (bindings: NftBinding[]) => bindings.map(({ floating, pod }) => `${floating}>${pod}`);

describe("syncDataplane()", () => {
  it("syncDataplane() keeps a flush pending when a later step fails, and does it on the next call", async () => {
    const { kernel, ports } = setup();
    const pending = new Map<string, 4 | 6>();
    const failingRoutes = {
      ...ports.routes,
      read: ports.routes.read.bind(ports.routes),
      readInterfaces: ports.routes.readInterfaces.bind(ports.routes),
      apply: async () => Promise.reject(new Error("RTNETLINK answers: Operation not permitted")),
    };
    await expect(
      syncDataplane(
        plan(binding("10.96.0.1", "10.244.0.5")),
        { ...ports, routes: failingRoutes },
        pending,
      ),
    ).rejects.toThrow("Operation not permitted");
    expect(kernel.calls).toEqual(["replace ipv4", "replace ipv6", "flush 10.96.0.1"]);
    expect(pending.size).toBe(0);
    const flaky = {
      flushDestinations: async () => Promise.reject(new Error("conntrack: not found")),
    };
    await syncDataplane(plan(), { ...ports, conntrack: flaky }, pending);
    expect([...pending.keys()]).toEqual(["10.96.0.1"]);
    kernel.calls = [];
    await syncDataplane(plan(), ports, pending);
    expect(kernel.calls).toEqual(["flush 10.96.0.1"]);
    expect(pending.size).toBe(0);
  });

  it("syncDataplane() creates both tables whole when the kernel has none", async () => {
    const { kernel, ports } = setup();
    const outcome = await syncDataplane(
      plan(binding("10.96.0.1", "10.244.0.5"), binding("fd00:96::1", "fd00::5")),
      ports,
    );
    expect(outcome.replaced).toEqual([4, 6]);
    expect(kernel.calls).toEqual([
      "replace ipv4",
      "replace ipv6",
      "routes +2 -0",
      "flush 10.96.0.1",
      "flush fd00:96::1",
    ]);
  });

  it("syncDataplane() changes nothing when the kernel already matches (a restart does not flush)", async () => {
    const { kernel, ports } = setup();
    const desired = plan(binding("10.96.0.1", "10.244.0.5"));
    await syncDataplane(desired, ports);
    kernel.calls = [];
    const outcome = await syncDataplane(desired, ports);
    expect(kernel.calls).toEqual([]);
    expect(outcome).toMatchObject({ added: [], removed: [], replaced: [], flushed: [] });
  });

  it("syncDataplane() moves a floating IP with one element change, then flushes its conntrack", async () => {
    const { kernel, ports } = setup();
    await syncDataplane(plan(binding("10.96.0.1", "10.244.0.5", "calia")), ports);
    kernel.calls = [];
    const outcome = await syncDataplane(plan(binding("10.96.0.1", "10.244.0.6", "calib")), ports);
    expect(kernel.calls).toEqual(["elements ipv4", "routes +1 -1", "flush 10.96.0.1"]);
    expect(strip(outcome.added)).toEqual(["10.96.0.1>10.244.0.6"]);
    expect(strip(outcome.removed)).toEqual(["10.96.0.1>10.244.0.5"]);
    expect(strip(kernel.tables.get(4)!.bindings)).toEqual(["10.96.0.1>10.244.0.6"]);
  });

  it("syncDataplane() replaces a table that is not intact, and one the kernel refuses to patch", async () => {
    const { kernel, ports } = setup();
    await syncDataplane(plan(binding("10.96.0.1", "10.244.0.5")), ports);
    kernel.tables.get(4)!.intact = false;
    kernel.calls = [];
    await syncDataplane(plan(binding("10.96.0.1", "10.244.0.5")), ports);
    expect(kernel.calls).toEqual(["replace ipv4"]);
    kernel.refuseElementChanges = true;
    kernel.calls = [];
    const outcome = await syncDataplane(plan(binding("10.96.0.2", "10.244.0.5")), ports);
    expect(outcome.replaced).toEqual([4]);
    expect(strip(kernel.tables.get(4)!.bindings)).toEqual(["10.96.0.2>10.244.0.5"]);
    expect(kernel.calls.at(-1)).toBe("flush 10.96.0.1");
  });

  it("syncDataplane() with the known state reads nothing back and applies only the difference", async () => {
    const { kernel, ports } = setup();
    const first = await syncDataplane(plan(binding("10.96.0.1", "10.244.0.5")), ports);
    kernel.reads = 0;
    kernel.calls = [];
    const next = await syncDataplane(
      plan(binding("10.96.0.1", "10.244.0.5"), binding("10.96.0.2", "10.244.0.6")),
      ports,
      new Map(),
      first.known,
    );
    expect(kernel.reads).toBe(0);
    expect(kernel.calls).toEqual(["elements ipv4", "routes +1 -0", "flush 10.96.0.2"]);
    expect(strip(next.known.tables.get(4)!.bindings)).toEqual([
      "10.96.0.1>10.244.0.5",
      "10.96.0.2>10.244.0.6",
    ]);
  });

  it("syncDataplane() converges when the known state is wrong (someone deleted the table)", async () => {
    const { kernel, ports } = setup();
    const first = await syncDataplane(plan(binding("10.96.0.1", "10.244.0.5")), ports);
    kernel.tables.delete(4);
    const next = await syncDataplane(
      plan(binding("10.96.0.2", "10.244.0.6")),
      ports,
      new Map(),
      first.known,
    );
    expect(next.replaced).toEqual([4]);
    expect(strip(kernel.tables.get(4)!.bindings)).toEqual(["10.96.0.2>10.244.0.6"]);
  });
});
