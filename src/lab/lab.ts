// `buoy lab`: a virtual cluster of network namespaces on one machine. labUp()
// builds what topology.ts describes (fabric, external router, nodes with
// etcd, BIRD and the agent), Lab adds and deletes pods the way a container
// runtime does and sends probes, labDown() removes everything of a prefix,
// also what a crashed `up` left behind. Nothing is ever added to the namespace
// this runs in: every address, route, sysctl and process is inside one of the
// lab's namespaces, and the lab reaches its own etcd and agents by running
// its helpers inside them (`ip netns exec`).
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CommandError, runCommand, type CommandOutput, type RunOptions } from "../exec/command.js";
import { renderBirdNodeConfig, renderBirdRouterConfig } from "../dataplane/bird-config.js";
import { LinuxBird, type BgpSession } from "../dataplane/shell/bird.js";
import { addNetworkList, deleteNetworkList, resultAddresses, type CniCall } from "./cni-runtime.js";
import { renderLabManifest } from "./lab-manifest.js";
import { findLabPaths, findMissing, type LabPaths } from "./lab-paths.js";
import {
  applyIpBatch,
  carriesMarker,
  createNetns,
  deleteNetns,
  isAlive,
  listNetns,
  netnsPids,
  readLogTail,
  runInNetns,
  sleep,
  startDetachedInNetns,
  stopPids,
} from "./lab-shell.js";
import {
  createStateDir,
  labStateDir,
  LAB_STATE_ROOT,
  listLabPrefixes,
  readLabState,
  readPidFiles,
  removeStateDir,
  writeLabState,
  withStateLock,
  writePidFile,
  type LabFeatures,
  type LabPod,
  type LabProcess,
  type LabState,
} from "./lab-state.js";
import { parsePingSamples, summarizePing, type PingReport } from "./ping-report.js";
import { parseProbeResult, type ProbeProtocol, type ProbeResult } from "./probe-result.js";
import { renderLabConflist, type Conflist } from "./seed-conflist.js";
import {
  AGENT_LISTEN,
  findNode,
  infrastructureNetns,
  isLabNetns,
  LabError,
  NODE_AS_NUMBER,
  planLabTopology,
  podNetnsName,
  randomLabPrefix,
  validateLabPrefix,
  validatePodName,
  validatePodNamespace,
  type LabNodePlan,
  type LabRouting,
  type LabTopology,
} from "./topology.js";

export { LabError } from "./topology.js";
export type { LabRouting, LabTopology, LabNodePlan } from "./topology.js";
export type { LabPod, LabProcess, LabState, LabFeatures } from "./lab-state.js";
export type { PingReport } from "./ping-report.js";
export type { ProbeProtocol, ProbeResult } from "./probe-result.js";

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

export interface AddPodOptions {
  /** Floating IPs for the pod annotation cni.projectcalico.org/floatingIPs. */
  floatingIps?: string[];
  /** Kubernetes namespace, default "default". */
  namespace?: string;
  /** Opt in to egress: the pod's connections leave from its floating IPs. */
  egress?: boolean;
  /** Start the probe responder in the pod (default true). */
  responder?: boolean;
}

export interface ProbeOptions {
  /** Give up after this long (default 2000 ms). */
  timeoutMs?: number;
}

export interface PingOptions {
  /** How long to ping (default 5000 ms). */
  durationMs?: number;
  /** Between echo requests (default 10 ms: 100 Hz). */
  intervalMs?: number;
}

const READY_TIMEOUT_MS = 30_000;
const BGP_TIMEOUT_MS = 45_000;
const SEEN_LOG = "icmp-seen.log";
const CNI_IFNAME = "eth0";

/** Builds a lab and returns it running; removes everything it built if a step fails or is aborted. */
export async function labUp(options: LabUpOptions = {}): Promise<Lab> {
  const started = Date.now();
  const prefix = validateLabPrefix(options.prefix ?? randomLabPrefix(randomBytes(2)));
  const topology = planLabTopology({
    prefix,
    nodes: options.nodes ?? 2,
    routing: options.routing ?? "bgp",
    ipv6: options.ipv6 ?? false,
  });
  requireRoot("buoy lab up");
  const paths = findLabPaths();
  const missing = findMissing(paths, topology.routing === "bgp");
  if (missing.length > 0) throw new LabError(`the lab needs ${missing.join(", ")}`);
  const stateRoot = options.stateRoot ?? LAB_STATE_ROOT;
  const dir = labStateDir(prefix, stateRoot);
  const leftovers = (await listNetns()).filter((netns) => isLabNetns(prefix, netns));
  if (leftovers.length > 0) {
    throw new LabError(
      `namespaces of lab ${prefix} exist (${leftovers.join(", ")}): run 'buoy lab down --prefix ${prefix}'`,
    );
  }
  try {
    await createStateDir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") {
      throw new LabError(`lab ${prefix} exists (${dir}): run 'buoy lab down --prefix ${prefix}'`);
    }
    throw new LabError(`cannot create the state directory ${dir}`, { cause: error });
  }
  const state: LabState = {
    version: 1,
    options: {
      prefix,
      nodes: topology.nodes.length,
      routing: topology.routing,
      ipv6: topology.ipv6,
    },
    repo: paths.repo,
    createdAt: new Date().toISOString(),
    phase: "starting",
    features: { agentRouting: false, bgpPeers: false },
    processes: [],
    pods: [],
  };
  const lab = new Lab(topology, dir, paths, state, stateRoot);
  await lab.saveState();
  const builder = new LabBuilder(lab, options, started);
  try {
    await builder.build();
    return lab;
  } catch (error) {
    await labDown(prefix, { stateRoot }).catch(() => {});
    if (options.signal?.aborted) {
      throw new LabError(`interrupted: lab ${prefix} was removed`, { cause: error });
    }
    throw new LabError(`lab ${prefix} did not come up and was removed`, { cause: error });
  }
}

/** The lab with this prefix, as its state file describes it. */
export async function openLab(prefix: string, stateRoot = LAB_STATE_ROOT): Promise<Lab> {
  validateLabPrefix(prefix);
  const dir = labStateDir(prefix, stateRoot);
  const state = await readLabState(dir);
  if (!state) {
    const labs = await listLabs(stateRoot);
    throw new LabError(
      `no lab ${prefix} on this machine (nothing in ${dir}): ` +
        (labs.length > 0
          ? `the labs are ${labs.join(", ")}`
          : "there are none, 'buoy lab up' makes one"),
    );
  }
  return new Lab(planLabTopology(state.options), dir, findLabPaths(), state, stateRoot);
}

/** Prefixes of the labs on this machine (those with a state directory). */
export async function listLabs(stateRoot = LAB_STATE_ROOT): Promise<string[]> {
  return (await listLabPrefixes(stateRoot)).filter((name) => {
    try {
      validateLabPrefix(name);
      return true;
    } catch {
      return false;
    }
  });
}

export interface LabDownReport {
  prefix: string;
  namespaces: string[];
  /** Processes stopped. */
  processes: number;
  stateDir: string;
  stateDirExisted: boolean;
}

/**
 * Removes everything of the lab with this prefix, with or without its state:
 * stops the processes it started (PIDs from its pid files that still carry
 * its marker, and every process inside its namespaces), deletes every
 * namespace named `<prefix>-*`, then the state directory.
 */
export async function labDown(
  prefix: string,
  options: { stateRoot?: string } = {},
): Promise<LabDownReport> {
  validateLabPrefix(prefix);
  const dir = labStateDir(prefix, options.stateRoot ?? LAB_STATE_ROOT);
  const stateDirExisted = existsSync(dir);
  const namespaces = (await listNetns()).filter((netns) => isLabNetns(prefix, netns));
  const fromFiles: number[] = [];
  for (const pid of await readPidFiles(dir)) {
    if (await carriesMarker(pid, prefix)) fromFiles.push(pid);
  }
  const inNamespaces = (await Promise.all(namespaces.map(netnsPids))).flat();
  const pids = [...new Set([...fromFiles, ...inNamespaces])].filter(
    (pid) => pid !== process.pid && pid !== process.ppid,
  );
  await stopPids(pids);
  // Anything a dying process started meanwhile.
  const late = (await Promise.all(namespaces.map(netnsPids))).flat();
  await stopPids(late.filter((pid) => pid !== process.pid && pid !== process.ppid));
  await Promise.all(namespaces.map(deleteNetns));
  await removeStateDir(dir);
  return { prefix, namespaces, processes: pids.length, stateDir: dir, stateDirExisted };
}

/** A running lab: its topology, its state, and what tests and the demo do with it. */
export class Lab {
  #saving: Promise<void> = Promise.resolve();

  /** @internal use labUp() or openLab() */
  constructor(
    readonly topology: LabTopology,
    readonly stateDir: string,
    readonly paths: LabPaths,
    readonly state: LabState,
    readonly stateRoot: string,
  ) {}

  get prefix(): string {
    return this.topology.prefix;
  }

  get pods(): readonly LabPod[] {
    return this.state.pods;
  }

  node(node: number | string): LabNodePlan {
    return findNode(this.topology, node);
  }

  pod(name: string): LabPod {
    const pod = this.state.pods.find((candidate) => candidate.name === name);
    if (!pod) throw new LabError(`lab ${this.prefix} has no pod ${name}`);
    return pod;
  }

  /**
   * A lab namespace by a short name: `ext` (the external router), `fab` (the
   * fabric and etcd), `node-N`, a pod's name; or a namespace name of the lab.
   */
  netns(place: string): string {
    if (place === "ext" || place === "external") return this.topology.external.netns;
    if (place === "fab" || place === "fabric") return this.topology.fabric.netns;
    if (/^node-\d+$/.test(place)) return this.node(place).netns;
    if (isLabNetns(this.prefix, place)) return place;
    const pod = this.state.pods.find((candidate) => candidate.name === place);
    if (pod) return pod.netns;
    const pods = this.state.pods.map((candidate) => candidate.name);
    throw new LabError(
      `lab ${this.prefix} has no place '${place}': give ext, fab, ` +
        `${this.topology.nodes.map((node) => node.name).join(", ")}` +
        (pods.length > 0 ? ` or a pod (${pods.join(", ")})` : " (it has no pods)"),
    );
  }

  /** Runs argv inside a lab namespace (see netns()); throws CommandError when it fails. */
  exec(place: string, argv: readonly string[], options: RunOptions = {}): Promise<CommandOutput> {
    return runInNetns(this.netns(place), argv, options);
  }

  /** The buoy CLI against the lab's etcd, run inside the fabric namespace; resolves to stdout. */
  async buoy(argv: readonly string[], input?: string): Promise<string> {
    const { stdout } = await runInNetns(
      this.topology.fabric.netns,
      [this.paths.node, this.paths.buoy, "--etcd-endpoints", this.topology.etcd.endpoint, ...argv],
      input === undefined ? {} : { input },
    );
    return stdout;
  }

  /**
   * Adds a pod on a node as a container runtime does: creates its namespace,
   * runs the node's conflist (calico, then portmap) inside the node's
   * namespace with the pod annotations in runtimeConfig, then starts the
   * probe responder in it. Resolves to the pod with its addresses; a refused
   * ADD leaves no namespace behind and throws with the plugin's message.
   *
   * The pod is recorded (without addresses) before its ADD, under the state
   * lock, so two lab commands cannot both take a name, and deletePod() can
   * clean up after an add that was killed half-way.
   */
  async addPod(node: number | string, name: string, options: AddPodOptions = {}): Promise<LabPod> {
    requireRoot("adding a lab pod");
    const plan = this.node(node);
    validatePodName(name);
    const pod: LabPod = {
      node: plan.index,
      nodeName: plan.name,
      name,
      namespace: validatePodNamespace(options.namespace ?? "default"),
      netns: podNetnsName(this.prefix, plan.index, name),
      containerID: randomBytes(32).toString("hex"),
      ips: [],
      floatingIps: options.floatingIps ?? [],
      ...(options.egress ? { egress: true } : {}),
    };
    await this.updateState((state) => {
      const taken = state.pods.find((candidate) => candidate.name === name);
      if (taken) {
        throw new LabError(
          `lab ${this.prefix} has a pod ${name} already (${taken.namespace}/${taken.name} on ${taken.nodeName})`,
        );
      }
      state.pods.push({ ...pod });
    });
    try {
      await createNetns(pod.netns);
      const result = await addNetworkList(this.conflist(plan), this.#cniCall(plan, pod)).catch(
        async (error: unknown) => {
          await deleteNetns(pod.netns).catch(() => {});
          throw error;
        },
      );
      pod.ips = resultAddresses(result);
    } catch (error) {
      await this.updateState((state) => {
        state.pods = state.pods.filter((candidate) => candidate.name !== name);
      });
      throw error;
    }
    await this.updateState((state) => {
      const recorded = state.pods.find((candidate) => candidate.name === name);
      if (recorded) recorded.ips = pod.ips;
    });
    if (options.responder ?? true) await this.#startResponder(pod);
    return pod;
  }

  /** CNI DEL of the pod (in the node's namespace), then its responder and namespace go. */
  async deletePod(name: string): Promise<void> {
    requireRoot("deleting a lab pod");
    await this.reloadState();
    const pod = this.pod(name);
    const plan = this.node(pod.node);
    const failure = await deleteNetworkList(this.conflist(plan), this.#cniCall(plan, pod)).then(
      () => undefined,
      (error: unknown) => error,
    );
    await stopPids(await netnsPids(pod.netns));
    await deleteNetns(pod.netns);
    const responder = `responder-${pod.node}-${pod.name}`;
    await rm(join(this.stateDir, `${responder}.pid`), { force: true });
    await rm(join(this.stateDir, `${responder}.ready`), { force: true });
    await this.updateState((state) => {
      state.pods = state.pods.filter((candidate) => candidate.name !== name);
      state.processes = state.processes.filter((started) => started.netns !== pod.netns);
    });
    if (failure !== undefined) throw failure;
  }

  /**
   * One request from a lab namespace to an address, answered by a pod's
   * responder (ICMP: by the kernel, while the responder notes the source).
   */
  async probe(
    from: string,
    to: string,
    protocol: ProbeProtocol,
    options: ProbeOptions = {},
  ): Promise<ProbeResult> {
    requireRoot("a lab probe");
    const netns = this.netns(from);
    const timeoutMs = options.timeoutMs ?? 2000;
    const argv = [
      this.paths.python,
      this.paths.probe,
      "send",
      protocol,
      to,
      String(timeoutMs / 1000),
      join(this.stateDir, SEEN_LOG),
    ];
    let stdout: string;
    try {
      ({ stdout } = await runInNetns(netns, argv, { timeoutMs: timeoutMs + 5000 }));
    } catch (error) {
      if (!(error instanceof CommandError)) throw error;
      stdout = error.stdout || JSON.stringify({ ok: false, error: error.stderr.trim() });
    }
    return parseProbeResult(protocol, netns, to, stdout);
  }

  /**
   * Pings at 100 Hz (by default) from a lab namespace for a while, on a fixed
   * schedule: how many answers were lost and the longest time without one.
   */
  async ping(from: string, to: string, options: PingOptions = {}): Promise<PingReport> {
    const durationMs = options.durationMs ?? 5000;
    const intervalMs = options.intervalMs ?? 10;
    const { stdout } = await runInNetns(
      this.netns(from),
      [
        this.paths.python,
        this.paths.probe,
        "ping",
        to,
        String(durationMs / 1000),
        String(intervalMs),
      ],
      { timeoutMs: durationMs + 10_000 },
    );
    return summarizePing(parsePingSamples(stdout));
  }

  /** BGP sessions of a node's BIRD (`node-N`) or of the external router (`ext`). */
  async bgpSessions(place: string): Promise<BgpSession[]> {
    const dir = place === "ext" || place === "external" ? "tor" : this.node(place).name;
    const bird = new LinuxBird(
      join(this.stateDir, dir, "bird.conf"),
      join(this.stateDir, dir, "bird.ctl"),
    );
    return bird.sessions();
  }

  /** Stops and removes everything of this lab. */
  async down(): Promise<LabDownReport> {
    await this.#saving.catch(() => {});
    return labDown(this.prefix, { stateRoot: this.stateRoot });
  }

  // ---- used by the builder, the status and the demo -----------------------

  /** @internal Writes the state as it is in memory (what labUp() starts with). */
  async saveState(): Promise<void> {
    await this.#serialize(() => writeLabState(this.stateDir, this.state));
  }

  /**
   * @internal Applies `change` to the state as state.json holds it now (other
   * lab commands may have changed it) and writes it back, under the state
   * lock; a change that throws writes nothing.
   */
  async updateState(change: (state: LabState) => void): Promise<void> {
    await this.#serialize(() =>
      withStateLock(this.stateDir, async () => {
        await this.#refresh();
        change(this.state);
        await writeLabState(this.stateDir, this.state);
      }),
    );
  }

  /** Reads state.json again: pods and processes other lab commands added or removed. */
  async reloadState(): Promise<void> {
    await this.#serialize(() => this.#refresh());
  }

  async #refresh(): Promise<void> {
    const fresh = await readLabState(this.stateDir);
    if (fresh) Object.assign(this.state, fresh);
  }

  /** One state read or write at a time within this process. */
  async #serialize(run: () => Promise<void>): Promise<void> {
    const next = this.#saving.catch(() => {}).then(run);
    this.#saving = next;
    await next;
  }

  /** @internal */
  conflistPath(node: LabNodePlan): string {
    return join(this.stateDir, `${node.name}.conflist`);
  }

  /** @internal */
  conflist(node: LabNodePlan): Conflist {
    return renderLabConflist({
      nodeName: node.name,
      etcdEndpoint: this.topology.etcd.endpoint,
      logFilePath: join(this.stateDir, node.name, "cni.log"),
      ipv6: this.topology.ipv6,
    });
  }

  /** @internal Starts a process inside a lab namespace and records it (state and pid file). */
  async startProcess(name: string, netns: string, argv: string[]): Promise<LabProcess> {
    const log = join(this.stateDir, "logs", `${name}.log`);
    const pid = await startDetachedInNetns(netns, argv, { logPath: log, marker: this.prefix });
    const started: LabProcess = { name, netns, pid, log, argv };
    await writePidFile(this.stateDir, name, pid);
    await this.updateState((state) => {
      state.processes = [...state.processes.filter((other) => other.name !== name), started];
    });
    return started;
  }

  /** @internal */
  findProcess(name: string): LabProcess | undefined {
    return this.state.processes.find((started) => started.name === name);
  }

  /** @internal GET url from inside a lab namespace; true on 200. */
  async httpOk(netns: string, url: string, timeoutMs = 1000): Promise<boolean> {
    try {
      await runInNetns(
        netns,
        [this.paths.python, this.paths.probe, "http", url, String(timeoutMs / 1000)],
        { timeoutMs: timeoutMs + 5000 },
      );
      return true;
    } catch {
      return false;
    }
  }

  #cniCall(node: LabNodePlan, pod: LabPod): CniCall {
    const annotations: Record<string, string> = {
      ...(pod.floatingIps.length > 0
        ? { "cni.projectcalico.org/floatingIPs": JSON.stringify(pod.floatingIps) }
        : {}),
      ...(pod.egress ? { "buoy.dev/floating-ip-egress": "true" } : {}),
    };
    return {
      nodeNetns: node.netns,
      containerID: pod.containerID,
      podNetnsPath: `/run/netns/${pod.netns}`,
      ifname: CNI_IFNAME,
      pod: { namespace: pod.namespace, name: pod.name, uid: uuidOf(pod.containerID) },
      cniPath: [this.paths.cniDir, this.paths.systemCniDir],
      runtimeConfig: { "io.kubernetes.cri.pod-annotations": annotations },
    };
  }

  async #startResponder(pod: LabPod): Promise<void> {
    await this.serve(pod.netns, `${pod.node}-${pod.name}`, pod.name);
  }

  /**
   * Starts a probe responder in any lab namespace (see netns()), answering as
   * `answerAs`: the external router, say, to see what source a pod's traffic
   * leaves the cluster with.
   */
  async serve(place: string, id: string, answerAs: string): Promise<void> {
    const name = `responder-${id}`;
    const ready = join(this.stateDir, `${name}.ready`);
    await rm(ready, { force: true });
    const started = await this.startProcess(name, this.netns(place), [
      this.paths.python,
      this.paths.probe,
      "serve",
      answerAs,
      ready,
      join(this.stateDir, SEEN_LOG),
    ]);
    const deadline = Date.now() + 10_000;
    while (!existsSync(ready)) {
      if (!isAlive(started.pid) || Date.now() > deadline) {
        throw new LabError(
          `the probe responder ${name} in ${place} did not start: ${await readLogTail(started.log)}`,
        );
      }
      await sleep(20);
    }
  }
}

/** The steps of `up`, in order; each reports when done. */
class LabBuilder {
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
      }),
    );
    return "running (the agents write their configs)";
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

/** A stable UUID-shaped pod UID from the container ID. */
function uuidOf(containerID: string): string {
  const hex = containerID.padEnd(32, "0");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

function requireRoot(what: string): void {
  if (process.getuid?.() !== 0) {
    throw new LabError(`${what} needs root: the lab is made of network namespaces`);
  }
}

function indent(text: string): string {
  return text.replace(/^/gm, "    ");
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
