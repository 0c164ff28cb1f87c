// The FloatingIP controller on the Kubernetes datastore: the election on a
// Lease (leader-lease.ts) and the controller (floating-ip-controller.ts),
// served by run-elected.ts.
import { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { createControllerMetrics } from "../controller/controller-metrics.js";
import { runElected } from "../controller/run-elected.js";
import type { Logger } from "../log/logger.js";
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
  const { logger, now } = options;
  const kubeConfig = loadKubeConfig(options.kubeconfig);
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const custom = kubeConfig.makeApiClient(CustomObjectsApi);
  const metrics = createControllerMetrics();
  const election = new LeaderLease({
    custom,
    namespace: options.leaseNamespace,
    name: options.leaseName,
    identity: options.identity,
    durationSeconds: options.leaseSeconds,
    now,
  });
  return runElected({
    ...options,
    election,
    electionName: `Lease ${options.leaseNamespace}/${options.leaseName}`,
    metrics,
    describeError: describeKubeError,
    act: (signal) =>
      new FloatingIpController({
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
      }).run(signal),
  });
}
