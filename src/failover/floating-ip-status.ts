// A FloatingIP's status (issue 15): the holder and the conditions Assigned,
// Programmed and Announced, each with a reason and the time it last changed.
// Pure: the controller passes what it decided and what the holder's node
// reported on the claim.
import type { Candidate } from "./choose-holder.js";
import type { Condition, FloatingIpStatusShape } from "./floating-ip.js";

/** What the controller decided for one FloatingIP. */
export type Assignment =
  { holder: Candidate; since: string } | { holder: undefined; reason: string; message: string };

/** The claim as the holder's node reported on it (its status subresource). */
export interface ClaimReport {
  node: string;
  /** metadata.generation of the claim: bumped by every move. */
  generation: number | undefined;
  /** The generation the node programmed (status.observedGeneration). */
  observedGeneration: number | undefined;
  programmed: boolean;
  announced: string | undefined;
}

/** The status to write; `previous` keeps each condition's transition time while it holds. */
export function planFloatingIpStatus(
  previous: FloatingIpStatusShape,
  generation: number,
  address: string | undefined,
  assignment: Assignment,
  claim: ClaimReport | undefined,
  now: string,
): FloatingIpStatusShape {
  const condition = (
    type: Condition["type"],
    status: Condition["status"],
    reason: string,
    message: string,
  ): Condition => {
    const before = previous.conditions?.find((existing) => existing.type === type);
    return {
      type,
      status,
      reason,
      message,
      lastTransitionTime: before && before.status === status ? before.lastTransitionTime : now,
      observedGeneration: generation,
    };
  };
  const { holder } = assignment;
  if (!holder) {
    return {
      ...(address !== undefined ? { address } : {}),
      observedGeneration: generation,
      conditions: [
        condition("Assigned", "False", assignment.reason, assignment.message),
        condition("Programmed", "False", "NotAssigned", "no pod holds the address"),
        condition("Announced", "False", "NotAssigned", "no pod holds the address"),
      ],
    };
  }
  const current =
    claim !== undefined &&
    claim.node === holder.node &&
    claim.programmed &&
    claim.generation !== undefined &&
    claim.observedGeneration === claim.generation;
  const where = `pod ${holder.pod} on node ${holder.node}`;
  return {
    ...(address !== undefined ? { address } : {}),
    holder: { pod: holder.pod, node: holder.node },
    since: assignment.since,
    ready: holder.readySince !== undefined,
    observedGeneration: generation,
    conditions: [
      condition("Assigned", "True", "Held", `held by ${where}`),
      current
        ? condition("Programmed", "True", "Programmed", `node ${holder.node} translates it`)
        : condition("Programmed", "False", "Pending", `waiting for node ${holder.node}`),
      current && claim.announced
        ? condition(
            "Announced",
            "True",
            "Announced",
            `announced by node ${holder.node} (${claim.announced})`,
          )
        : condition(
            "Announced",
            "False",
            current ? "NotAnnounced" : "Pending",
            current ? "the node does not announce it" : `waiting for node ${holder.node}`,
          ),
    ],
  };
}
