// Which pod holds a FloatingIP (issue 15): one Ready pod among those it
// selects, sticky (a holder that is still eligible keeps it, also when an
// older pod recovers), else the one Ready longest, ties broken by creation
// time, then name, then uid. Pure: the controller gathers the candidates
// from records buoy and the kubelet write (docs/security.md), never from
// anything the tenant can set beyond the selector itself.

/** One selected pod, as the controller sees it now. */
export interface Candidate {
  namespace: string;
  pod: string;
  podUID: string;
  /** The pod's node (spec.nodeName), which its endpoint object must name too. */
  node: string;
  /** The sandbox the endpoint object records, and its interface and network. */
  containerID: string;
  endpoint: string;
  network?: string;
  /** The pod's address of the floating IP's family (the NAT's target). */
  internalIP: string;
  /** When the pod's Ready condition last turned True (ms); undefined when not Ready. */
  readySince: number | undefined;
  /** Creation time (ms): the first tie-break. */
  createdAt: number;
  /** The pod is being deleted (deletionTimestamp set). */
  terminating: boolean;
  /** Its node's status Lease is renewed (the node's agent is alive). */
  nodeLive: boolean;
}

/** Who holds it now, as the claim says. */
export interface CurrentHolder {
  podUID?: string;
  containerID: string;
  node: string;
}

export type HolderChoice =
  | { holder: Candidate; kept: boolean }
  /** No pod may hold it; `why` says which case (the condition's reason). */
  | { holder: undefined; why: "NoPodSelected" | "NoReadyPod" };

/** Why a holder must give the address up, or undefined while it may keep it. */
export type LossReason = "Deleted" | "NotReady" | "NodeLost";

/** Whether `candidate` may hold the address: Ready, not being deleted, on a live node. */
export function eligible(candidate: Candidate): boolean {
  return candidate.readySince !== undefined && !candidate.terminating && candidate.nodeLive;
}

/** Why `current`'s pod may no longer hold it (`candidate` is it, or undefined when gone). */
export function lossReason(candidate: Candidate | undefined): LossReason | undefined {
  if (!candidate || candidate.terminating) return "Deleted";
  if (!candidate.nodeLive) return "NodeLost";
  if (candidate.readySince === undefined) return "NotReady";
  return undefined;
}

/** The candidate that is the claim's holder: the same sandbox on the same node. */
export function currentCandidate(
  candidates: readonly Candidate[],
  current: CurrentHolder | undefined,
): Candidate | undefined {
  if (!current) return undefined;
  return candidates.find(
    (candidate) =>
      candidate.containerID === current.containerID &&
      candidate.node === current.node &&
      (current.podUID === undefined || candidate.podUID === current.podUID),
  );
}

/**
 * The holder: the current one while eligible; else the eligible candidate
 * Ready longest. When none is eligible a current holder that is only not
 * Ready keeps it (an address on a pod failing its probe beats none); one that
 * is gone, being deleted or on a lost node does not.
 */
export function chooseHolder(
  candidates: readonly Candidate[],
  current: CurrentHolder | undefined,
): HolderChoice {
  const holding = currentCandidate(candidates, current);
  if (holding && eligible(holding)) return { holder: holding, kept: true };
  const [best] = candidates.filter(eligible).sort(byReadyLongest);
  if (best) return { holder: best, kept: false };
  if (holding && lossReason(holding) === "NotReady") return { holder: holding, kept: true };
  return { holder: undefined, why: candidates.length === 0 ? "NoPodSelected" : "NoReadyPod" };
}

function byReadyLongest(a: Candidate, b: Candidate): number {
  return (
    (a.readySince ?? 0) - (b.readySince ?? 0) ||
    a.createdAt - b.createdAt ||
    compare(a.pod, b.pod) ||
    compare(a.podUID, b.podUID)
  );
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
