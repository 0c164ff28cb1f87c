// The agent's Prometheus metrics, in a registry of its own.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import packageJson from "../../package.json" with { type: "json" };

/**
 * `networkPolicies`: the datastore can tell whether NetworkPolicy objects
 * exist (Kubernetes); without it the gauge is not exported at all.
 */
export function createMetrics(options: { networkPolicies?: boolean } = {}) {
  const registry = new Registry();
  // The process's CPU, memory, file descriptors, event loop and heap (process_*, nodejs_*).
  collectDefaultMetrics({ register: registry });
  new Gauge({
    name: "buoy_build_info",
    help: "1, labelled with buoy's version and the Node.js it runs on",
    labelNames: ["version", "nodejs"] as const,
    registers: [registry],
  }).set({ version: packageJson.version, nodejs: process.version }, 1);
  return {
    registry,
    lastSuccess: new Gauge({
      name: "buoy_last_reconcile_success_timestamp_seconds",
      help: "When the kernel was last brought in line with the datastore (Unix time)",
      registers: [registry],
    }),
    ipamBlocks: new Gauge({
      name: "buoy_ipam_blocks",
      help: "IPAM blocks affine to this node, by pool (at each full reconcile)",
      labelNames: ["pool"] as const,
      registers: [registry],
    }),
    ipamAddresses: new Gauge({
      name: "buoy_ipam_addresses_in_use",
      help: "Pod addresses this node's pods hold, by pool (at each full reconcile)",
      labelNames: ["pool"] as const,
      registers: [registry],
    }),
    bindings: new Gauge({
      name: "buoy_floating_ip_bindings",
      help: "Floating-IP bindings programmed on this node",
      labelNames: ["family"] as const,
      registers: [registry],
    }),
    egress: new Gauge({
      name: "buoy_floating_ip_egress",
      help: "Floating IPs programmed on this node that pods also leave from (opted in to egress)",
      labelNames: ["family"] as const,
      registers: [registry],
    }),
    refused: new Gauge({
      name: "buoy_floating_ip_refused",
      help: "Floating IPs requested by endpoints on this node and not programmed (or, duplicate egress source, programmed without egress), and records skipped so the rest applies (malformed, duplicate route or BGP neighbor), by reason",
      labelNames: ["reason"] as const,
      registers: [registry],
    }),
    fenced: new Gauge({
      name: "buoy_fenced",
      help: "1 while this node has withdrawn its floating-IP announcements for want of datastore contact (ADR 0009)",
      registers: [registry],
    }),
    reconciles: new Counter({
      name: "buoy_reconciles_total",
      help: "Reconciles run, by result",
      labelNames: ["result"] as const,
      registers: [registry],
    }),
    reconcileSeconds: new Histogram({
      name: "buoy_reconcile_duration_seconds",
      help: "Time to read the datastore and bring the kernel in line",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    changes: new Counter({
      name: "buoy_dataplane_changes_total",
      help: "Changes applied to the kernel, by kind",
      labelNames: ["kind"] as const,
      registers: [registry],
    }),
    lastApplyError: new Gauge({
      name: "buoy_last_apply_failed",
      help: "1 when the last reconcile failed, else 0",
      registers: [registry],
    }),
    datastoreUp: new Gauge({
      name: "buoy_datastore_connected",
      help: "1 while the datastore watch is established",
      registers: [registry],
    }),
    waiting: new Gauge({
      name: "buoy_floating_ip_waiting",
      help: "Floating IPs moving to this node, waiting for the old node to withdraw them",
      registers: [registry],
    }),
    routes: new Gauge({
      name: "buoy_routes",
      help: "Routes this node's agent owns (protocol 202), by kind: pod (floating IP here), via (another node), blackhole (own block)",
      labelNames: ["kind"] as const,
      registers: [registry],
    }),
    networkPolicies: new Gauge({
      name: "buoy_network_policies_present",
      help: "1 when the cluster holds NetworkPolicy objects, which buoy does not enforce (Kubernetes datastore only)",
      registers: options.networkPolicies ? [registry] : [],
    }),
    floatingIpsEnabled: new Gauge({
      name: "buoy_floating_ips_enabled",
      help: "1 when this node programs floating IPs (the CNI config's feature_control.floating_ips)",
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
