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
// This file runs the parts and writes the report: part 1 is in
// dataplane-apply.ts, part 2 in dataplane-rate.ts, part 3 in
// dataplane-agent.ts; the Calico rules they compare against are in
// calico-nat-rules.ts, what else they share (knobs, bindings, this run's
// namespaces and processes, cleanup) in dataplane-run.ts.
//
// Prints tables and writes .bench/dataplane.json. When the agent has not
// programmed every binding within BENCH_AGENT_TIMEOUT_S (45 s), that is
// reported with what it was doing, and the run still completes.
//
// Knobs (environment): BENCH_APPLY_REPS (3), BENCH_CHANGE_REPS (10),
// BENCH_RATE_REPS (5), BENCH_RATE_SECONDS (1.5), BENCH_AGENT_BINDINGS (10000),
// BENCH_AGENT_TIMEOUT_S (45), BENCH_AGENT_BUOY (another build's dist/buoy to
// run as the agent), BENCH_ONLY (a comma list of apply, rate, agent).
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { machineInfo, note, stats, type Stats } from "./report.js";
import { ROOT, sh } from "../test/support/harness.js";
import { DNAT_CHAIN, SNAT_CHAIN } from "./calico-nat-rules.js";
import { agentTable, measureAgent } from "./dataplane-agent.js";
import { measureApply, timingTable } from "./dataplane-apply.js";
import { measureRate, rateTable } from "./dataplane-rate.js";
import {
  AGENT_BINDINGS,
  AGENT_EXECUTABLE,
  AGENT_RESYNC_S,
  AGENT_SYNC_TIMEOUT_S,
  APPLY_REPS,
  APPLY_SIZES,
  BUOY,
  CALICO,
  CHANGE_AT,
  CHANGE_REPS,
  CLIENT_LINK,
  DNAT_ONLY,
  NO_NAT,
  PYTHON,
  RATE_MAX_PACKETS,
  RATE_REPS,
  RATE_SECONDS,
  RATE_SIZES,
  cleanup,
  prefix,
} from "./dataplane-run.js";

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

try {
  await main();
} catch (error) {
  note(`bench:dataplane failed: ${(error as Error).stack ?? error}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
