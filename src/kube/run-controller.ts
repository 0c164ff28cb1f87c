// The FloatingIP controller's process (`buoy controller`): an HTTP server for
// /healthz, /readyz and /metrics, the election (leader-lease.ts), and the
// controller itself while this replica acts. Resolves to the exit code: 0
// after a stop, 1 when the Lease could not be renewed in time.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import type { Logger } from "../log/logger.js";
import { createControllerMetrics } from "./controller-metrics.js";
import { describeKubeError } from "./describe-kube-error.js";
import { FloatingIpController } from "./floating-ip-controller.js";
import { loadKubeConfig } from "./kube-agent-source.js";
import { LeaderLease } from "./leader-lease.js";

export interface RunControllerOptions {
  /** The kubeconfig file; undefined: the pod's service account. */
  kubeconfig: string | undefined;
  /** Where the nodes' status Leases live. */
  namespace: string;
  /** The election Lease (namespace/name): where no node may write Leases. */
  leaseNamespace: string;
  leaseName: string;
  leaseSeconds: number;
  identity: string;
  host: string;
  port: number;
  logger: Logger;
  /** Monotonic milliseconds. */
  now: () => number;
  signal: AbortSignal;
}

export async function runFloatingIpController(options: RunControllerOptions): Promise<number> {
  const { logger, signal, now } = options;
  const kubeConfig = loadKubeConfig(options.kubeconfig);
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const custom = kubeConfig.makeApiClient(CustomObjectsApi);
  const metrics = createControllerMetrics();
  const lease = new LeaderLease({
    custom,
    namespace: options.leaseNamespace,
    name: options.leaseName,
    identity: options.identity,
    durationSeconds: options.leaseSeconds,
    now,
  });
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
    const ready = lease.leading || now() - lastContact < options.leaseSeconds * 1000;
    const status = path === "/healthz" ? 200 : path === "/readyz" ? (ready ? 200 : 503) : 404;
    response.writeHead(status, { "content-type": "text/plain" });
    response.end(status === 200 ? "ok\n" : status === 404 ? "not found\n" : "not ready\n");
  });
  await new Promise<void>((resolve) => server.listen(options.port, options.host, resolve));
  logger.log("info", "controller.listening", {
    host: options.host,
    port: (server.address() as AddressInfo).port,
  });
  logger.log("info", "controller.start", { identity: options.identity, lease: options.leaseName });
  const renewMs = (options.leaseSeconds * 1000) / 5;
  const acting = new AbortController();
  let controller: Promise<void> | undefined;
  let exitCode = 0;
  const abortActing = () => acting.abort();
  signal.addEventListener("abort", abortActing, { once: true });
  while (!signal.aborted) {
    try {
      const held = await lease.tryAcquireOrRenew();
      lastContact = now();
      if (held && !controller) {
        logger.log("info", "controller.leader", { identity: options.identity, state: "acting" });
        metrics.leader.set(1);
        controller = new FloatingIpController({
          kubeConfig,
          core,
          custom,
          namespace: options.namespace,
          // Over a node's renewal period (a third of its Lease's 5 s).
          clockGraceMs: 2500,
          nodeLeaseSeconds: 5,
          logger,
          metrics,
          now,
        }).run(acting.signal);
      }
    } catch (error) {
      logger.log("warn", "controller.error", { phase: "lease", error: describeKubeError(error) });
    }
    if (controller && !lease.leading) {
      logger.log("error", "controller.leader", {
        identity: options.identity,
        state: "lost",
        reason: `could not renew Lease ${options.leaseNamespace}/${options.leaseName} in time`,
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
    await lease.release().catch((error: unknown) =>
      logger.log("warn", "controller.error", {
        phase: "release",
        error: describeKubeError(error),
      }),
    );
  }
  await new Promise<void>((resolve) => server.close(() => resolve()));
  logger.log("info", "controller.stop", { exitCode });
  return exitCode;
}
