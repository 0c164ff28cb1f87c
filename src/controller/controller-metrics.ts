// The FloatingIP controller's Prometheus metrics, in a registry of its own.
import { Counter, Gauge, Histogram, Registry } from "prom-client";

export function createControllerMetrics() {
  const registry = new Registry();
  return {
    registry,
    failovers: new Counter({
      name: "buoy_floating_ip_failovers_total",
      help: "FloatingIPs moved to another pod, by why the holder lost it (Deleted, NotReady, NodeLost)",
      labelNames: ["reason"] as const,
      registers: [registry],
    }),
    failoverSeconds: new Histogram({
      name: "buoy_floating_ip_failover_seconds",
      help: "From the controller seeing a holder lost to the new holder's node reporting the move programmed",
      labelNames: ["reason"] as const,
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
      registers: [registry],
    }),
    leader: new Gauge({
      name: "buoy_controller_leader",
      help: "1 while this replica holds the controller's Lease and acts",
      registers: [registry],
    }),
  };
}

export type ControllerMetrics = ReturnType<typeof createControllerMetrics>;
