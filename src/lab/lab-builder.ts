// The steps of `buoy lab up`, in order: namespaces, the fabric bridge, etcd
// and the datastore, BIRD on the nodes and the external router (or static
// routes there), the agents, then the BGP sessions. Each step reports when it
// is done; every process it starts is recorded by the Lab (startProcess).
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runCommand } from "../exec/command.js";
import { renderBirdNodeConfig, renderBirdRouterConfig } from "../dataplane/bird-config.js";
import type { BgpSession } from "../dataplane/shell/bird.js";
import { renderLabManifest } from "./lab-manifest.js";
import type { LabPaths } from "./lab-paths.js";
import { applyIpBatch, createNetns, isAlive, readLogTail, runInNetns, sleep } from "./lab-shell.js";
import type { LabFeatures, LabProcess } from "./lab-state.js";
import type { Lab } from "./lab.js";
import {
  AGENT_LISTEN,
  CONTROLLER_LISTEN,
  infrastructureNetns,
  LabError,
  NODE_AS_NUMBER,
  type LabRouting,
} from "./topology.js";

const READY_TIMEOUT_MS = 30_000;
const BGP_TIMEOUT_MS = 45_000;

export interface LabUpOptions {
  /** Default `lab` + 4 random hex digits. */
  prefix?: string;
  /** Default 2. */
  nodes?: number;
  /** Default bgp. */
  routing?: LabRouting;
  /** Dual-stack pods (IPv6 pools and sessions too). Default off. */
  ipv6?: boolean;
  /** The agents' --resync, default 5. */
  resyncSeconds?: number;
  /** The agents' --status-ttl: how long a dead node holds its floating IPs (default 5). */
  statusTtlSeconds?: number;
  /** The agents' --claim-gc-grace: how long an orphaned claim lives (default 10). */
  claimGcGraceSeconds?: number;
  /** Where state directories live, default /run/buoy-lab. */
  stateRoot?: string;
  /** Called once per step when it is done. */
  onStep?: (step: LabStep) => void;
  /** Aborting stops `up` at the next step and removes what it built. */
  signal?: AbortSignal;
}

export interface LabStep {
  /** What was started or set up, and where. */
  what: string;
  /** Its state once ready ("healthy at …", "ready"), or a note. */
  detail: string;
  /** How long the step took. */
  ms: number;
  /** Since `up` began. */
  totalMs: number;
  /** A note rather than a step: something skipped or degraded. */
  note?: boolean;
}

/** The steps of `up`, in order; each reports when done. */
export class LabBuilder {
  readonly #lab: Lab;
  readonly #options: LabUpOptions;
  readonly #started: number;

  constructor(lab: Lab, options: LabUpOptions, started: number) {
    this.#lab = lab;
    this.#options = options;
    this.#started = started;
  }

  async build(): Promise<void> {
    const lab = this.#lab;
    const { topology } = lab;
    await this.#step(`namespaces ${infrastructureNetns(topology).join(", ")}`, async () => {
      await this.#createNamespaces();
      return "created, forwarding on in nodes and router";
    });
    await this.#step(`fabric bridge ${topology.fabric.bridge} in ${topology.fabric.netns}`, () =>
      this.#createFabric(),
    );
    const features = await detectFeatures(lab.paths);
    await lab.updateState((state) => (state.features = features));
    await this.#step(`etcd in ${topology.fabric.netns}`, () => this.#startEtcd());
    await this.#step("datastore", () => this.#applyManifest(features));
    for (const node of topology.nodes) {
      await mkdir(join(lab.stateDir, node.name), { recursive: true });
      await writeFile(lab.conflistPath(node), JSON.stringify(lab.conflist(node), null, 2) + "\n");
    }
    if (topology.routing === "bgp") {
      await mkdir(join(lab.stateDir, "tor"), { recursive: true });
      await this.#step(`BIRD on ${topology.nodes.map((node) => node.name).join(", ")}`, () =>
        this.#startNodeBirds(),
      );
      await this.#step(`BIRD on the external router (${topology.external.netns})`, () =>
        this.#startRouterBird(),
      );
    } else {
      await this.#step(`static routes on the external router (${topology.external.netns})`, () =>
        this.#routeStatically(),
      );
    }
    if (!features.agentRouting) {
      this.#note(
        "this buoy's agent has no --routing yet: agents run without it; pods on other nodes are not reachable",
      );
    }
    await this.#step(`agents on ${topology.nodes.map((node) => node.name).join(", ")}`, () =>
      this.#startAgents(features),
    );
    await this.#step(`FloatingIP controller in ${topology.fabric.netns}`, () =>
      this.#startController(),
    );
    if (topology.routing === "bgp") {
      if (features.agentRouting && features.bgpPeers) {
        await this.#step("BGP sessions", () => this.#waitForBgp());
      } else {
        this.#note(
          "this buoy has no BGPPeer kind or agent --routing yet: not waiting for BGP sessions",
        );
      }
    }
    await lab.updateState((state) => (state.phase = "up"));
  }

  async #step(what: string, run: () => Promise<string>): Promise<void> {
    this.#options.signal?.throwIfAborted();
    const begun = Date.now();
    let detail: string;
    try {
      detail = await run();
    } catch (error) {
      if (this.#options.signal?.aborted) throw error;
      throw new LabError(`${what} failed`, { cause: error });
    }
    this.#options.onStep?.({
      what,
      detail,
      ms: Date.now() - begun,
      totalMs: Date.now() - this.#started,
    });
  }

  #note(detail: string): void {
    this.#options.onStep?.({
      what: "note",
      detail,
      ms: 0,
      totalMs: Date.now() - this.#started,
      note: true,
    });
  }

  async #createNamespaces(): Promise<void> {
    const { topology } = this.#lab;
    const noDad = ["net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"];
    const router = [
      "net.ipv4.ip_forward=1",
      "net.ipv6.conf.all.forwarding=1",
      "net.ipv4.conf.all.rp_filter=0",
      "net.ipv4.conf.default.rp_filter=0",
      ...noDad,
    ];
    const sysctls = new Map<string, string[]>([
      [topology.fabric.netns, noDad],
      [topology.external.netns, router],
      ...topology.nodes.map((node): [string, string[]] => [node.netns, router]),
    ]);
    await Promise.all(
      [...sysctls].map(async ([netns, settings]) => {
        await createNetns(netns);
        await runInNetns(netns, ["sysctl", "-qw", ...settings]);
      }),
    );
  }

  async #createFabric(): Promise<string> {
    const { topology } = this.#lab;
    const { fabric, external } = topology;
    const v4 = (address: string) => `${address}/24`;
    const v6 = (address: string) => `${address}/64`;
    const ports = [
      ...topology.nodes.map((node) => ({
        port: node.fabricPort,
        netns: node.netns,
        ifname: node.ifname,
      })),
      { port: external.fabricPort, netns: external.netns, ifname: external.ifname },
    ];
    await applyIpBatch(fabric.netns, [
      `link add ${fabric.bridge} type bridge mcast_snooping 0`,
      `address add ${v4(fabric.ipv4)} dev ${fabric.bridge}`,
      `address add ${v6(fabric.ipv6)} dev ${fabric.bridge} nodad`,
      `link set ${fabric.bridge} up`,
      ...ports.flatMap(({ port, netns, ifname }) => [
        `link add ${port} type veth peer name ${ifname} netns ${netns}`,
        `link set ${port} master ${fabric.bridge} up`,
      ]),
    ]);
    await Promise.all([
      ...topology.nodes.map((node) =>
        applyIpBatch(node.netns, [
          `address add ${v4(node.ipv4)} dev ${node.ifname}`,
          `address add ${v6(node.ipv6)} dev ${node.ifname} nodad`,
          `link set ${node.ifname} up`,
          `route add default via ${external.ipv4}`,
          `route add default via ${external.ipv6}`,
        ]),
      ),
      applyIpBatch(external.netns, [
        `address add ${v4(external.ipv4)} dev ${external.ifname}`,
        `address add ${v6(external.ipv6)} dev ${external.ifname} nodad`,
        `link set ${external.ifname} up`,
      ]),
    ]);
    return `${fabric.ipv4}/24 and ${fabric.ipv6}/64; ${ports.length} ports`;
  }

  async #startEtcd(): Promise<string> {
    const lab = this.#lab;
    const { etcd, fabric } = lab.topology;
    const started = await lab.startProcess("etcd", fabric.netns, [
      lab.paths.etcd,
      "--name",
      lab.prefix,
      "--data-dir",
      join(lab.stateDir, "etcd"),
      "--listen-client-urls",
      etcd.clientUrls.join(","),
      "--advertise-client-urls",
      etcd.endpoint,
      "--listen-peer-urls",
      etcd.peerUrl,
      "--initial-advertise-peer-urls",
      etcd.peerUrl,
      "--initial-cluster",
      `${lab.prefix}=${etcd.peerUrl}`,
      "--logger",
      "zap",
      "--log-level",
      "warn",
    ]);
    await this.#waitFor(`etcd at ${etcd.endpoint}`, started, () =>
      lab.httpOk(fabric.netns, `${etcd.endpoint}/health`),
    );
    return `healthy at ${etcd.endpoint}`;
  }

  async #applyManifest(features: LabFeatures): Promise<string> {
    const lab = this.#lab;
    const manifest = renderLabManifest(lab.topology, { bgpPeers: features.bgpPeers });
    await writeFile(join(lab.stateDir, "datastore.yaml"), manifest);
    const applied = await lab.buoy(["apply", "-f", "-"], manifest);
    const skipped =
      lab.topology.routing === "bgp" && !features.bgpPeers
        ? " (no BGPPeer: not supported yet)"
        : "";
    return `${applied.trim()}: pools ${lab.topology.pools.map((pool) => pool.cidr).join(", ")}${skipped}`;
  }

  async #startNodeBirds(): Promise<string> {
    const lab = this.#lab;
    await Promise.all(
      lab.topology.nodes.map(async (node) => {
        const dir = join(lab.stateDir, node.name);
        // What the agent writes for a node without peers or prefixes, until it
        // writes its own: the same protocol names, so its reconfiguration keeps
        // the device protocol (a new one would see no interfaces until its next
        // scan, a minute later).
        await writeFile(
          join(dir, "bird.conf"),
          renderBirdNodeConfig({
            routerId: node.ipv4,
            asNumber: NODE_AS_NUMBER,
            neighbors: [],
            exports: [],
          }),
        );
        await this.#startBird(`bird-${node.name}`, node.netns, dir);
        // Withdraws the node's floating IPs from BIRD when its agent dies (ADR 0009).
        const watchdog = join(dir, "buoy-agent.sock");
        const started = await lab.startProcess(`bird-watchdog-${node.name}`, node.netns, [
          lab.paths.node,
          lab.paths.buoy,
          "bird-watchdog",
          "--listen",
          watchdog,
          "--bird-config",
          join(dir, "bird.conf"),
          "--bird-socket",
          join(dir, "bird.ctl"),
          "--birdc",
          lab.paths.birdc,
        ]);
        await this.#waitFor(`bird-watchdog-${node.name}`, started, async () =>
          existsSync(watchdog),
        );
      }),
    );
    return "running, with their watchdogs (the agents write their configs)";
  }

  async #startRouterBird(): Promise<string> {
    const lab = this.#lab;
    const { topology } = lab;
    const dir = join(lab.stateDir, "tor");
    const neighbors = topology.nodes.flatMap((node) => [
      { name: node.name, address: node.ipv4, asNumber: NODE_AS_NUMBER },
      ...(topology.ipv6
        ? [{ name: `${node.name}-v6`, address: node.ipv6, asNumber: NODE_AS_NUMBER }]
        : []),
    ]);
    await writeFile(
      join(dir, "bird.conf"),
      renderBirdRouterConfig({
        routerId: topology.external.ipv4,
        asNumber: topology.external.asNumber,
        neighbors,
      }),
    );
    await this.#startBird("bird-tor", topology.external.netns, dir);
    return `AS ${topology.external.asNumber}, ${neighbors.length} session(s) configured`;
  }

  async #startBird(name: string, netns: string, dir: string): Promise<void> {
    const lab = this.#lab;
    const socket = join(dir, "bird.ctl");
    const started = await lab.startProcess(name, netns, [
      lab.paths.bird,
      "-f",
      "-c",
      join(dir, "bird.conf"),
      "-s",
      socket,
    ]);
    await this.#waitFor(name, started, async () => {
      try {
        await runCommand([lab.paths.birdc, "-s", socket, "show", "status"], { timeoutMs: 2000 });
        return true;
      } catch {
        return false;
      }
    });
  }

  async #routeStatically(): Promise<string> {
    const { topology } = this.#lab;
    const lines = topology.pools.map((pool) => {
      const v6 = pool.cidr.includes(":");
      const hops = topology.nodes.map((node) => `nexthop via ${v6 ? node.ipv6 : node.ipv4}`);
      return `route replace ${pool.cidr} ${hops.join(" ")}`;
    });
    await applyIpBatch(topology.external.netns, lines);
    return `${topology.pools.map((pool) => pool.cidr).join(", ")} via ${topology.nodes.length} node(s) (ECMP)`;
  }

  async #startAgents(features: LabFeatures): Promise<string> {
    const lab = this.#lab;
    const { topology } = lab;
    const resync = String(this.#options.resyncSeconds ?? 5);
    await Promise.all(
      topology.nodes.map(async (node) => {
        const routing = features.agentRouting ? ["--routing", topology.routing] : [];
        const bird =
          features.agentRouting && topology.routing === "bgp"
            ? [
                "--bird-config",
                join(lab.stateDir, node.name, "bird.conf"),
                "--bird-socket",
                join(lab.stateDir, node.name, "bird.ctl"),
                "--bird-watchdog",
                join(lab.stateDir, node.name, "buoy-agent.sock"),
              ]
            : [];
        const started = await lab.startProcess(`agent-${node.name}`, node.netns, [
          lab.paths.node,
          lab.paths.buoy,
          "--etcd-endpoints",
          topology.etcd.endpoint,
          "agent",
          "--node",
          node.name,
          "--listen",
          AGENT_LISTEN,
          "--cni-conf",
          lab.conflistPath(node),
          "--resync",
          resync,
          "--cni-socket",
          lab.agentSocketPath(node),
          ...(features.agentRouting
            ? [
                "--status-ttl",
                String(this.#options.statusTtlSeconds ?? 5),
                "--claim-gc-grace",
                String(this.#options.claimGcGraceSeconds ?? 10),
              ]
            : []),
          ...routing,
          ...bird,
        ]);
        await this.#waitFor(`agent on ${node.name}`, started, () =>
          lab.httpOk(node.netns, `http://${AGENT_LISTEN}/readyz`),
        );
      }),
    );
    return `ready (/readyz on ${AGENT_LISTEN} in each node)`;
  }

  /** `buoy controller` on etcd (issue 15), beside etcd: FloatingIPs follow Ready pods. */
  async #startController(): Promise<string> {
    const lab = this.#lab;
    const { topology } = lab;
    const started = await lab.startProcess("controller", topology.fabric.netns, [
      "/usr/bin/env",
      "DATASTORE_TYPE=etcdv3",
      lab.paths.node,
      lab.paths.buoy,
      "--etcd-endpoints",
      topology.etcd.endpoint,
      "controller",
      "--listen",
      CONTROLLER_LISTEN,
    ]);
    await this.#waitFor("the FloatingIP controller", started, () =>
      lab.httpOk(topology.fabric.netns, `http://${CONTROLLER_LISTEN}/readyz`),
    );
    return `ready (/readyz and /metrics on ${CONTROLLER_LISTEN})`;
  }

  /**
   * Until the router has a session per node and family and every session of
   * every BIRD (router and nodes: the agents' peers) is Established.
   */
  async #waitForBgp(): Promise<string> {
    const lab = this.#lab;
    const places = ["ext", ...lab.topology.nodes.map((node) => node.name)];
    const expectedAtRouter = lab.topology.nodes.length * (lab.topology.ipv6 ? 2 : 1);
    const deadline = Date.now() + BGP_TIMEOUT_MS;
    for (;;) {
      const byPlace = await Promise.all(
        places.map(async (place) => ({
          place,
          sessions: await lab.bgpSessions(place).catch((): BgpSession[] => []),
        })),
      );
      const all = byPlace.flatMap(({ place, sessions }) =>
        sessions.map((session) => ({ place, ...session })),
      );
      const waiting = all.filter((session) => !session.info.startsWith("Established"));
      const atRouter = byPlace[0]?.sessions.length ?? 0;
      if (waiting.length === 0 && atRouter >= expectedAtRouter) {
        return `${all.length} Established (${atRouter} at the router)`;
      }
      const dead = ["bird-tor", ...lab.topology.nodes.map((node) => `bird-${node.name}`)]
        .map((name) => lab.findProcess(name))
        .find((bird) => bird !== undefined && !isAlive(bird.pid));
      if (dead || Date.now() > deadline) {
        const states = waiting.map((session) => `${session.place} ${session.name} ${session.info}`);
        throw new LabError(
          (dead
            ? `${dead.name} exited`
            : `not all BGP sessions Established after ${BGP_TIMEOUT_MS} ms`) +
            ` (router: ${atRouter} of ${expectedAtRouter} sessions; waiting: ${states.join(", ") || "none"})` +
            (dead ? `:\n${indent(await readLogTail(dead.log))}` : ""),
        );
      }
      await sleep(200, this.#options.signal);
    }
  }

  /** Polls until ready; fails with the process's log tail if it exits or the time runs out. */
  async #waitFor(what: string, started: LabProcess, ready: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (await ready()) return;
      const exited = !isAlive(started.pid);
      if (exited || Date.now() > deadline) {
        const tail = await readLogTail(started.log);
        throw new LabError(
          `${what} ${exited ? "exited" : `not ready after ${READY_TIMEOUT_MS} ms`} (log ${started.log})` +
            (tail ? `:\n${indent(tail)}` : ""),
        );
      }
      await sleep(100, this.#options.signal);
    }
  }
}

/** What the buoy build in use supports: the routing work lands in steps. */
async function detectFeatures(paths: LabPaths): Promise<LabFeatures> {
  const help = async (command: string) =>
    (await runCommand([paths.node, paths.buoy, command, "--help"])).stdout;
  const [agent, apply] = await Promise.all([help("agent"), help("apply")]);
  return { agentRouting: agent.includes("--routing"), bgpPeers: apply.includes("BGPPeer") };
}

function indent(text: string): string {
  return text.replace(/^/gm, "    ");
}
