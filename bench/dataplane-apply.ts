// Part 1 of bench:dataplane, programming cost: buoy's table and Calico's
// chains applied from empty at each size, read back, and one change at
// CHANGE_AT bindings (buoy's element batch and syncDataplane; Calico's
// whole-chain rewrite and Felix's -R tail); timingTable() prints the series.
import { performance } from "node:perf_hooks";
import { formatTable, progress, stats, type Stats } from "./report.js";
import { syncDataplane, type DataplanePorts } from "../src/agent/sync-dataplane.js";
import { sortBindings, type NatBinding } from "../src/dataplane/nat-plan.js";
import {
  renderNftElementChanges,
  renderNftTable,
  type NftTableState,
} from "../src/dataplane/nft-script.js";
import {
  checkIptables,
  iptChains,
  iptFelixScript,
  iptFullScript,
  iptRestore,
  iptRewriteScript,
  type ChainRules,
} from "./calico-nat-rules.js";
import {
  APPLY_REPS,
  APPLY_SIZES,
  BUOY,
  CALICO,
  CHANGE_AT,
  CHANGE_REPS,
  DNAT_ONLY,
  bindingsOf,
  changer,
  checkBuoy,
  dropBuoyTables,
  dropNatTable,
  nft,
  timed,
} from "./dataplane-run.js";

export interface TimingSeries {
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

export async function measureApply(): Promise<TimingSeries[]> {
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

export function timingTable(series: readonly TimingSeries[]): string {
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
