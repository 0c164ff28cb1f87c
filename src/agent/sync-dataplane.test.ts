import { describe, expect, it } from "vitest";
import type { NatBinding } from "../dataplane/nat-plan.js";
import type { NftBinding } from "../dataplane/nft-script.js";
import { FakeNft } from "../../test/support/fake-nft.js";
import { FakeConntrack, FakeRoutes } from "../../test/support/fake-routes.js";
import { syncDataplane, type DesiredDataplane } from "./sync-dataplane.js";

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

/** The node's kernel: every nft script, route change and flush noted in one journal, in order. */
function setup() {
  const journal: string[] = [];
  const nft = new FakeNft({ journal });
  const ports = {
    nft,
    routes: new FakeRoutes({ interfaces: ["calia", "calib"], journal }),
    conntrack: new FakeConntrack({ journal }),
  };
  return { nft, journal, ports };
}
const strip = (bindings: NftBinding[]) => bindings.map(({ floating, pod }) => `${floating}>${pod}`);
/**
 * The journal in two: routes are written while nft runs (either may come
 * first), conntrack is flushed after nft.
 */
const split = (journal: readonly string[]) => ({
  nftThenFlush: journal.filter((line) => !line.startsWith("routes ")),
  routes: journal.filter((line) => line.startsWith("routes ")),
});

describe("syncDataplane()", () => {
  it("syncDataplane() keeps a flush pending when a later step fails, and does it on the next call", async () => {
    const { journal, ports } = setup();
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
    expect(journal).toEqual(["replace ipv4", "replace ipv6", "flush 10.96.0.1"]);
    expect(pending.size).toBe(0);
    const flaky = {
      flushDestinations: async () => Promise.reject(new Error("conntrack: not found")),
    };
    await syncDataplane(plan(), { ...ports, conntrack: flaky }, pending);
    expect([...pending.keys()]).toEqual(["10.96.0.1"]);
    journal.length = 0;
    await syncDataplane(plan(), ports, pending);
    expect(journal).toEqual(["flush 10.96.0.1"]);
    expect(pending.size).toBe(0);
  });

  it("syncDataplane() creates both tables whole when the kernel has none", async () => {
    const { journal, ports } = setup();
    const outcome = await syncDataplane(
      plan(binding("10.96.0.1", "10.244.0.5"), binding("fd00:96::1", "fd00::5")),
      ports,
    );
    expect(outcome.replaced).toEqual([4, 6]);
    expect(split(journal)).toEqual({
      nftThenFlush: ["replace ipv4", "replace ipv6", "flush 10.96.0.1", "flush fd00:96::1"],
      routes: ["routes +2 -0"],
    });
  });

  it("syncDataplane() changes nothing when the kernel already matches (a restart does not flush)", async () => {
    const { journal, ports } = setup();
    const desired = plan(binding("10.96.0.1", "10.244.0.5"));
    await syncDataplane(desired, ports);
    journal.length = 0;
    const outcome = await syncDataplane(desired, ports);
    expect(journal).toEqual([]);
    expect(outcome).toMatchObject({ added: [], removed: [], replaced: [], flushed: [] });
  });

  it("syncDataplane() moves a floating IP with one element change, then flushes its conntrack", async () => {
    const { nft, journal, ports } = setup();
    await syncDataplane(plan(binding("10.96.0.1", "10.244.0.5", "calia")), ports);
    journal.length = 0;
    const outcome = await syncDataplane(plan(binding("10.96.0.1", "10.244.0.6", "calib")), ports);
    expect(split(journal)).toEqual({
      nftThenFlush: ["elements ipv4", "flush 10.96.0.1"],
      routes: ["routes +1 -1"],
    });
    expect(strip(outcome.added)).toEqual(["10.96.0.1>10.244.0.6"]);
    expect(strip(outcome.removed)).toEqual(["10.96.0.1>10.244.0.5"]);
    expect(strip(nft.bindings(4))).toEqual(["10.96.0.1>10.244.0.6"]);
  });

  it("syncDataplane() replaces a table that is not intact, and one the kernel refuses to patch", async () => {
    const { nft, journal, ports } = setup();
    await syncDataplane(plan(binding("10.96.0.1", "10.244.0.5")), ports);
    nft.alter(4);
    journal.length = 0;
    await syncDataplane(plan(binding("10.96.0.1", "10.244.0.5")), ports);
    expect(journal).toEqual(["replace ipv4"]);
    nft.refuseElementChanges = true;
    journal.length = 0;
    const outcome = await syncDataplane(plan(binding("10.96.0.2", "10.244.0.5")), ports);
    expect(outcome.replaced).toEqual([4]);
    expect(strip(nft.bindings(4))).toEqual(["10.96.0.2>10.244.0.5"]);
    expect(journal.at(-1)).toBe("flush 10.96.0.1");
  });

  it("syncDataplane() with the known state reads nothing back and applies only the difference", async () => {
    const { nft, journal, ports } = setup();
    const first = await syncDataplane(plan(binding("10.96.0.1", "10.244.0.5")), ports);
    nft.reads = 0;
    journal.length = 0;
    const next = await syncDataplane(
      plan(binding("10.96.0.1", "10.244.0.5"), binding("10.96.0.2", "10.244.0.6")),
      ports,
      new Map(),
      first.known,
    );
    expect(nft.reads).toBe(0);
    expect(split(journal)).toEqual({
      nftThenFlush: ["elements ipv4", "flush 10.96.0.2"],
      routes: ["routes +1 -0"],
    });
    expect(strip([...next.known.tables.get(4)!.bindings.values()])).toEqual([
      "10.96.0.1>10.244.0.5",
      "10.96.0.2>10.244.0.6",
    ]);
  });

  it("syncDataplane() converges when the known state is wrong (someone deleted the table)", async () => {
    const { nft, ports } = setup();
    const first = await syncDataplane(plan(binding("10.96.0.1", "10.244.0.5")), ports);
    nft.deleteTable(4);
    const next = await syncDataplane(
      plan(binding("10.96.0.2", "10.244.0.6")),
      ports,
      new Map(),
      first.known,
    );
    expect(next.replaced).toEqual([4]);
    expect(strip(nft.bindings(4))).toEqual(["10.96.0.2>10.244.0.6"]);
  });
});
