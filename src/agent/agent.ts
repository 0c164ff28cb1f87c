// `buoy agent`: one per node. Watches the datastore, reconciles the node's
// floating-IP NAT, serves /healthz, /readyz and /metrics. On SIGTERM it stops
// and leaves the dataplane as it is, so traffic flows while it restarts; on
// start it reconciles against the kernel without flushing.
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Kv } from "../datastore/kv.js";
import { Store } from "../datastore/store.js";
import type { Logger } from "../log/logger.js";
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
  });
  let connected = false;

  const server = await listen(
    options.listen,
    (path) => {
      if (path === "/healthz") return { status: 200, body: "ok\n" };
      if (path === "/readyz") {
        const ready = reconciler.synced && connected;
        const why = !reconciler.synced
          ? "first sync not applied yet"
          : "datastore watch not established";
        return { status: ready ? 200 : 503, body: ready ? "ready\n" : `not ready: ${why}\n` };
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
    reconciler.markDirty();
  }, options.resyncMs);

  // The first reconcile runs only once the watch is established: a complete
  // read after that point misses no change.
  const watching = (async () => {
    let failures = 0;
    while (!signal.aborted) {
      try {
        for await (const event of kv.watch("/buoy/v1/", signal)) {
          if (event === "ready") {
            connected = true;
            failures = 0;
            metrics.datastoreUp.set(1);
            logger.log("info", "agent.watch", { state: "established" });
          }
          reconciler.markDirty();
        }
      } catch (error) {
        if (signal.aborted) break;
        connected = false;
        metrics.datastoreUp.set(0);
        const delay = Math.min(5000, 200 * 2 ** failures++);
        logger.log("warn", "agent.watch", {
          state: "lost",
          error: (error as Error).message,
          retryInMs: delay,
        });
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  })();
  const reconciling = (async () => {
    // Wait for the watch before the first reconcile.
    while (!connected && !signal.aborted) await new Promise((resolve) => setTimeout(resolve, 20));
    await reconciler.run(signal);
  })();

  await new Promise<void>((resolve) =>
    signal.addEventListener("abort", () => resolve(), { once: true }),
  );
  clearInterval(resync);
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
