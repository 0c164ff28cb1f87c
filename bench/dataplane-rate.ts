// Part 2 of bench:dataplane, new-connection rate: a client namespace floods
// UDP to one floating IP from ever new (address, port) pairs through the node
// namespace to a pod namespace, for buoy's map, the Calico chains, the
// DNAT-only chain and no NAT at all; rateTable() prints the series.
import { formatTable, progress, stats, type Stats } from "./report.js";
import type { NatBinding } from "../src/dataplane/nat-plan.js";
import { renderNftTable } from "../src/dataplane/nft-script.js";
import { addClientNetns, addNetns, must, sh, sleep } from "../test/support/harness.js";
import { iptChains, iptFullScript, iptRestore, lastInChain } from "./calico-nat-rules.js";
import {
  BUOY,
  CALICO,
  CLIENT_LINK,
  DNAT_ONLY,
  NO_NAT,
  PYTHON,
  RATE_MAX_PACKETS,
  RATE_REPS,
  RATE_SECONDS,
  RATE_SIZES,
  SOURCE_ADDRESSES,
  TRAFFIC,
  UDP_PORT,
  bindingsOf,
  dropBuoyTables,
  dropNatTable,
  ifname,
  live,
  nft,
  prefix,
  startProcess,
  stopProcess,
} from "./dataplane-run.js";

export interface RateSample {
  sent: number;
  errors: number;
  seconds: number;
  received: number;
  podRxPackets: number;
  conntrackEntries: number;
  arrivalsPerSecond: number;
  sentPerSecond: number;
}

export interface RateSeries {
  config: string;
  bindings: number;
  target: string;
  runs: RateSample[];
  stats: Stats;
}

interface Traffic {
  podNs: string;
  clientNs: string;
}

function setUpTraffic(targets: readonly NatBinding[]): Traffic {
  const podNs = `${prefix}-pod`;
  const clientNs = `${prefix}-cli`;
  const hostPod = ifname("hp");
  addNetns(podNs);
  live.netns.add(podNs);
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
  live.netns.add(clientNs);
  return { podNs, clientNs };
}

function podRxPackets(podNs: string): number {
  const links = JSON.parse(must(["ip", "-n", podNs, "-json", "-s", "link", "show", "eth0"])) as {
    stats64?: { rx?: { packets?: number } };
  }[];
  return links[0]?.stats64?.rx?.packets ?? 0;
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

export async function measureRate(): Promise<RateSeries[]> {
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

export function rateTable(series: readonly RateSeries[]): string {
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
