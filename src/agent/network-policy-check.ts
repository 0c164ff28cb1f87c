// The agent's word on NetworkPolicy, which buoy does not enforce: where the
// datastore can tell whether the cluster has any, a warning and a gauge.
import type { AgentSource } from "../datastore/agent-source.js";
import type { Logger } from "../log/logger.js";
import type { Metrics } from "./metrics.js";

/**
 * buoy enforces no NetworkPolicy (docs/security.md). Where the datastore can
 * tell (Kubernetes), each call asks whether the cluster has NetworkPolicy
 * objects: a warning when they appear (once, not every resync), the gauge
 * always. A failed ask is logged once per error and leaves the gauge as it was.
 * Each call resolves when its ask is done (at once while one is under way);
 * it never rejects.
 */
export function networkPolicyCheck(
  source: AgentSource,
  logger: Logger,
  gauge: Metrics["networkPolicies"],
): (() => Promise<void>) | undefined {
  const probe = source.networkPoliciesPresent;
  if (!probe) return undefined;
  const read = () => probe.call(source);
  let present: boolean | undefined;
  let failed: string | undefined;
  let asking = false;
  return () => {
    if (asking) return Promise.resolve();
    asking = true;
    return read()
      .then(
        (now) => {
          if (now && present !== true) {
            logger.log("warn", "agent.networkpolicy", {
              present: true,
              reason:
                "the cluster has NetworkPolicy objects and buoy enforces none: " +
                "traffic to pods and their floating IPs is not filtered by them",
            });
          } else if (!now && present === true) {
            logger.log("info", "agent.networkpolicy", { present: false });
          }
          present = now;
          failed = undefined;
          gauge.set(now ? 1 : 0);
        },
        (error: Error) => {
          if (error.message !== failed) {
            logger.log("warn", "agent.networkpolicy", { error: error.message });
          }
          failed = error.message;
        },
      )
      .finally(() => (asking = false));
  };
}
