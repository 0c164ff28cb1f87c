// `buoy agent`: one per node. Watches the datastore, reconciles the node's
// floating-IP NAT, serves /healthz, /readyz and /metrics. On SIGTERM it stops
// and leaves the dataplane as it is, so traffic flows while it restarts; on
// start it reconciles against the kernel without flushing.
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Kv } from "../datastore/kv.js";
import { keys, Store } from "../datastore/store.js";
import type { Bird } from "../dataplane/bird.js";
import type { RoutingMode } from "../dataplane/routing-plan.js";
import type { Logger } from "../log/logger.js";
import { ClaimCollector } from "./claim-gc.js";
import { parseFloatingIpSwitch, type SwitchState } from "./feature-switch.js";
import { createMetrics } from "./metrics.js";
import { Reconciler } from "./reconciler.js";
import type { DataplanePorts } from "./sync-dataplane.js";

export interface AgentOptions {
  kv: Kv;
  node: string;
  ports: DataplanePorts;
  logger: Logger;
  /** "on"/"off" as told; "auto" follows the CNI config at `cniConfPath`. */
  floatingIps: "auto" | "on" | "off";
  cniConfPath: string;
  /** host:port for /healthz, /readyz, /metrics; port 0 picks one. */
  listen: string;
  resyncMs: number;
  /** How this node reaches the others; "none" (the default) programs floating-IP NAT only. */
  routing?: RoutingMode;
  /** BGP mode: the node's BIRD, configured by the agent. */
  bird?: Bird;
  /** TTL of the lease under this node's status records (default 15 s). */
  statusTtlSeconds?: number;
  /** Release claims whose holder is gone after this long (ms); 0 turns the collector off. */
  claimGcGraceMs?: number;
  /** Called once the HTTP server listens, with its address. */
  onListening?: (address: string) => void;
}

export async function runAgent(options: AgentOptions, signal: AbortSignal): Promise<void> {
  const { kv, node, logger } = options;
  const metrics = createMetrics();
  let feature = readSwitch(options);
  logger.log("info", "agent.start", { node, floatingIps: feature.enabled, switch: feature.source });
  metrics.floatingIpsEnabled.set(feature.enabled ? 1 : 0);

  const reconciler = new Reconciler({
    store: new Store(kv),
    node,
    ports: options.ports,
    logger,
    metrics,
    floatingIpsEnabled: () => feature.enabled,
    routing: options.routing ?? "none",
    ...(options.bird ? { bird: options.bird } : {}),
    statusTtlSeconds: options.statusTtlSeconds ?? 15,
  });
  const collector =
    (options.claimGcGraceMs ?? 0) > 0
      ? new ClaimCollector({ store: new Store(kv), graceMs: options.claimGcGraceMs ?? 0, logger })
      : undefined;
  let sweeping = false;
  const sweep = () => {
    if (!collector || sweeping || !connected) return;
    sweeping = true;
    collector
      .sweep()
      .catch((error: Error) =>
        logger.log("warn", "agent.gc", { error: error.message, retryInMs: options.resyncMs }),
      )
      .finally(() => (sweeping = false));
  };
  const ttlMs = (options.statusTtlSeconds ?? 15) * 1000;
  const keepAlive = setInterval(() => {
    reconciler
      .keepAlive()
      .catch((error: Error) => logger.log("warn", "agent.lease", { error: error.message }));
  }, ttlMs / 3);
  let connected = false;

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
  }, options.resyncMs);

  // Watch only what the plan reads: this node's endpoints, the claims, the
  // pools and the nodes' status records (a move waits for the old node's to
  // go; direct routes follow them); when routing, also nodes, BGP peers and
  // block affinities (not the blocks: every allocation rewrites one). The first reconcile runs once every watch is
  // established: a complete read after that point misses no change.
  const prefixes = [
    keys.nodeEndpoints(node),
    keys.claims,
    keys.pools,
    keys.statuses,
    ...((options.routing ?? "none") === "none"
      ? []
      : [keys.nodes, keys.bgpPeers, keys.affinities, keys.borrowed]),
  ];
  const established = prefixes.map(() => false);
  const setConnected = () => {
    const now = established.every(Boolean);
    if (now !== connected)
      logger.log(now ? "info" : "warn", "agent.watch", { state: now ? "established" : "lost" });
    connected = now;
    metrics.datastoreUp.set(now ? 1 : 0);
  };
  const watchOne = async (prefix: string, index: number) => {
    let failures = 0;
    while (!signal.aborted) {
      try {
        for await (const event of kv.watch(prefix, signal)) {
          if (event === "ready") {
            failures = 0;
            established[index] = true;
            setConnected();
          }
          reconciler.markDirty();
        }
      } catch (error) {
        if (signal.aborted) break;
        failures += 1;
        // A stream that ends once (an idle body timeout) is re-watched at once
        // and quietly; only a watch that cannot be re-established counts as lost.
        if (failures > 1) {
          established[index] = false;
          setConnected();
          logger.log("warn", "agent.watch", { prefix, error: (error as Error).message });
        }
        const delay = failures > 1 ? Math.min(5000, 100 * 2 ** failures) : 0;
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  };
  const watching = Promise.all(prefixes.map((prefix, index) => watchOne(prefix, index)));
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
  await Promise.allSettled([watching, reconciling]);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  logger.log("info", "agent.stop", { node, dataplane: "left in place" });
}

function readSwitch(options: AgentOptions): SwitchState {
  if (options.floatingIps !== "auto") {
    return {
      enabled: options.floatingIps === "on",
      source: `--floating-ips=${options.floatingIps}`,
    };
  }
  try {
    return parseFloatingIpSwitch(readFileSync(options.cniConfPath, "utf8"), options.cniConfPath);
  } catch (error) {
    return {
      enabled: false,
      source: `cannot read ${options.cniConfPath} (${(error as NodeJS.ErrnoException).code ?? error})`,
      readable: false,
    };
  }
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
