// The running lab of `buoy lab` (a virtual cluster of network namespaces on
// one machine): Lab adds and deletes pods the way a container runtime does,
// sends probes and pings, reads BGP sessions, keeps state.json and takes the
// lab down. lab-up.ts builds one, open-lab.ts finds one by prefix. Nothing is
// ever added to the namespace this runs in: every address, route, sysctl and
// process is inside one of the lab's namespaces, and the lab reaches its own
// etcd and agents by running its helpers inside them (`ip netns exec`).
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { CommandError, type CommandOutput, type RunOptions } from "../exec/command.js";
import { LinuxBird, type BgpSession } from "../dataplane/shell/bird.js";
import { addNetworkList, deleteNetworkList, resultAddresses, type CniCall } from "./cni-runtime.js";
import { labDown, type LabDownReport } from "./lab-down.js";
import type { LabPaths } from "./lab-paths.js";
import {
  createNetns,
  deleteNetns,
  isAlive,
  netnsPids,
  readLogTail,
  requireRoot,
  runInNetns,
  sleep,
  startDetachedInNetns,
  stopPids,
} from "./lab-shell.js";
import {
  readLabState,
  writeLabState,
  withStateLock,
  writePidFile,
  type LabPod,
  type LabProcess,
  type LabState,
} from "./lab-state.js";
import {
  parsePingSamples,
  summarizePing,
  summarizeUdpPing,
  type PingReport,
  type UdpPingReport,
} from "./ping-report.js";
import { parseProbeResult, type ProbeProtocol, type ProbeResult } from "./probe-result.js";
import { renderLabConflist, type Conflist } from "./seed-conflist.js";
import { podRecordManifest, podUidOf } from "./lab-pod-record.js";
import {
  AGENT_LISTEN,
  findNode,
  isLabNetns,
  LabError,
  podNetnsName,
  validatePodName,
  validatePodNamespace,
  type LabNodePlan,
  type LabTopology,
} from "./topology.js";

export { LabError } from "./topology.js";
export type { LabRouting, LabTopology, LabNodePlan } from "./topology.js";
export type { LabPod, LabProcess, LabState, LabFeatures } from "./lab-state.js";
export type { PingReport, UdpPingReport } from "./ping-report.js";
export type { ProbeProtocol, ProbeResult } from "./probe-result.js";

export interface AddPodOptions {
  /** Floating IPs for the pod annotation cni.projectcalico.org/floatingIPs. */
  floatingIps?: string[];
  /** Kubernetes namespace, default "default". */
  namespace?: string;
  /** Opt in to egress: the pod's connections leave from its floating IPs. */
  egress?: boolean;
  /** Start the probe responder in the pod (default true). */
  responder?: boolean;
  /** Its labels: the pod gets a Pod record (Ready), which FloatingIPs select from. */
  labels?: Record<string, string>;
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

const SEEN_LOG = "icmp-seen.log";
const CNI_IFNAME = "eth0";

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
      ...(options.labels ? { labels: options.labels, createdAt: new Date().toISOString() } : {}),
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
      // As the API server has the pod before its sandbox exists; Ready once
      // it answers (below).
      if (pod.labels)
        await this.buoy(["apply", "-f", "-"], podRecordManifest(pod, false, new Date()));
      await createNetns(pod.netns);
      const result = await addNetworkList(this.conflist(plan), this.#cniCall(plan, pod)).catch(
        async (error: unknown) => {
          await deleteNetns(pod.netns).catch(() => {});
          throw error;
        },
      );
      pod.ips = resultAddresses(result);
    } catch (error) {
      if (pod.labels) await this.#deletePodRecord(pod).catch(() => {});
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
    if (pod.labels) await this.setPodReady(name, true);
    return pod;
  }

  /**
   * The pod's Ready condition, as its kubelet would report a readiness
   * probe: a FloatingIP leaves a holder that is not Ready. Only for a pod
   * with labels (one with a Pod record).
   */
  async setPodReady(name: string, ready: boolean): Promise<void> {
    const pod = this.pod(name);
    if (!pod.labels) throw new LabError(`pod ${name} has no labels, so no Pod record to mark`);
    await this.buoy(["apply", "-f", "-"], podRecordManifest(pod, ready, new Date()));
  }

  #deletePodRecord(pod: LabPod): Promise<string> {
    return this.buoy(["delete", "-f", "-"], podRecordManifest(pod, false, new Date()));
  }

  /** CNI DEL of the pod (in the node's namespace), then its responder and namespace go. */
  async deletePod(name: string): Promise<void> {
    requireRoot("deleting a lab pod");
    await this.reloadState();
    const pod = this.pod(name);
    const plan = this.node(pod.node);
    // Marked for deletion first, as the API server does before the kubelet
    // stops the pod: a FloatingIP it holds moves on before its sandbox goes.
    if (pod.labels) {
      await this.buoy(["apply", "-f", "-"], podRecordManifest(pod, false, new Date(), true)).catch(
        () => {},
      );
    }
    const failure = await deleteNetworkList(this.conflist(plan), this.#cniCall(plan, pod)).then(
      () => undefined,
      (error: unknown) => error,
    );
    await stopPids(await netnsPids(pod.netns));
    await deleteNetns(pod.netns);
    // As the API server forgets a pod once its sandbox is gone.
    if (pod.labels) await this.#deletePodRecord(pod).catch(() => {});
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

  /**
   * A node lost as a machine is lost: its agent, BIRD and watchdog killed
   * (SIGKILL, no goodbye), then its link to the fabric down. Its pods stay,
   * unreachable; the lab is not meant to get it back (take it down).
   */
  async loseNode(node: number | string): Promise<void> {
    requireRoot("losing a lab node");
    const plan = this.node(node);
    for (const name of [`agent-${plan.name}`, `bird-watchdog-${plan.name}`, `bird-${plan.name}`]) {
      const started = this.findProcess(name);
      if (started && isAlive(started.pid)) process.kill(started.pid, "SIGKILL");
    }
    await runInNetns(plan.netns, ["ip", "link", "set", plan.ifname, "down"]);
  }

  /**
   * A lost node back (for benchmarks that lose one node many times): its
   * link up, then its BIRD, watchdog and agent started again as `up` started
   * them; resolves once the agent is ready.
   */
  async reviveNode(node: number | string): Promise<void> {
    requireRoot("reviving a lab node");
    const plan = this.node(node);
    await runInNetns(plan.netns, ["ip", "link", "set", plan.ifname, "up"]);
    for (const name of [`bird-${plan.name}`, `bird-watchdog-${plan.name}`, `agent-${plan.name}`]) {
      const before = this.findProcess(name);
      if (before && !isAlive(before.pid)) await this.startProcess(name, before.netns, before.argv);
    }
    const deadline = Date.now() + 20_000;
    while (!(await this.httpOk(plan.netns, `http://${AGENT_LISTEN}/readyz`))) {
      if (Date.now() > deadline) throw new LabError(`the agent on ${plan.name} is not ready again`);
      await sleep(100);
    }
  }

  /**
   * UDP requests to port 7000 on a fixed schedule, as ping(): each answer
   * names the pod's responder, so a request two pods answered shows.
   */
  async udpPing(from: string, to: string, options: PingOptions = {}): Promise<UdpPingReport> {
    const durationMs = options.durationMs ?? 5000;
    const intervalMs = options.intervalMs ?? 10;
    const { stdout } = await runInNetns(
      this.netns(from),
      [
        this.paths.python,
        this.paths.probe,
        "udpping",
        to,
        String(durationMs / 1000),
        String(intervalMs),
      ],
      { timeoutMs: durationMs + 10_000 },
    );
    return summarizeUdpPing(stdout);
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
      agentSocket: this.agentSocketPath(node),
    });
  }

  /** @internal The node agent's CNI server socket, in a directory only root may enter. */
  agentSocketPath(node: LabNodePlan): string {
    return join(this.stateDir, node.name, "cni", "agent.sock");
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
      pod: { namespace: pod.namespace, name: pod.name, uid: podUidOf(pod.containerID) },
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

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
