// The FloatingIP controller on the etcd datastore: the election on an etcd
// key (etcd-leader-lease.ts) and the controller
// (etcd-floating-ip-controller.ts), served by run-elected.ts.
import { createControllerMetrics } from "../controller/controller-metrics.js";
import { runElected } from "../controller/run-elected.js";
import type { Logger } from "../log/logger.js";
import { EtcdFloatingIpController } from "./etcd-floating-ip-controller.js";
import { EtcdLeaderLease } from "./etcd-leader-lease.js";
import { keys, type Store } from "./store.js";

export interface RunEtcdControllerOptions {
  store: Store;
  leaseSeconds: number;
  identity: string;
  host: string;
  port: number;
  logger: Logger;
  /** Monotonic milliseconds. */
  now: () => number;
  signal: AbortSignal;
}

export async function runEtcdFloatingIpController(
  options: RunEtcdControllerOptions,
): Promise<number> {
  const { store, logger, now } = options;
  const metrics = createControllerMetrics();
  const election = new EtcdLeaderLease({
    kv: store.kv,
    identity: options.identity,
    ttlSeconds: options.leaseSeconds,
    now,
  });
  return runElected({
    ...options,
    election,
    electionName: `etcd key ${keys.controllerLeader}`,
    metrics,
    describeError: (error) => (error instanceof Error ? error.message : String(error)),
    act: (signal) => new EtcdFloatingIpController({ store, logger, metrics, now }).run(signal),
  });
}
