// `buoy controller`: the FloatingIP controller's composition root (issue 15),
// on Kubernetes or (DATASTORE_TYPE=etcdv3) etcd. Waits to be elected (a
// Lease, or an etcd key), then watches and reconciles until SIGTERM or until
// it cannot renew in time (then it exits non-zero: its Deployment starts it
// again as a standby).
import { hostname } from "node:os";
import { performance } from "node:perf_hooks";
import type { Command } from "commander";
import { UsageError } from "../cli-error.js";
import type { Session } from "./session.js";
import { logLevelOption } from "../log-level-option.js";

interface ControllerCliOptions {
  namespace: string;
  lease: string;
  leaseDuration: string;
  listen: string;
  logLevel: string;
}

const DEFAULT_LEASE_SECONDS = 5;

export function addControllerCommand(program: Command, session: Session): void {
  program
    .command("controller")
    .description(
      "Run the FloatingIP controller: each FloatingIP follows one Ready pod it selects, " +
        "moved when that pod is deleted, turns NotReady or loses its node",
    )
    .option(
      "--namespace <name>",
      "where the nodes' status Leases live (the agents' --lease-namespace)",
      "buoy-system",
    )
    .option(
      "--lease <namespace/name>",
      "the Lease the replicas elect one acting controller by, where no node may write Leases",
      "kube-system/buoy-controller",
    )
    .option(
      "--lease-duration <seconds>",
      "how long a replica's Lease counts unrenewed before another takes over",
      String(DEFAULT_LEASE_SECONDS),
    )
    .option(
      "--listen <host:port>",
      "address for /healthz and /metrics; port 0 picks one",
      "0.0.0.0:9097",
    )
    .addOption(logLevelOption())
    .addHelpText("after", CONTROLLER_HELP)
    .action(async (options: ControllerCliOptions, command: Command) => {
      await runController(options, session, command);
    });
}

async function runController(
  options: ControllerCliOptions,
  session: Session,
  command: Command,
): Promise<void> {
  const listen = /^(.*):(\d+)$/.exec(options.listen);
  if (!listen || Number(listen[2]) > 65535)
    throw new UsageError(`--listen must be host:port, got '${options.listen}'`);
  const [leaseNamespace, leaseName, ...extra] = options.lease.split("/");
  if (!leaseNamespace || !leaseName || extra.length > 0)
    throw new UsageError(`--lease must be namespace/name, got '${options.lease}'`);
  const duration = Number(options.leaseDuration);
  if (!Number.isInteger(duration) || duration < 2 || duration > 300)
    throw new UsageError(
      `--lease-duration must be whole seconds from 2 to 300, got '${options.leaseDuration}'`,
    );
  const log = await import("../../log/logger.js");
  const { env, stdout } = session.request;
  const logger = log.createStreamLogger(
    (line) => stdout.write(line),
    log.parseLogLevel(options.logLevel),
  );
  const stop = new AbortController();
  session.request.onShutdown?.(() => stop.abort());
  const common = {
    leaseSeconds: duration,
    identity: `${env.POD_NAME ?? hostname()}_${process.pid}`,
    host: listen[1]!.replace(/^\[|\]$/g, ""),
    port: Number(listen[2]),
    logger,
    now: () => performance.now(),
    signal: stop.signal,
  };
  let exitCode: number;
  if (env.DATASTORE_TYPE === "etcdv3") {
    // The etcd datastore: its endpoints as every other command takes them.
    const store = session.openStore(command);
    const { runEtcdFloatingIpController } = await import("../../etcd/run-etcd-controller.js");
    exitCode = await runEtcdFloatingIpController({ ...common, store });
  } else {
    const { runFloatingIpController } = await import("../../kube/run-controller.js");
    exitCode = await runFloatingIpController({
      ...common,
      kubeconfig: env.KUBECONFIG,
      namespace: options.namespace,
      leaseNamespace,
      leaseName,
    });
  }
  if (exitCode !== 0) process.exitCode = exitCode;
}

const CONTROLLER_HELP = `
What it does: for each FloatingIP (buoy.dev/v1, namespaced), one pod among the
Ready pods its spec.podSelector picks in its own namespace holds
spec.address (or a free address of spec.pool, kept in status.address),
through the address's FloatingIPClaim, as an annotation's pod
would (the two never hold one address at once). Sticky: a holder keeps it
while it is Ready, not being deleted and its node's status Lease is renewed;
otherwise the pod Ready longest takes it. The nodes' agents program the move,
the old node first (ADR 0004).

One acting replica: the replicas elect one on --lease; the one acting exits
when it could not renew for 80% of --lease-duration. A node is lost when its
status Lease in --namespace was not seen renewed for its duration (time
counts only while that watch delivers renewals).

Paths: /healthz (200 while the process runs), /readyz (200 while acting or a
healthy standby), /metrics (buoy_floating_ip_failovers_total,
buoy_floating_ip_failover_seconds, buoy_controller_leader).

Datastore: Kubernetes (KUBECONFIG, or the pod's service account) unless
DATASTORE_TYPE=etcdv3, then etcd at ETCD_ENDPOINTS or --etcd-endpoints (and
its TLS variables). On etcd the FloatingIPs and Pods are 'buoy apply'
records, a node is lost when its agent's liveness key (under its status
lease, --status-ttl) expires, the replicas elect one by an etcd key under a
lease of --lease-duration (--namespace and --lease are Kubernetes' only);
spec.egress marks the claim on both, and the holder's agent has the pod
leave from the address. Logs: JSON lines on stdout.

Examples:
  buoy controller --namespace buoy-system     # as manifests/controller.yaml runs it
  DATASTORE_TYPE=etcdv3 ETCD_ENDPOINTS=http://127.0.0.1:2379 buoy controller`;
