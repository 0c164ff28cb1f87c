// Dataplane benchmark: `npm run bench:dataplane` (runs under bun inside the node
// namespace that scripts/netns-run.sh creates; BUOY_RUN_PREFIX must be set).
//
// Three parts, one run, everything inside this run's namespaces:
//
// 1. Programming cost. buoy's table (renderNftTable, then `nft -f -` through
//    LinuxNft) for 1k, 10k and 100k IPv4 bindings from empty, and reading it
//    back the way the agent does before every reconcile (`nft -j list table`
//    plus parseNftTable). One change (one binding removed, one added) at 10k:
//    renderNftElementChanges through LinuxNft, and the same change the way the
//    agent makes it (syncDataplane: read, diff, apply; routes and conntrack
//    stubbed). The baseline renders the same bindings the way Calico's Felix
//    does in iptables mode (felix/rules/nat.go): one rule per floating IP in
//    `cali-fip-dnat` (`-d EXT/32 -j DNAT --to-destination INT`, jumped to from
//    PREROUTING and OUTPUT) and one per pod in `cali-fip-snat` (`-s INT/32
//    -d INT/32 -j SNAT --to-source EXT`, from POSTROUTING: the hairpin,
//    buoy's second map), sorted as strings like Felix, loaded with
//    iptables-nft-restore. Its change is the whole rewrite of both chains
//    (`iptables-nft-restore --noflush`, the chains declared again, which
//    flushes them) and, closer to Felix's incremental writer, `-R` of every
//    rule from the first one that differs (Felix chains each rule's hash with
//    the previous one, so everything after a change is rewritten). A variant
//    with the DNAT chain only is measured too.
// 2. New-connection rate. A pod namespace and a client namespace hang off the
//    node namespace by veths. The client floods UDP to one floating IP, every
//    datagram from a new (source address, source port) pair so that each one
//    is a new conntrack entry on the node; a receiver in the pod counts what
//    arrives. With 10 and with 10k bindings, for buoy's map, for the Calico
//    rules (the target is the LAST rule of cali-fip-dnat: the worst case of a
//    linear chain) and for the DNAT-only chain, one installed at a time,
//    conntrack flushed before every run; plus a reference run with no NAT at
//    all, sent straight to the pod IP.
// 3. The agent. 10k endpoints and claims in etcd, `node dist/buoy agent` in
//    the node namespace: time until /metrics shows 10k programmed bindings,
//    its resident memory (VmRSS, VmHWM), one no-op reconcile at 10k, and one
//    live change (a binding added in etcd until the agent has programmed it);
//    the same agent with no bindings as the reference.
//
// Prints tables and writes .bench/dataplane.json. When the agent has not
// programmed every binding within BENCH_AGENT_TIMEOUT_S (45 s), that is
// reported with what it was doing, and the run still completes.
//
// Knobs (environment): BENCH_APPLY_REPS (3), BENCH_CHANGE_REPS (10),
// BENCH_RATE_REPS (5), BENCH_RATE_SECONDS (1.5), BENCH_AGENT_BINDINGS (10000),
// BENCH_AGENT_TIMEOUT_S (45), BENCH_AGENT_BUOY (another build's dist/buoy to
// run as the agent), BENCH_ONLY (a comma list of apply, rate, agent).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { formatTable, machineInfo, note, progress, stats, type Stats } from "./report.js";
import { syncDataplane, type DataplanePorts } from "../src/agent/sync-dataplane.js";
import { sortBindings, type NatBinding } from "../src/dataplane/nat-plan.js";
import { LinuxNft } from "../src/dataplane/shell/nft.js";
import {
  renderNftElementChanges,
  renderNftTable,
  type NftTableState,
} from "../src/dataplane/nft-script.js";
import type { KvOp } from "../src/datastore/kv.js";
import type { FloatingIpClaim, WorkloadEndpoint } from "../src/model/records.js";
import { keys } from "../src/etcd/store.js";
import { runCommand } from "../src/exec/command.js";
import { formatAddress, parseAddress } from "../src/net/address.js";
import {
  ROOT,
  addClientNetns,
  addNetns,
  createPool,
  deleteNetns,
  must,
  runPrefix,
  sh,
  sleep,
  startEtcd,
  type Etcd,
} from "../test/support/harness.js";

const APPLY_SIZES = [1000, 10_000, 100_000];
const APPLY_REPS = Number(process.env.BENCH_APPLY_REPS ?? 3);
const CHANGE_AT = 10_000;
const CHANGE_REPS = Number(process.env.BENCH_CHANGE_REPS ?? 10);
const RATE_SIZES = [10, 10_000];
const RATE_REPS = Number(process.env.BENCH_RATE_REPS ?? 5);
const RATE_SECONDS = Number(process.env.BENCH_RATE_SECONDS ?? 1.5);
/**
 * Packets per rate run at most: every one leaves an unreplied conntrack entry
 * (30 s timeout), and nf_conntrack_max (262144 here) cannot be raised from
 * inside a namespace; a full table would drop packets for reasons of its own.
 */
const RATE_MAX_PACKETS = 200_000;
const AGENT_BINDINGS = Number(process.env.BENCH_AGENT_BINDINGS ?? 10_000);
const AGENT_RESYNC_S = 5;
/** The agent to run: this tree's build, or another build to compare (BENCH_AGENT_BUOY). */
const AGENT_EXECUTABLE = process.env.BENCH_AGENT_BUOY ?? join(ROOT, "dist/buoy");
/** How long to wait for the agent's first full sync before reporting that it did not finish. */
const AGENT_SYNC_TIMEOUT_S = Number(process.env.BENCH_AGENT_TIMEOUT_S ?? 45);
const NODE_NAME = "bench-node";
const UDP_PORT = 7000;
const PYTHON = "/usr/bin/python3";
const TRAFFIC = join(ROOT, "bench/dataplane-traffic.py");
/** The node's and the client's ends of the client link; spoofed sources count up from the client's. */
const CLIENT_LINK = { node: "192.0.2.1/24", client: "192.0.2.2/24", firstSource: "192.0.2.2" };
const SOURCE_ADDRESSES = 200;
const DNAT_CHAIN = "cali-fip-dnat";
const SNAT_CHAIN = "cali-fip-snat";

const BUOY = "buoy (nft maps)";
const CALICO = "calico (iptables-nft)";
const DNAT_ONLY = "iptables dnat-only";
const NO_NAT = "no NAT (to pod IP)";

interface TimingSeries {
  config: string;
  op: string;
  bindings: number;
  /** Rows with the same group compare against the group's baseline row. */
  group: string;
  baseline: boolean;
  samples: number[];
  stats: Stats;
  /** Per-sample extra numbers (e.g. rules rewritten). */
  extra?: Record<string, number[]>;
}

interface RateSample {
  sent: number;
  errors: number;
  seconds: number;
  received: number;
  podRxPackets: number;
  conntrackEntries: number;
  arrivalsPerSecond: number;
  sentPerSecond: number;
}

interface RateSeries {
  config: string;
  bindings: number;
  target: string;
  runs: RateSample[];
  stats: Stats;
}

const prefix = runPrefix();
const nft = new LinuxNft();
const liveNetns = new Set<string>();
const liveProcesses = new Set<ChildProcess>();
const liveLinks = new Set<string>();
let etcd: Etcd | undefined;

/** An interface name in the node namespace with the run's prefix (at most 15 characters). */
function ifname(tag: string): string {
  const name = `${prefix}-${tag}`;
  return name.length <= 15 ? name : `${prefix.slice(0, 14 - tag.length)}-${tag}`;
}

// ---- bindings ----------------------------------------------------------------

const v4 = (text: string): bigint => parseAddress(text)!.value;
const format = (value: bigint): string => formatAddress({ family: 4, value });
const inPrefix = (value: bigint, base: bigint, length: number): boolean =>
  value >> BigInt(32 - length) === base >> BigInt(32 - length);

/**
 * Distinct floating IPs: even positions count up from 10.96.0.0 (inside
 * 10.96.0.0/15), odd ones are scattered over 10.0.0.0/8 by a fixed xorshift,
 * outside 10.96.0.0/15 and the pod addresses' 10.244.0.0/14.
 */
function floatingAddresses(count: number): string[] {
  const out: string[] = [];
  const seen = new Set<bigint>();
  let sequential = v4("10.96.0.0");
  const [scattered, floatingRange, podRange] = [v4("10.0.0.0"), v4("10.96.0.0"), v4("10.244.0.0")];
  let state = 0x9e3779b9;
  const next = (): number => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return state >>> 0;
  };
  while (out.length < count) {
    let value: bigint;
    if (out.length % 2 === 0) {
      value = sequential++;
    } else {
      do {
        value = scattered + BigInt(next() & 0xffffff);
      } while (
        seen.has(value) ||
        inPrefix(value, floatingRange, 15) ||
        inPrefix(value, podRange, 14)
      );
    }
    seen.add(value);
    out.push(format(value));
  }
  return out;
}

/** Enough for the largest size plus every binding the change series add (5 series, warm-ups included). */
const FLOATING = floatingAddresses(Math.max(...APPLY_SIZES) + 6 * CHANGE_REPS + 16);
const POD_BASE = v4("10.244.0.2");

/** Binding i: FLOATING[i] to pod 10.244.0.2 + i (past 10.244.255.255 into 10.245/16 beyond 65534). */
function bindingAt(i: number, hostIfname = "bench0"): NatBinding {
  return { family: 4, floating: FLOATING[i]!, pod: format(POD_BASE + BigInt(i)), hostIfname };
}

function bindingsOf(count: number, hostIfname?: string): NatBinding[] {
  return Array.from({ length: count }, (_, i) => bindingAt(i, hostIfname));
}

const compareText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** The binding whose DNAT rule Felix puts last (it sorts floating IPs as strings). */
function lastInChain(bindings: readonly NatBinding[]): NatBinding {
  return [...bindings].sort((a, b) => compareText(a.floating, b.floating)).at(-1)!;
}

/** A small deterministic PRNG (mulberry32) for picking which binding changes. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One change: a random binding removed, a new one (the next unused index) added. */
function changer(seed: number, firstNew: number) {
  const pick = random(seed);
  let next = firstNew;
  return (state: NatBinding[]): { added: NatBinding; removed: NatBinding } => {
    const k = Math.floor(pick() * state.length);
    const removed = state[k]!;
    const added = bindingAt(next++);
    state[k] = added;
    return { added, removed };
  };
}

// ---- the Calico baseline ------------------------------------------------------

type IptVariant = "calico" | "dnat-only";

interface ChainRules {
  chain: string;
  /** Rule specs without `-A chain`, in chain order, as iptables-save prints them. */
  rules: string[];
}

/** The chains Felix renders for these bindings (felix/rules/nat.go), sorted as strings like Felix. */
function iptChains(bindings: readonly NatBinding[], variant: IptVariant): ChainRules[] {
  const byFloating = [...bindings].sort((a, b) => compareText(a.floating, b.floating));
  const dnat: ChainRules = {
    chain: DNAT_CHAIN,
    rules: byFloating.map((b) => `-d ${b.floating}/32 -j DNAT --to-destination ${b.pod}`),
  };
  if (variant === "dnat-only") return [dnat];
  const byPod = [...bindings].sort((a, b) => compareText(a.pod, b.pod));
  const snat: ChainRules = {
    chain: SNAT_CHAIN,
    rules: byPod.map((b) => `-s ${b.pod}/32 -d ${b.pod}/32 -j SNAT --to-source ${b.floating}`),
  };
  return [dnat, snat];
}

/** A full load of the nat table (no --noflush: the table is replaced). */
function iptFullScript(chains: readonly ChainRules[]): string {
  const hasSnat = chains.some((c) => c.chain === SNAT_CHAIN);
  return [
    "*nat",
    ":PREROUTING ACCEPT [0:0]",
    ":INPUT ACCEPT [0:0]",
    ":OUTPUT ACCEPT [0:0]",
    ":POSTROUTING ACCEPT [0:0]",
    ...chains.map((c) => `:${c.chain} - [0:0]`),
    `-A PREROUTING -j ${DNAT_CHAIN}`,
    `-A OUTPUT -j ${DNAT_CHAIN}`,
    ...(hasSnat ? [`-A POSTROUTING -j ${SNAT_CHAIN}`] : []),
    ...chains.flatMap((c) => c.rules.map((rule) => `-A ${c.chain} ${rule}`)),
    "COMMIT",
    "",
  ].join("\n");
}

/** For --noflush: declaring a chain again flushes it; then every rule is appended. */
function iptRewriteScript(chains: readonly ChainRules[]): string {
  return [
    "*nat",
    ...chains.map((c) => `:${c.chain} - [0:0]`),
    ...chains.flatMap((c) => c.rules.map((rule) => `-A ${c.chain} ${rule}`)),
    "COMMIT",
    "",
  ].join("\n");
}

/**
 * For --noflush, the way Felix's incremental writer updates a chain: from the
 * first rule that differs on, every position is replaced (`-R`), extra rules
 * appended or deleted at the end.
 */
function iptFelixScript(
  before: readonly ChainRules[],
  after: readonly ChainRules[],
): { script: string; lines: number } {
  const lines: string[] = [];
  after.forEach((chain, index) => {
    const old = before[index]?.rules ?? [];
    const now = chain.rules;
    let first = 0;
    while (first < old.length && first < now.length && old[first] === now[first]) first++;
    for (let i = first; i < Math.max(old.length, now.length); i++) {
      if (i < old.length && i < now.length) lines.push(`-R ${chain.chain} ${i + 1} ${now[i]}`);
      else if (i < old.length) lines.push(`-D ${chain.chain} ${now.length + 1}`);
      else lines.push(`-A ${chain.chain} ${now[i]}`);
    }
  });
  return { script: ["*nat", ...lines, "COMMIT", ""].join("\n"), lines: lines.length };
}

async function iptRestore(script: string, noflush: boolean): Promise<void> {
  await runCommand(["iptables-nft-restore", ...(noflush ? ["--noflush"] : [])], { input: script });
}

/** Throws unless the kernel's cali-fip-* chains hold exactly `chains`' rules, in order. */
async function checkIptables(chains: readonly ChainRules[], what: string): Promise<void> {
  // Not harness.must: spawnSync's 1 MiB output limit is below a 10k-rule listing.
  const saved = (await runCommand(["iptables-nft-save", "-t", "nat"])).stdout.split("\n");
  for (const { chain, rules } of chains) {
    const actual = saved.filter((line) => line.startsWith(`-A ${chain} `));
    const expected = rules.map((rule) => `-A ${chain} ${rule}`);
    const bad = expected.findIndex((line, i) => actual[i] !== line);
    if (actual.length !== expected.length || bad >= 0) {
      throw new Error(
        `${what}: ${chain} holds ${actual.length} rules, expected ${expected.length}` +
          (bad >= 0 ? `; rule ${bad + 1} is '${actual[bad]}', expected '${expected[bad]}'` : ""),
      );
    }
  }
}

// ---- buoy's table ---------------------------------------------------------------

function dropBuoyTables(): void {
  for (const family of ["ip", "ip6"]) sh(["nft", "delete", "table", family, "buoy"]);
}

/** iptables-nft's nat table: deleted whole, so no empty base chain stays hooked. */
function dropNatTable(): void {
  sh(["nft", "delete", "table", "ip", "nat"]);
}

const bindingKey = (b: Pick<NatBinding, "floating" | "pod">): string => `${b.floating}>${b.pod}`;

async function checkBuoy(expected: readonly NatBinding[], what: string): Promise<void> {
  const table = await nft.readTable(4);
  if (!table) throw new Error(`${what}: buoy's table is missing`);
  const want = new Set(expected.map(bindingKey));
  const have = new Set(table.bindings.map(bindingKey));
  const missing = [...want].filter((key) => !have.has(key));
  if (!table.intact || table.bindings.length !== want.size || missing.length > 0) {
    throw new Error(
      `${what}: buoy's table ${table.intact ? "" : "(not intact) "}holds ${table.bindings.length} bindings, expected ${want.size}` +
        (missing.length > 0 ? `; missing ${missing.slice(0, 3).join(", ")}` : ""),
    );
  }
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

// ---- part 1: programming cost ----------------------------------------------------

async function measureApply(): Promise<TimingSeries[]> {
  const series: TimingSeries[] = [];
  const add = (
    config: string,
    op: string,
    bindings: number,
    group: string,
    baseline: boolean,
    samples: number[],
    extra?: Record<string, number[]>,
  ) =>
    series.push({
      config,
      op,
      bindings,
      group,
      baseline,
      samples,
      stats: stats(samples),
      ...(extra ? { extra } : {}),
    });

  // Warm-up, not recorded: the JIT for the render code, the binaries in the page cache.
  {
    const warm = sortBindings(bindingsOf(1000));
    await nft.apply(renderNftTable({ bindings: warm }, 4));
    await nft.readTable(4);
    dropBuoyTables();
    await iptRestore(iptFullScript(iptChains(warm, "calico")), false);
    dropNatTable();
  }

  for (const size of APPLY_SIZES) {
    const unsorted = bindingsOf(size);
    // A plan's bindings come sorted by planNat (sortBindings); renderNftTable
    // sorts again, which costs little on sorted input. The sort is timed on its own.
    const buoySort: number[] = [];
    let bindings: NatBinding[] = [];
    const buoyTotal: number[] = [];
    const buoyRender: number[] = [];
    const buoyRead: number[] = [];
    const calico: number[] = [];
    const dnatOnly: number[] = [];
    for (let rep = 0; rep < APPLY_REPS; rep++) {
      progress(`[apply] ${size} bindings: repetition ${rep + 1}/${APPLY_REPS}`);
      dropBuoyTables();
      dropNatTable();
      buoySort.push(await timed(async () => void (bindings = sortBindings([...unsorted]))));
      let renderMs = 0;
      buoyTotal.push(
        await timed(async () => {
          const start = performance.now();
          const script = renderNftTable({ bindings }, 4);
          renderMs = performance.now() - start;
          await nft.apply(script);
        }),
      );
      buoyRender.push(renderMs);
      let table: NftTableState | undefined;
      buoyRead.push(await timed(async () => void (table = await nft.readTable(4))));
      if (!table?.intact || table.bindings.length !== size) {
        throw new Error(`buoy's table after applying ${size} bindings: ${table?.bindings.length}`);
      }
      dropBuoyTables();

      for (const [variant, samples] of [
        ["calico", calico],
        ["dnat-only", dnatOnly],
      ] as const) {
        let chains: ChainRules[] = [];
        samples.push(
          await timed(async () => {
            chains = iptChains(unsorted, variant);
            await iptRestore(iptFullScript(chains), false);
          }),
        );
        if (rep === 0) await checkIptables(chains, `${variant} full load of ${size}`);
        dropNatTable();
      }
    }
    const group = `apply-${size}`;
    add(BUOY, "apply from empty", size, group, false, buoyTotal);
    add(BUOY, "  of which render (JS)", size, "", false, buoyRender);
    add(BUOY, "planNat's sort (sortBindings)", size, "", false, buoySort);
    add(BUOY, "read back (nft -j + parse)", size, "", false, buoyRead);
    add(CALICO, "apply from empty", size, group, true, calico);
    add(DNAT_ONLY, "apply from empty", size, group, false, dnatOnly);
    progress(`[apply] ${size} bindings done`, true);
  }

  // One change at CHANGE_AT bindings, each kind from its own full load.
  const group = `change-${CHANGE_AT}`;
  const start = bindingsOf(CHANGE_AT);
  let firstNew = Math.max(...APPLY_SIZES);
  const reps = (label: string) => (rep: number) =>
    progress(`[change] ${label}: ${rep + 1}/${CHANGE_REPS}`);

  {
    // buoy: the element batch alone.
    dropBuoyTables();
    dropNatTable();
    const state = [...start];
    await nft.apply(renderNftTable({ bindings: state }, 4));
    const change = changer(1, firstNew);
    const samples: number[] = [];
    for (let rep = -1; rep < CHANGE_REPS; rep++) {
      reps("buoy element change")(Math.max(rep, 0));
      const { added, removed } = change(state);
      const ms = await timed(() => nft.apply(renderNftElementChanges(4, [added], [removed])));
      if (rep >= 0) samples.push(ms); // rep -1 warms up
    }
    await checkBuoy(state, "buoy after element changes");
    add(BUOY, "one change (+1 -1)", CHANGE_AT, group, false, samples);
    firstNew += CHANGE_REPS + 1;

    // buoy: the same kind of change as the agent makes it (read, diff, apply).
    const ports: DataplanePorts = {
      nft,
      routes: {
        read: async () => [],
        apply: async () => [],
        readInterfaces: async () => new Set(),
      },
      conntrack: { flushDestinations: async () => [] },
    };
    await syncDataplane({ bindings: state, routes: [] }, ports); // creates the empty ip6 table
    const agentChange = changer(2, firstNew);
    const agentSamples: number[] = [];
    for (let rep = 0; rep < CHANGE_REPS; rep++) {
      reps("buoy change via syncDataplane")(rep);
      agentChange(state);
      let outcome: Awaited<ReturnType<typeof syncDataplane>> | undefined;
      agentSamples.push(
        await timed(async () => {
          outcome = await syncDataplane({ bindings: state, routes: [] }, ports);
        }),
      );
      if (outcome?.added.length !== 1 || outcome.removed.length !== 1 || outcome.replaced.length) {
        throw new Error(
          `syncDataplane did not make one element change: ${JSON.stringify(outcome)}`,
        );
      }
    }
    await checkBuoy(state, "buoy after syncDataplane changes");
    add(BUOY, "one change via syncDataplane", CHANGE_AT, group, false, agentSamples);
    firstNew += CHANGE_REPS;
    dropBuoyTables();
  }

  for (const variant of ["calico", "dnat-only"] as const) {
    const label = variant === "calico" ? CALICO : DNAT_ONLY;
    const state = [...start];
    await iptRestore(iptFullScript(iptChains(state, variant)), false);
    const change = changer(3, firstNew);
    firstNew += CHANGE_REPS + 1;
    const rewrite: number[] = [];
    for (let rep = -1; rep < CHANGE_REPS; rep++) {
      reps(`${label} whole-chain rewrite`)(Math.max(rep, 0));
      change(state);
      const ms = await timed(() => iptRestore(iptRewriteScript(iptChains(state, variant)), true));
      if (rep >= 0) rewrite.push(ms);
    }
    await checkIptables(iptChains(state, variant), `${variant} after whole-chain rewrites`);
    add(label, "one change: rewrite chain(s)", CHANGE_AT, group, variant === "calico", rewrite);

    if (variant === "calico") {
      const felix = changer(4, firstNew);
      firstNew += CHANGE_REPS;
      const samples: number[] = [];
      const rewritten: number[] = [];
      for (let rep = 0; rep < CHANGE_REPS; rep++) {
        reps(`${label} felix -R tail`)(rep);
        const before = iptChains(state, variant);
        felix(state);
        let lines = 0;
        samples.push(
          await timed(async () => {
            const script = iptFelixScript(before, iptChains(state, variant));
            lines = script.lines;
            await iptRestore(script.script, true);
          }),
        );
        rewritten.push(lines);
      }
      await checkIptables(iptChains(state, variant), "calico after felix-style updates");
      add(label, "one change: felix -R tail", CHANGE_AT, group, false, samples, {
        rulesRewritten: rewritten,
      });
    }
    dropNatTable();
  }
  progress(`[change] done at ${CHANGE_AT} bindings`, true);
  return series;
}

// ---- part 2: new-connection rate ----------------------------------------------------

interface Traffic {
  podNs: string;
  clientNs: string;
}

function setUpTraffic(targets: readonly NatBinding[]): Traffic {
  const podNs = `${prefix}-pod`;
  const clientNs = `${prefix}-cli`;
  const hostPod = ifname("hp");
  addNetns(podNs);
  liveNetns.add(podNs);
  must(["ip", "link", "add", hostPod, "type", "veth", "peer", "name", "eth0", "netns", podNs]);
  must(["ip", "link", "set", hostPod, "up"]);
  for (const pod of new Set(targets.map((t) => t.pod))) {
    must(["ip", "-n", podNs, "address", "add", `${pod}/32`, "dev", "eth0"]);
    must(["ip", "route", "replace", `${pod}/32`, "dev", hostPod]);
  }
  must(["ip", "-n", podNs, "link", "set", "eth0", "up"]);
  must(["ip", "-n", podNs, "route", "add", "169.254.1.1", "dev", "eth0", "scope", "link"]);
  must(["ip", "-n", podNs, "route", "add", "default", "via", "169.254.1.1", "dev", "eth0"]);
  addClientNetns(clientNs, {
    nodeIfname: ifname("hc"),
    node: [CLIENT_LINK.node],
    client: [CLIENT_LINK.client],
  });
  liveNetns.add(clientNs);
  return { podNs, clientNs };
}

function podRxPackets(podNs: string): number {
  const links = JSON.parse(must(["ip", "-n", podNs, "-json", "-s", "link", "show", "eth0"])) as {
    stats64?: { rx?: { packets?: number } };
  }[];
  return links[0]?.stats64?.rx?.packets ?? 0;
}

/** Spawns a process, remembers it until it exits, and collects its stdout. */
function startProcess(argv: string[], env?: NodeJS.ProcessEnv) {
  const [file, ...args] = argv as [string, ...string[]];
  const child = spawn(file, args, {
    stdio: ["ignore", "pipe", "pipe"],
    ...(env ? { env } : {}),
  });
  liveProcesses.add(child);
  const output = { stdout: "", stderr: "" };
  child.stdout?.on("data", (chunk: Buffer) => (output.stdout += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output.stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => {
      liveProcesses.delete(child);
      resolve(code);
    }),
  );
  return { child, output, exited };
}

/** Stops a process this run started, by its PID: `signal`, then SIGKILL after `graceMs`. */
async function stopProcess(
  proc: { child: ChildProcess; exited: Promise<number | null> },
  signal: NodeJS.Signals,
  graceMs = 5000,
): Promise<void> {
  const pid = proc.child.pid;
  const running = () => proc.child.exitCode === null && proc.child.signalCode === null;
  const kill = (sig: NodeJS.Signals) => {
    try {
      if (running()) process.kill(pid!, sig);
    } catch {
      // Exited in between.
    }
  };
  if (pid === undefined || !running()) return;
  kill(signal);
  const timer = setTimeout(() => kill("SIGKILL"), graceMs);
  await proc.exited;
  clearTimeout(timer);
}

async function rateRun(traffic: Traffic, dest: string): Promise<RateSample> {
  must(["conntrack", "-F"]);
  const rxBefore = podRxPackets(traffic.podNs);
  const receiver = startProcess([
    "ip",
    "netns",
    "exec",
    traffic.podNs,
    PYTHON,
    TRAFFIC,
    "recv",
    String(UDP_PORT),
  ]);
  for (let i = 0; !receiver.output.stdout.includes("ready\n"); i++) {
    if (i > 200 || receiver.child.exitCode !== null) {
      throw new Error(`receiver did not start: ${receiver.output.stderr}`);
    }
    await sleep(10);
  }
  const sender = startProcess([
    "ip",
    "netns",
    "exec",
    traffic.clientNs,
    PYTHON,
    TRAFFIC,
    "send",
    dest,
    String(UDP_PORT),
    String(RATE_SECONDS),
    String(RATE_MAX_PACKETS),
    CLIENT_LINK.firstSource,
    String(SOURCE_ADDRESSES),
  ]);
  const watchdog = setTimeout(
    () => void stopProcess(sender, "SIGKILL"),
    RATE_SECONDS * 1000 + 15_000,
  );
  const code = await sender.exited;
  clearTimeout(watchdog);
  if (code !== 0) throw new Error(`sender failed (exit ${code}): ${sender.output.stderr}`);
  const sent = JSON.parse(sender.output.stdout) as {
    sent: number;
    errors: number;
    seconds: number;
  };
  await sleep(200);
  await stopProcess(receiver, "SIGTERM");
  const { received } = JSON.parse(receiver.output.stdout.split("ready\n")[1] ?? "{}") as {
    received?: number;
  };
  if (received === undefined) throw new Error(`receiver gave no count: ${receiver.output.stderr}`);
  if (received === 0)
    throw new Error(`nothing arrived at the pod from ${sent.sent} datagrams to ${dest}`);
  const entries = sh(["conntrack", "-C"]);
  return {
    sent: sent.sent,
    errors: sent.errors,
    seconds: sent.seconds,
    received,
    podRxPackets: podRxPackets(traffic.podNs) - rxBefore,
    conntrackEntries: entries.status === 0 ? Number(entries.stdout.trim()) : -1,
    arrivalsPerSecond: received / sent.seconds,
    sentPerSecond: sent.sent / sent.seconds,
  };
}

interface RateCase {
  config: string;
  bindings: number;
  target: NatBinding;
  install(): Promise<void>;
  uninstall(): void;
}

async function measureRate(): Promise<RateSeries[]> {
  dropBuoyTables();
  dropNatTable();
  const sizes = RATE_SIZES.map((size) => {
    const bindings = bindingsOf(size);
    return { size, bindings, target: lastInChain(bindings) };
  });
  const traffic = setUpTraffic(sizes.map((s) => s.target));
  const cases: RateCase[] = [
    {
      config: NO_NAT,
      bindings: 0,
      target: { ...sizes[0]!.target, floating: sizes[0]!.target.pod },
      install: async () => {},
      uninstall: () => {},
    },
  ];
  for (const { size, bindings, target } of sizes) {
    cases.push(
      {
        config: BUOY,
        bindings: size,
        target,
        install: () => nft.apply(renderNftTable({ bindings }, 4)),
        uninstall: dropBuoyTables,
      },
      {
        config: CALICO,
        bindings: size,
        target,
        install: () => iptRestore(iptFullScript(iptChains(bindings, "calico")), false),
        uninstall: dropNatTable,
      },
      {
        config: DNAT_ONLY,
        bindings: size,
        target,
        install: () => iptRestore(iptFullScript(iptChains(bindings, "dnat-only")), false),
        uninstall: dropNatTable,
      },
    );
  }
  const runs = new Map<RateCase, RateSample[]>(cases.map((c) => [c, []]));
  // Interleaved: each repetition runs every case once, so drift hits all alike.
  for (let rep = 0; rep < RATE_REPS; rep++) {
    for (const c of cases) {
      progress(`[rate] repetition ${rep + 1}/${RATE_REPS}: ${c.config}, ${c.bindings} bindings`);
      await c.install();
      try {
        runs.get(c)!.push(await rateRun(traffic, c.target.floating));
      } finally {
        c.uninstall();
      }
    }
  }
  progress(`[rate] done: ${cases.length} cases x ${RATE_REPS} runs`, true);
  return cases.map((c) => {
    const samples = runs.get(c)!;
    return {
      config: c.config,
      bindings: c.bindings,
      target: `${c.target.floating} -> ${c.target.pod}`,
      runs: samples,
      stats: stats(samples.map((s) => s.arrivalsPerSecond)),
    };
  });
}

// ---- part 3: the agent ----------------------------------------------------------------

interface AgentResult {
  node: string;
  /** Bindings the agent should program. */
  bindings: number;
  /** Whether /metrics showed them all within AGENT_SYNC_TIMEOUT_S. */
  firstSyncDone: boolean;
  /** Spawn until /metrics showed them all, or until the wait was given up. */
  msWaited: number;
  /** Spawn until the kernel held a floating-IP route per binding (polled every 250 ms), and RSS then. */
  msToKernelProgrammed?: number;
  vmRssKiBAtKernelProgrammed?: number;
  firstReconcileSeconds?: number;
  noopReconcileSeconds?: number;
  /** From the etcd write of one more binding until /metrics counts it. */
  msChangeToProgrammed?: number;
  /** buoy_floating_ip_bindings{family="ipv4"} at the end; undefined when never set. */
  programmed?: number;
  reconciles: { ok: number; error: number };
  /** At the first sync, or when the wait was given up. */
  vmRssKiB: number;
  cpuSeconds: number;
  vmRssKiBAfterNoopReconcile?: number;
  vmHwmKiB: number;
  /** What the agent was running when the wait was given up (its child processes). */
  childrenAtTimeout?: string[];
  kernel: { nftBindings: number; routes: number };
  agentErrors: { count: number; last?: string };
}

function procStatus(pid: number): { rss: number; hwm: number } {
  const text = readFileSync(`/proc/${pid}/status`, "utf8");
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text)?.[1]);
  return { rss: field("VmRSS"), hwm: field("VmHWM") };
}

function cpuSeconds(pid: number): number {
  // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function metricValue(text: string, name: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

/**
 * Runs the agent for `node` until it has programmed `expected` bindings and made
 * one more (no-op) reconcile; then, with `addOne`, writes one more binding to
 * etcd and times until the agent has programmed it.
 */
async function runAgent(
  node: string,
  expected: number,
  addOne?: () => Promise<void>,
): Promise<AgentResult> {
  const started = performance.now();
  const agent = startProcess(
    [
      "node",
      AGENT_EXECUTABLE,
      "agent",
      "--node",
      node,
      "--floating-ips",
      "on",
      "--listen",
      "127.0.0.1:0",
      "--resync",
      String(AGENT_RESYNC_S),
    ],
    { ...process.env, ETCD_ENDPOINTS: etcd!.endpoint },
  );
  const pid = agent.child.pid!;
  const events = () =>
    agent.output.stdout
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .flatMap((line) => {
        try {
          return [JSON.parse(line) as { event?: string; address?: string; error?: string }];
        } catch {
          return []; // a line still being written
        }
      });
  try {
    let address = "";
    for (let i = 0; !address; i++) {
      address = events().find((e) => e.event === "agent.listening")?.address ?? "";
      if (address) break;
      if (i > 300 || agent.child.exitCode !== null) {
        throw new Error(`agent did not start: ${agent.output.stderr}${agent.output.stdout}`);
      }
      await sleep(50);
    }
    const metrics = async () => (await fetch(`http://${address}/metrics`)).text();
    const gauge = `buoy_floating_ip_bindings{family="ipv4"}`;
    const count = (text: string) => metricValue(text, "buoy_reconcile_duration_seconds_count") ?? 0;
    const sum = (text: string) => metricValue(text, "buoy_reconcile_duration_seconds_sum") ?? NaN;
    let text = "";
    let firstSyncDone = false;
    // The kernel side too (its floating-IP routes are written last), polled less often.
    let kernelProgrammed: { ms: number; rss: number } | undefined;
    let routesCheckedAt = 0;
    for (;;) {
      text = await metrics();
      if (expected > 0 && !kernelProgrammed && performance.now() - routesCheckedAt > 250) {
        routesCheckedAt = performance.now();
        const listing = await runCommand(["ip", "-4", "route", "show", "proto", "202"]);
        if (listing.stdout.split("\n").filter(Boolean).length >= expected) {
          kernelProgrammed = { ms: performance.now() - started, rss: procStatus(pid).rss };
        }
      }
      if (metricValue(text, gauge) === expected) {
        firstSyncDone = true;
        break;
      }
      if (performance.now() - started > AGENT_SYNC_TIMEOUT_S * 1000) break;
      progress(
        `[agent] ${node}: waiting for ${expected} bindings (${((performance.now() - started) / 1000).toFixed(0)} s)`,
      );
      await sleep(50);
    }
    const msWaited = performance.now() - started;
    const cpu = cpuSeconds(pid);
    const atSync = procStatus(pid);
    const firstSum = sum(text);
    const firstCount = count(text);
    let childrenAtTimeout: string[] | undefined;
    let noopReconcileSeconds: number | undefined;
    let afterNoop: { rss: number; hwm: number } | undefined;
    let msChangeToProgrammed: number | undefined;
    if (!firstSyncDone) {
      childrenAtTimeout = [];
      for (let sample = 0; sample < 3; sample++) {
        childrenAtTimeout.push(...childCommands(pid));
        await sleep(200);
      }
    } else {
      // One more reconcile (the resync timer) with nothing to change.
      const deadline = performance.now() + AGENT_RESYNC_S * 1000 * 3 + 60_000;
      while (performance.now() < deadline) {
        text = await metrics();
        if (count(text) > firstCount) {
          noopReconcileSeconds = sum(text) - firstSum;
          afterNoop = procStatus(pid);
          break;
        }
        await sleep(50);
      }
      // A live change right after a reconcile finished: one endpoint + claim more.
      if (addOne) {
        await addOne();
        const written = performance.now();
        while (performance.now() - written < 60_000) {
          text = await metrics();
          if (metricValue(text, gauge) === expected + 1) {
            msChangeToProgrammed = performance.now() - written;
            break;
          }
          await sleep(20);
        }
      }
    }
    const errors = events().filter((e) => e.event === "agent.error");
    const programmed = metricValue(text, gauge);
    const table = await nft.readTable(4);
    const { stdout: routeListing } = await runCommand([
      "ip",
      "-json",
      "-4",
      "route",
      "show",
      "proto",
      "202",
    ]);
    const routes = JSON.parse(routeListing || "[]") as unknown[];
    const last = errors.at(-1)?.error;
    return {
      node,
      bindings: expected,
      firstSyncDone,
      msWaited,
      ...(kernelProgrammed
        ? {
            msToKernelProgrammed: kernelProgrammed.ms,
            vmRssKiBAtKernelProgrammed: kernelProgrammed.rss,
          }
        : {}),
      ...(firstSyncDone && firstCount === 1 ? { firstReconcileSeconds: firstSum } : {}),
      ...(noopReconcileSeconds !== undefined ? { noopReconcileSeconds } : {}),
      ...(msChangeToProgrammed !== undefined ? { msChangeToProgrammed } : {}),
      ...(programmed !== undefined ? { programmed } : {}),
      reconciles: {
        ok: metricValue(text, `buoy_reconciles_total{result="ok"}`) ?? 0,
        error: metricValue(text, `buoy_reconciles_total{result="error"}`) ?? 0,
      },
      vmRssKiB: atSync.rss,
      cpuSeconds: cpu,
      ...(afterNoop ? { vmRssKiBAfterNoopReconcile: afterNoop.rss } : {}),
      vmHwmKiB: procStatus(pid).hwm,
      ...(childrenAtTimeout ? { childrenAtTimeout } : {}),
      kernel: { nftBindings: table?.bindings.length ?? 0, routes: routes.length },
      agentErrors: { count: errors.length, ...(last !== undefined ? { last } : {}) },
    };
  } finally {
    await stopProcess(agent, "SIGTERM", 10_000);
  }
}

/** The command lines of a process's children (every thread's), e.g. what the agent is waiting for. */
function childCommands(pid: number): string[] {
  const commands: string[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const children = readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").trim();
      for (const child of children ? children.split(" ") : []) {
        try {
          const command = readFileSync(`/proc/${child}/cmdline`, "utf8").split("\0").join(" ");
          if (command.trim()) commands.push(command.trim()); // empty: exited, not yet reaped
        } catch {
          // Exited in between.
        }
      }
    }
  } catch {
    // The agent exited in between.
  }
  return commands;
}

/** The endpoint and the claim of binding i on NODE_NAME, as etcd puts. */
function endpointOps(i: number, hostIf: string, createdAt: string): KvOp[] {
  const binding = bindingAt(i, hostIf);
  const containerID = `bench-${i}`;
  const endpoint: WorkloadEndpoint = {
    node: NODE_NAME,
    namespace: "bench",
    pod: `pod-${i}`,
    containerID,
    endpoint: "eth0",
    interfaceName: hostIf,
    mac: "ee:ee:ee:ee:ee:ee",
    ipNetworks: [`${binding.pod}/32`],
    ipNATs: [{ internalIP: binding.pod, externalIP: binding.floating }],
    network: "k8s-pod-network",
    createdAt,
  };
  const claim: FloatingIpClaim = {
    ip: binding.floating,
    namespace: "bench",
    pod: `pod-${i}`,
    containerID,
    node: NODE_NAME,
    internalIP: binding.pod,
    createdAt,
  };
  return [
    { put: keys.endpoint(NODE_NAME, containerID, "eth0"), value: JSON.stringify(endpoint) },
    { put: keys.claim(binding.floating), value: JSON.stringify(claim) },
  ];
}

async function measureAgent(): Promise<{ empty: AgentResult; full: AgentResult; writeMs: number }> {
  dropBuoyTables();
  dropNatTable();
  progress("[agent] starting etcd...", true);
  etcd = await startEtcd();
  const store = etcd.store;
  await createPool(store, "bench-floating", { cidr: "10.0.0.0/8", disabled: true });
  const hostIf = ifname("ag");
  must(["ip", "link", "add", hostIf, "type", "veth", "peer", "name", ifname("agp")]);
  liveLinks.add(hostIf);
  must(["ip", "link", "set", hostIf, "up"]);
  must(["ip", "link", "set", ifname("agp"), "up"]);

  // 64 endpoints and 64 claims per transaction: etcd's default --max-txn-ops is 128.
  const createdAt = new Date().toISOString();
  const writeMs = await timed(async () => {
    for (let first = 0; first < AGENT_BINDINGS; first += 64) {
      const last = Math.min(first + 64, AGENT_BINDINGS);
      const ops = Array.from({ length: last - first }, (_, k) =>
        endpointOps(first + k, hostIf, createdAt),
      ).flat();
      if (!(await store.kv.txn([], ops))) throw new Error("etcd refused a batch");
      progress(`[agent] wrote ${last}/${AGENT_BINDINGS} endpoints + claims`);
    }
  });
  progress(`[agent] wrote ${AGENT_BINDINGS} endpoints + claims in ${writeMs.toFixed(0)} ms`, true);

  progress("[agent] agent with no bindings...", true);
  const empty = await runAgent("bench-empty", 0);
  dropBuoyTables();
  progress(`[agent] agent with ${AGENT_BINDINGS} bindings...`, true);
  const full = await runAgent(NODE_NAME, AGENT_BINDINGS, async () => {
    if (!(await store.kv.txn([], endpointOps(AGENT_BINDINGS, hostIf, createdAt)))) {
      throw new Error("etcd refused the live change");
    }
  });
  const programmed = AGENT_BINDINGS + (full.msChangeToProgrammed !== undefined ? 1 : 0);
  if (
    full.firstSyncDone &&
    (full.kernel.nftBindings !== programmed || full.kernel.routes !== programmed)
  ) {
    throw new Error(`the agent left ${JSON.stringify(full.kernel)} in the kernel`);
  }
  if (!full.firstSyncDone) {
    note(
      `[agent] the agent had not programmed ${AGENT_BINDINGS} bindings after ${AGENT_SYNC_TIMEOUT_S} s ` +
        `(reconciles ok ${full.reconciles.ok}, failed ${full.reconciles.error}; last error: ${full.agentErrors.last ?? "none"}; ` +
        `running: ${full.childrenAtTimeout?.slice(0, 3).join(" | ") || "nothing"})`,
    );
  }
  dropBuoyTables();
  sh(["ip", "link", "del", hostIf]);
  liveLinks.delete(hostIf);
  progress("[agent] done", true);
  return { empty, full, writeMs };
}

// ---- report -----------------------------------------------------------------------------

function dataplaneMachine(): Record<string, unknown> {
  let conntrackMax: number | undefined;
  try {
    conntrackMax = Number(readFileSync("/proc/sys/net/netfilter/nf_conntrack_max", "utf8"));
  } catch {
    conntrackMax = undefined;
  }
  return {
    ...machineInfo({
      etcd: ["etcd", "--version"],
      nft: ["nft", "--version"],
      iptables: ["iptables-nft", "--version"],
      conntrack: ["conntrack", "--version"],
      python: [PYTHON, "--version"],
    }),
    nfConntrackMax: conntrackMax,
  };
}

/** The commit measured, and the files that differed from it (the build is of the working tree). */
function codeVersion(): { commit?: string; changedFiles: string[] } {
  const commit = sh(["git", "-C", ROOT, "rev-parse", "HEAD"]).stdout.trim() || undefined;
  const status = sh(["git", "-C", ROOT, "status", "--porcelain", "--", "src", "scripts"]).stdout;
  return {
    ...(commit ? { commit } : {}),
    changedFiles: status
      .split("\n")
      .filter(Boolean)
      .map((line) => line.slice(3)),
  };
}

function timingTable(series: readonly TimingSeries[]): string {
  const baseline = (group: string) =>
    series.find((s) => s.group === group && s.baseline)?.stats.p50;
  const rows = series.map((s) => {
    const base = s.group ? baseline(s.group) : undefined;
    return [
      s.config,
      s.op,
      String(s.bindings),
      String(s.stats.n),
      s.stats.p50.toFixed(2),
      s.stats.p95.toFixed(2),
      s.stats.mean.toFixed(2),
      s.stats.max.toFixed(2),
      base ? `${(s.stats.p50 / base).toFixed(2)}x` : "",
    ];
  });
  return formatTable(
    ["config", "op", "bindings", "n", "p50 ms", "p95 ms", "mean ms", "max ms", "vs calico p50"],
    rows,
    2,
  );
}

function rateTable(series: readonly RateSeries[]): string {
  const calico = (bindings: number) =>
    series.find((s) => s.config === CALICO && s.bindings === bindings)?.stats.p50;
  const median = (xs: number[]) => stats(xs).p50;
  const rows = series.map((s) => {
    const base = calico(s.bindings);
    return [
      s.config,
      s.bindings === 0 ? "-" : String(s.bindings),
      String(s.stats.n),
      s.stats.p50.toFixed(0),
      s.stats.min.toFixed(0),
      s.stats.max.toFixed(0),
      median(s.runs.map((r) => r.sentPerSecond)).toFixed(0),
      median(s.runs.map((r) => r.received / r.sent)).toFixed(3),
      median(s.runs.map((r) => r.conntrackEntries / r.received)).toFixed(3),
      base ? `${(s.stats.p50 / base).toFixed(2)}x` : "",
    ];
  });
  return formatTable(
    [
      "config",
      "bindings",
      "runs",
      "median pkt/s",
      "min",
      "max",
      "sent/s",
      "arrived/sent",
      "ct/arrived",
      "vs calico",
    ],
    rows,
    1,
  );
}

function agentTable(agent: { empty: AgentResult; full: AgentResult }): string {
  const mib = (kib: number | undefined) => (kib === undefined ? "-" : (kib / 1024).toFixed(1));
  const ms = (seconds: number | undefined) =>
    seconds === undefined || Number.isNaN(seconds) ? "-" : (seconds * 1000).toFixed(0);
  const row = (what: string, f: (r: AgentResult) => string) => [
    what,
    f(agent.empty),
    f(agent.full),
  ];
  return formatTable(
    [
      `agent (node ${process.env.BENCH_AGENT_BUOY ?? "dist/buoy"})`,
      `${agent.empty.bindings} bindings`,
      `${agent.full.bindings} bindings`,
    ],
    [
      row("spawn to all bindings in /metrics, ms", (r) =>
        r.firstSyncDone ? r.msWaited.toFixed(0) : `not after ${(r.msWaited / 1000).toFixed(0)} s`,
      ),
      row("spawn to all routes in the kernel, ms", (r) =>
        r.msToKernelProgrammed === undefined ? "-" : r.msToKernelProgrammed.toFixed(0),
      ),
      row("VmRSS then, MiB", (r) => mib(r.vmRssKiBAtKernelProgrammed)),
      row("first reconcile (histogram), ms", (r) => ms(r.firstReconcileSeconds)),
      row("no-op reconcile (resync), ms", (r) => ms(r.noopReconcileSeconds)),
      row("one binding added: etcd write to /metrics, ms", (r) =>
        r.msChangeToProgrammed === undefined ? "-" : r.msChangeToProgrammed.toFixed(0),
      ),
      row("reconciles ok / failed", (r) => `${r.reconciles.ok} / ${r.reconciles.error}`),
      row("bindings in /metrics, nft map, routes", (r) =>
        [r.programmed ?? "-", r.kernel.nftBindings, r.kernel.routes].join(" / "),
      ),
      row("CPU until /metrics (or gave up), s", (r) => r.cpuSeconds.toFixed(2)),
      row("VmRSS at /metrics (or gave up), MiB", (r) => mib(r.vmRssKiB)),
      row("VmRSS after no-op reconcile, MiB", (r) => mib(r.vmRssKiBAfterNoopReconcile)),
      row("VmHWM (peak RSS), MiB", (r) => mib(r.vmHwmKiB)),
    ],
    1,
  );
}

async function main(): Promise<void> {
  note(
    `bench:dataplane  prefix ${prefix}; apply ${APPLY_SIZES.join("/")} x${APPLY_REPS}, ` +
      `change at ${CHANGE_AT} x${CHANGE_REPS}, rate ${RATE_SIZES.join("/")} x${RATE_REPS} ` +
      `(${RATE_SECONDS} s or ${RATE_MAX_PACKETS} packets), agent ${AGENT_BINDINGS}`,
  );
  const started = performance.now();
  const only = (process.env.BENCH_ONLY ?? "apply,rate,agent").split(",");
  const apply = only.includes("apply") ? await measureApply() : [];
  const rate = only.includes("rate") ? await measureRate() : [];
  const agent = only.includes("agent") ? await measureAgent() : undefined;
  const totalSeconds = (performance.now() - started) / 1000;

  console.log("");
  console.log(timingTable(apply));
  console.log("");
  console.log(rateTable(rate));
  console.log("");
  if (agent) console.log(agentTable(agent));
  console.log("");
  const felix = apply.find((s) => s.op === "one change: felix -R tail")?.extra?.rulesRewritten;
  if (felix) {
    console.log(
      `felix -R tail rewrote ${stats(felix).p50.toFixed(0)} rules at the median (min ${stats(felix).min}, max ${stats(felix).max}) of ${2 * CHANGE_AT}`,
    );
  }
  for (const s of rate.filter((r) => r.config === CALICO)) {
    console.log(`rate target at ${s.bindings} bindings: ${s.target} (last rule of ${DNAT_CHAIN})`);
  }
  if (agent && !agent.full.firstSyncDone) {
    const full = agent.full;
    console.log(
      `AGENT: ${AGENT_BINDINGS} bindings NOT in /metrics after ${AGENT_SYNC_TIMEOUT_S} s; ` +
        `reconciles ok ${full.reconciles.ok}, failed ${full.reconciles.error}; last error: ${full.agentErrors.last ?? "none"}; ` +
        `running then: ${full.childrenAtTimeout?.slice(0, 2).join(" | ") || "nothing"}`,
    );
  }
  if (agent) {
    console.log(
      `etcd: ${AGENT_BINDINGS} endpoints + claims written in ${agent.writeMs.toFixed(0)} ms`,
    );
  }
  console.log(`total ${totalSeconds.toFixed(0)} s`);

  const round = (x: number) => Math.round(x * 1000) / 1000;
  const roundStats = (s: Stats) =>
    Object.fromEntries(Object.entries(s).map(([k, v]) => [k, round(v)]));
  const report = {
    benchmark: "dataplane",
    timestamp: new Date().toISOString(),
    prefix,
    totalSeconds: round(totalSeconds),
    method: {
      family: "IPv4 only",
      bindings:
        "binding i: floating IP FLOATING[i] -> pod 10.244.0.2 + i (past 10.244.255.255 into 10.245/16 for 100k); " +
        "FLOATING alternates 10.96.0.0 counting up (10.96.0.0/15) and addresses scattered over 10.0.0.0/8 " +
        "(fixed xorshift, outside 10.96.0.0/15 and 10.244.0.0/14)",
      applyReps: APPLY_REPS,
      applyTiming:
        "wall time (performance.now) from rendering the script in JS to the exit of nft / iptables-nft-restore, " +
        "both spawned by src/exec/command.ts (Bun.spawn), script on stdin; the table (buoy) or the whole ip nat table (iptables) absent before each repetition",
      readBack:
        "LinuxNft.readTable(4): `nft -j list table ip buoy` + parseNftTable, what syncDataplane does before every reconcile",
      changeReps: CHANGE_REPS,
      change:
        "one binding at a random position replaced by a new floating IP (one removal + one addition), " +
        "from a full load of the same 10k bindings; one warm-up change before the element and whole-chain series",
      rate: {
        repsPerCase: RATE_REPS,
        secondsPerRun: RATE_SECONDS,
        maxPacketsPerRun: RATE_MAX_PACKETS,
        order:
          "interleaved: every repetition runs every case once; each case's rules installed before its run and removed after",
        sender:
          "client namespace, python3 raw socket (IP_HDRINCL), UDP to the target floating IP port 7000, each datagram from a new " +
          `(source address, source port) pair: ports 1024-65535 then the next address from ${CLIENT_LINK.firstSource} (inside the client link's /24, so rp_filter passes)`,
        receiver:
          "pod namespace, python3 UDP socket counting datagrams (16 MiB receive buffer, drained on SIGTERM); pod eth0 rx packets recorded too",
        metric:
          "datagrams counted by the receiver / the sender's elapsed seconds. veth delivery is synchronous: the node's whole path (conntrack, NAT, routing) runs in the sender's syscall, so this is new connections per second one CPU pushes through the node",
        conntrack:
          "conntrack -F in the node namespace before every run; conntrack -C after it (ct/arrived = 1 means every datagram was a new entry)",
        topology:
          "client eth0 192.0.2.2/24 -- node 192.0.2.1/24; node route POD/32 dev veth -- pod eth0 POD/32, default via 169.254.1.1; no CNI, no floating-IP routes (DNAT happens before routing)",
        target:
          "the binding whose DNAT rule is last in cali-fip-dnat (Felix sorts floating IPs as strings): the worst case for a linear chain; buoy's map lookup does not depend on it",
      },
      agent: {
        command: `node ${AGENT_EXECUTABLE} agent --node NODE --floating-ips on --listen 127.0.0.1:0 --resync ${AGENT_RESYNC_S}, ETCD_ENDPOINTS set, in the node namespace`,
        data: `${AGENT_BINDINGS} workload endpoints + claims (pool 10.0.0.0/8, disabled) written in transactions of 64 + 64; every endpoint's interfaceName is one veth made for the purpose`,
        firstSync: `spawn until /metrics shows buoy_floating_ip_bindings{family="ipv4"} = N (polled every 50 ms), given up after ${AGENT_SYNC_TIMEOUT_S} s`,
        kernelProgrammed:
          "spawn until `ip -4 route show proto 202` lists N routes (polled every 250 ms while waiting for /metrics; none when /metrics came first)",
        memory:
          "/proc/PID/status VmRSS after the first sync and after the next (no-op, resync) reconcile; VmHWM",
        liveChange:
          "right after the no-op reconcile, one more endpoint + claim in one transaction; time from the transaction's answer until /metrics counts N+1 (polled every 20 ms): what a `buoy floatingip` change costs at N bindings",
        reference: "the same agent for a node with no endpoints (0 bindings)",
        stop: "SIGTERM by PID",
      },
    },
    machine: dataplaneMachine(),
    code: codeVersion(),
    configs: {
      [BUOY]:
        "renderNftTable (table ip buoy: fip_dnat map used from prerouting and output, fip_hairpin map from postrouting) applied by LinuxNft (`nft -f -`); changes by renderNftElementChanges; syncDataplane with the real LinuxNft and stubbed routes/conntrack",
      [CALICO]:
        `Felix's iptables rendering of floating IPs (felix/rules/nat.go DNATsToIptablesChains / SNATsToIptablesChains): ${DNAT_CHAIN} with '-d EXT/32 -j DNAT --to-destination INT' per floating IP (jumped to from PREROUTING and OUTPUT), ` +
        `${SNAT_CHAIN} with '-s INT/32 -d INT/32 -j SNAT --to-source EXT' per pod (from POSTROUTING), rules sorted as strings; no rule comments (Felix adds 'cali:<hash>' comments). ` +
        "Full load: iptables-nft-restore (without --noflush) of the nat table. 'rewrite chain(s)': iptables-nft-restore --noflush declaring both chains again (which flushes them) and appending every rule. " +
        "'felix -R tail': --noflush with '-R chain N rule' for every position from the first differing one on, as Felix's incremental writer does (its rule hashes chain the previous hash)",
      [DNAT_ONLY]: `as ${CALICO} without ${SNAT_CHAIN}: only the DNAT chain, jumped to from PREROUTING and OUTPUT`,
      [NO_NAT]:
        "reference for the rate: no nat table at all (no conntrack hooks), datagrams sent straight to the pod IP",
    },
    results: {
      timings: apply.map((s) => ({
        config: s.config,
        op: s.op.trim(),
        bindings: s.bindings,
        statsMs: roundStats(s.stats),
        vsCalicoP50: s.group
          ? round(
              s.stats.p50 /
                (apply.find((b) => b.group === s.group && b.baseline)?.stats.p50 ?? NaN),
            )
          : undefined,
        samplesMs: s.samples.map(round),
        ...(s.extra ? { extra: s.extra } : {}),
      })),
      newConnectionRate: rate.map((s) => ({
        config: s.config,
        bindings: s.bindings,
        target: s.target,
        arrivalsPerSecond: roundStats(s.stats),
        vsCalicoP50: round(
          s.stats.p50 /
            (rate.find((b) => b.config === CALICO && b.bindings === s.bindings)?.stats.p50 ?? NaN),
        ),
        runs: s.runs.map((r) =>
          Object.fromEntries(Object.entries(r).map(([k, v]) => [k, round(v)])),
        ),
      })),
      agent,
    },
  };
  const outDir = join(ROOT, ".bench");
  mkdirSync(outDir, { recursive: true });
  writeFileSync(
    join(outDir, "dataplane.json"),
    JSON.stringify(report, (_, v: unknown) => (Number.isNaN(v) ? null : v), 2) + "\n",
  );
  note(`wrote ${join(outDir, "dataplane.json")}`);
}

async function cleanup(): Promise<void> {
  for (const proc of [...liveProcesses]) {
    try {
      if (proc.pid !== undefined && proc.exitCode === null) process.kill(proc.pid, "SIGKILL");
    } catch {
      // Exited in between.
    }
  }
  for (const name of [...liveNetns]) {
    deleteNetns(name);
    liveNetns.delete(name);
  }
  for (const link of liveLinks) sh(["ip", "link", "del", link]);
  dropBuoyTables();
  dropNatTable();
  if (etcd) await etcd.stop();
}

try {
  await main();
} catch (error) {
  note(`bench:dataplane failed: ${(error as Error).stack ?? error}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
