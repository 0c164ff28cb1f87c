// `buoy agent`: one per node. Watches the datastore, reconciles the node's
// floating-IP NAT, serves /healthz, /readyz and /metrics. On SIGTERM it stops
// and leaves the dataplane as it is, so traffic flows while it restarts; on
// start it reconciles against the kernel without flushing.
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { connect, type AddressInfo, type Socket } from "node:net";
import type { Bird } from "../dataplane/shell/bird.js";
import type { KernelMonitor } from "../dataplane/shell/kernel-monitor.js";
import type { RoutingMode } from "../dataplane/routing-plan.js";
import type { Logger } from "../log/logger.js";
import type { AgentSource } from "../datastore/agent-source.js";
import { startCniServer, type CniServerOptions } from "./cni-server-process.js";
import { collectGarbage } from "./collect-garbage.js";
import { DEFAULT_MAX_FLOATING_IPS } from "../floating/validate.js";
import { planFence, renewalRetryMs } from "./fence.js";
import { parseFloatingIpSwitch, type SwitchState } from "./feature-switch.js";
import { createMetrics } from "./metrics.js";
import { networkPolicyCheck } from "./network-policy-check.js";
import { Reconciler } from "./reconciler.js";
import type { DataplanePorts } from "./sync-dataplane.js";

export interface AgentOptions {
  /**
   * Opens the datastore side (EtcdAgentSource or KubeAgentSource); it may ask
   * whether floating IPs are on, and how many one pod may hold.
   */
  openSource: (context: {
    floatingIpsEnabled: () => boolean;
    maxFloatingIps: () => number;
  }) => AgentSource;
  node: string;
  ports: DataplanePorts;
  /** The kernel's change notices (nft and ip monitors): a resync reads back only what they cannot vouch for. */
  monitor?: KernelMonitor;
  logger: Logger;
  /** "on"/"off" as told; "auto" follows the CNI config at `cniConfPath`. */
  floatingIps: "auto" | "on" | "off";
  cniConfPath: string;
  /** host:port for /healthz, /readyz, /metrics; port 0 picks one. */
  listen: string;
  resyncMs: number;
  /** How this node reaches the others; "none" (the default) programs floating-IP NAT only. */
  routing?: RoutingMode;
  /** bgp: the AS number of a node whose record names none. */
  defaultAsNumber?: number;
  /** BGP mode: the node's BIRD, configured by the agent. */
  bird?: Bird;
  /** TTL of this node's liveness (the source's lease; default 5 s): renewed every third of it. */
  statusTtlSeconds?: number;
  /**
   * Fencing (ADR 0009): withdraw this node's floating-IP announcements once
   * its liveness has gone unrenewed this long (ms); default half the TTL.
   */
  fenceAfterMs?: number;
  /**
   * BGP mode: the BIRD watchdog's unix socket (ADR 0009). The agent holds a
   * connection to it; when the agent dies the watchdog withdraws its
   * floating IPs from BIRD.
   */
  birdWatchdogPath?: string;
  /** The clock fencing reads (ms); Date.now by default. */
  now?: () => number;
  /** Called once the HTTP server listens, with its address. */
  onListening?: (address: string) => void;
  /** Run the CNI executable as a resident server on a unix socket (ADR 0013). */
  cniServer?: CniServerOptions;
}

export async function runAgent(options: AgentOptions, signal: AbortSignal): Promise<void> {
  const { node, logger } = options;
  // First: a CNI server that cannot listen safely stops the agent before it starts anything.
  const cniServer = options.cniServer
    ? await startCniServer(options.cniServer, logger, signal)
    : undefined;
  let feature = readSwitch(options);
  const source = options.openSource({
    floatingIpsEnabled: () => feature.enabled,
    maxFloatingIps: () => feature.maxFloatingIps,
  });
  const metrics = createMetrics({ networkPolicies: source.networkPoliciesPresent !== undefined });
  logger.log("info", "agent.start", { node, floatingIps: feature.enabled, switch: feature.source });
  metrics.floatingIpsEnabled.set(feature.enabled ? 1 : 0);

  const reconciler = new Reconciler({
    source,
    node,
    ports: options.ports,
    logger,
    metrics,
    floatingIpsEnabled: () => feature.enabled,
    routing: options.routing ?? "none",
    ...(options.defaultAsNumber !== undefined ? { defaultAsNumber: options.defaultAsNumber } : {}),
    ...(options.bird ? { bird: options.bird } : {}),
    ...(options.monitor ? { monitor: options.monitor } : {}),
    collectGarbage,
  });
  let sweeping = false;
  const sweep = () => {
    if (sweeping || !connected) return;
    sweeping = true;
    source
      .collect()
      .catch((error: Error) =>
        logger.log("warn", "agent.gc", { error: error.message, retryInMs: options.resyncMs }),
      )
      .finally(() => (sweeping = false));
  };
  const ttlMs = (options.statusTtlSeconds ?? 5) * 1000;
  const now = options.now ?? Date.now;
  const fenceAfterMs = options.fenceAfterMs ?? ttlMs / 2;
  // Contact: when the last renewal that succeeded was sent (ADR 0009). The
  // start counts as one: nothing of this agent's is announced before its
  // first reconcile, which needs the datastore.
  let lastContactAt = now();
  // One renewal at a time, unless one hangs past the renewal period (a
  // client without a timeout): then another is sent, so a hung request
  // cannot keep the node fenced once the datastore answers again.
  let renewingSince: number | undefined;
  const renew = () => {
    const sentAt = now();
    if (renewingSince !== undefined && sentAt - renewingSince < ttlMs / 3) return;
    renewingSince = sentAt;
    reconciler
      .keepAlive()
      .then((renewed) => {
        if (renewed) {
          lastContactAt = Math.max(lastContactAt, sentAt);
          failures = 0;
        } else retry();
      })
      .catch((error: Error) => {
        logger.log("warn", "agent.lease", { error: error.message });
        retry();
      })
      .finally(() => {
        if (renewingSince === sentAt) renewingSince = undefined;
      });
  };
  // A failed renewal is tried again soon, not a third of the TTL later: one
  // lost request must not fence a healthy node (renewalRetryMs).
  let retryTimer: NodeJS.Timeout | undefined;
  let failures = 0;
  const retry = () => {
    if (retryTimer !== undefined) return;
    failures += 1;
    retryTimer = setTimeout(() => ((retryTimer = undefined), renew()), renewalRetryMs(failures));
  };
  const keepAlive = setInterval(renew, ttlMs / 3);
  let fencing = false;
  const checkFence = () => {
    const decision = planFence({ lastContactAt, now: now(), fenceAfterMs });
    if (fencing || decision.fenced === reconciler.fenced) return;
    fencing = true;
    const started = now();
    reconciler
      .setFenced(decision.fenced)
      .then(() => {
        metrics.fenced.set(decision.fenced ? 1 : 0);
        logger.log(
          decision.fenced ? "warn" : "info",
          decision.fenced ? "agent.fenced" : "agent.unfenced",
          {
            contactAgeMs: decision.ageMs,
            fenceAfterMs,
            ...(decision.fenced
              ? {
                  withdrawnInMs: now() - started,
                  reason: "datastore not reached; floating IPs withdrawn",
                }
              : {}),
          },
        );
      })
      .catch((error: Error) =>
        // Stays unfenced in the reconciler only if BIRD refused; tried again next tick.
        logger.log("error", "agent.error", { phase: "fence", error: error.message }),
      )
      .finally(() => (fencing = false));
  };
  const fenceTimer = setInterval(checkFence, Math.min(100, fenceAfterMs / 10));
  let connected = false;
  const checkNetworkPolicies = networkPolicyCheck(source, logger, metrics.networkPolicies);
  void checkNetworkPolicies?.();

  const server = await listen(
    options.listen,
    (path) => {
      if (path === "/healthz") return { status: 200, body: "ok\n" };
      if (path === "/readyz") {
        // Stuck (e.g. a hung tool) is not ready either: reconciles run at least every resync.
        const stale = Date.now() - reconciler.lastSuccessAt > 3 * options.resyncMs + 5000;
        const ready = reconciler.synced && connected && !stale;
        const why = !reconciler.synced
          ? "first sync not applied yet"
          : !connected
            ? "datastore watch not established"
            : "no successful reconcile for three resync periods";
        const last = reconciler.lastError
          ? ` (last reconcile failed: ${reconciler.lastError})`
          : "";
        return {
          status: ready ? 200 : 503,
          body: ready ? "ready\n" : `not ready: ${why}${last}\n`,
        };
      }
      return undefined;
    },
    metrics.registry,
  );
  const address = server.address() as AddressInfo;
  const where = `${address.address}:${address.port}`;
  logger.log("info", "agent.listening", { address: where });
  options.onListening?.(where);

  const resync = setInterval(() => {
    const read = readSwitch(options);
    // A conflist being rewritten (or briefly unreadable) must not switch the
    // feature off and tear down every binding: keep the last known state.
    if (read.readable === false && feature.readable !== false) {
      logger.log("warn", "agent.switch", { kept: feature.enabled, reason: read.source });
    }
    const next = read.readable === false ? { ...feature, readable: false } : read;
    if (next.enabled !== feature.enabled) {
      logger.log("info", "agent.switch", { floatingIps: next.enabled, switch: next.source });
    }
    feature = next;
    reconciler.markDirty("verify");
    sweep();
    void checkNetworkPolicies?.();
  }, options.resyncMs);

  const watching = source.watch(signal, {
    changed: () => reconciler.markDirty(),
    connected: (up) => {
      // Not contact for fencing: only a renewed lease keeps other nodes from taking over.
      logger.log(up ? "info" : "warn", "agent.watch", { state: up ? "established" : "lost" });
      connected = up;
      metrics.datastoreUp.set(up ? 1 : 0);
    },
  });
  const holdingWatchdog = options.birdWatchdogPath
    ? holdWatchdog(options.birdWatchdogPath, signal, logger, () =>
        reconciler.birdWatchdogConnected(),
      )
    : Promise.resolve();
  const reconciling = (async () => {
    // Wait for the watch before the first reconcile.
    while (!connected && !signal.aborted) await new Promise((resolve) => setTimeout(resolve, 20));
    await reconciler.run(signal);
  })();

  await new Promise<void>((resolve) =>
    signal.addEventListener("abort", () => resolve(), { once: true }),
  );
  clearInterval(resync);
  clearInterval(keepAlive);
  clearInterval(fenceTimer);
  clearTimeout(retryTimer);
  await Promise.allSettled([watching, reconciling, holdingWatchdog]);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await cniServer?.stopped;
  logger.log("info", "agent.stop", { node, dataplane: "left in place" });
}

/** Keeps a connection to the BIRD watchdog, reconnecting every 500 ms, until `signal` aborts. */
async function holdWatchdog(
  path: string,
  signal: AbortSignal,
  logger: Logger,
  connected: () => void,
): Promise<void> {
  let reported = false;
  while (!signal.aborted) {
    const socket: Socket = connect(path);
    await new Promise<void>((resolve) => {
      socket.once("connect", () => {
        reported = false;
        logger.log("info", "bird.watchdog", { state: "connected", path });
        connected();
      });
      socket.on("error", (error) => {
        if (!reported)
          logger.log("warn", "bird.watchdog", { state: "unreachable", path, error: error.message });
        reported = true;
      });
      // One listener per connection, removed with it: reconnecting every
      // 500 ms for hours must not pile listeners up on the signal.
      const stop = () => socket.destroy();
      signal.addEventListener("abort", stop, { once: true });
      socket.once("close", () => {
        signal.removeEventListener("abort", stop);
        resolve();
      });
    });
    if (!signal.aborted) await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

function readSwitch(options: AgentOptions): SwitchState {
  let read: SwitchState;
  try {
    read = parseFloatingIpSwitch(readFileSync(options.cniConfPath, "utf8"), options.cniConfPath);
  } catch (error) {
    read = {
      enabled: false,
      maxFloatingIps: DEFAULT_MAX_FLOATING_IPS,
      source: `cannot read ${options.cniConfPath} (${(error as NodeJS.ErrnoException).code ?? error})`,
      readable: false,
    };
  }
  if (options.floatingIps === "auto") return read;
  // Told on or off; the per-pod bound still comes from the conflist (or its default).
  return {
    enabled: options.floatingIps === "on",
    maxFloatingIps: read.maxFloatingIps,
    source: `--floating-ips=${options.floatingIps}`,
  };
}

type Route = (path: string) => { status: number; body: string } | undefined;

async function listen(
  address: string,
  route: Route,
  registry: { metrics(): Promise<string>; contentType: string },
): Promise<Server> {
  const colon = address.lastIndexOf(":");
  const host = address.slice(0, colon).replace(/^\[|\]$/g, "");
  const port = Number(address.slice(colon + 1));
  const server = createServer((request, response) => {
    const path = (request.url ?? "/").split("?")[0] ?? "/";
    if (path === "/metrics") {
      registry.metrics().then(
        (text) => response.writeHead(200, { "content-type": registry.contentType }).end(text),
        (error: Error) => response.writeHead(500).end(`${error.message}\n`),
      );
      return;
    }
    const answer = route(path) ?? { status: 404, body: "not found\n" };
    response.writeHead(answer.status, { "content-type": "text/plain" }).end(answer.body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
