// The FloatingIP controller's process on either datastore (`buoy
// controller`): an HTTP server for /healthz, /readyz and /metrics, the
// election, and the controller itself while this replica acts. Resolves to
// the exit code: 0 after a stop, 1 when the election could not be renewed
// in time (the process ends; its supervisor starts it again as a standby).
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "../log/logger.js";
import type { ControllerMetrics } from "./controller-metrics.js";

/** One acting replica: a Kubernetes Lease (kube/leader-lease.ts) or an etcd key (etcd/etcd-leader-lease.ts). */
export interface Election {
  /** Renews, or takes it when free; whether this replica holds it now. A failure is thrown. */
  tryAcquireOrRenew(): Promise<boolean>;
  /** Holds it and renewed it in time. */
  readonly leading: boolean;
  /** Gives it up (a clean stop). */
  release(): Promise<void>;
}

export interface RunElectedOptions {
  election: Election;
  /** What the election is, for messages: `Lease kube-system/buoy-controller`. */
  electionName: string;
  leaseSeconds: number;
  identity: string;
  host: string;
  port: number;
  logger: Logger;
  metrics: ControllerMetrics;
  /** Monotonic milliseconds. */
  now: () => number;
  signal: AbortSignal;
  /** Runs the controller until `signal` aborts. */
  act(signal: AbortSignal): Promise<void>;
  describeError(error: unknown): string;
}

export async function runElected(options: RunElectedOptions): Promise<number> {
  const { logger, signal, now, election, metrics } = options;
  let lastContact = now();
  const server = createServer((request, response) => {
    const path = (request.url ?? "/").split("?")[0];
    if (path === "/metrics") {
      void metrics.registry.metrics().then((body) => {
        response.writeHead(200, { "content-type": metrics.registry.contentType });
        response.end(body);
      });
      return;
    }
    const ready = election.leading || now() - lastContact < options.leaseSeconds * 1000;
    const status = path === "/healthz" ? 200 : path === "/readyz" ? (ready ? 200 : 503) : 404;
    response.writeHead(status, { "content-type": "text/plain" });
    response.end(status === 200 ? "ok\n" : status === 404 ? "not found\n" : "not ready\n");
  });
  await new Promise<void>((resolve) => server.listen(options.port, options.host, resolve));
  logger.log("info", "controller.listening", {
    host: options.host,
    port: (server.address() as AddressInfo).port,
  });
  logger.log("info", "controller.start", {
    identity: options.identity,
    lease: options.electionName,
  });
  const renewMs = (options.leaseSeconds * 1000) / 5;
  const acting = new AbortController();
  let controller: Promise<void> | undefined;
  let exitCode = 0;
  signal.addEventListener("abort", () => acting.abort(), { once: true });
  while (!signal.aborted) {
    try {
      const held = await election.tryAcquireOrRenew();
      lastContact = now();
      if (held && !controller) {
        logger.log("info", "controller.leader", { identity: options.identity, state: "acting" });
        metrics.leader.set(1);
        controller = options.act(acting.signal);
      }
    } catch (error) {
      logger.log("warn", "controller.error", {
        phase: "lease",
        error: options.describeError(error),
      });
    }
    if (controller && !election.leading) {
      logger.log("error", "controller.leader", {
        identity: options.identity,
        state: "lost",
        reason: `could not renew ${options.electionName} in time`,
      });
      exitCode = 1;
      break;
    }
    await sleep(renewMs, undefined, { signal }).catch(() => undefined);
  }
  acting.abort();
  await controller;
  metrics.leader.set(0);
  if (exitCode === 0) {
    await election.release().catch((error: unknown) =>
      logger.log("warn", "controller.error", {
        phase: "release",
        error: options.describeError(error),
      }),
    );
  }
  await new Promise<void>((resolve) => server.close(() => resolve()));
  logger.log("info", "controller.stop", { exitCode });
  return exitCode;
}
