// `buoy ipam check` (calicoctl's) and what `buoy ipam release` may release:
// IPAM's allocations against the workload endpoints buoy recorded and the
// floating-IP claims. Problems: an address allocated to a container that has
// no endpoint holding it (leaked: a container gone without its DEL; an ADD
// in flight looks the same for a moment), an endpoint's address that IPAM
// does not hold for it (it can be handed out a second time), an address of a
// pod that exists but has no buoy endpoint (another plugin's: Calico's
// before a move; not released), a claim whose
// container has no endpoint (the claim collector releases it after its
// grace), and a floating IP that is also allocated to a pod. Pure.
import type { DatastoreState } from "../datastore/datastore-state.js";
import type { AllocationOwner, IpamBlock } from "../model/records.js";
import { findPool } from "../floating/validate.js";
import { canonicalAddress } from "../net/address.js";
import { renderTable } from "../text/table.js";
import { CliError } from "./cli-error.js";

export type ProblemKind =
  "leaked" | "no-endpoint" | "unallocated" | "orphan-claim" | "claimed-and-allocated";

export interface IpamProblem {
  kind: ProblemKind;
  ip: string;
  /** namespace/pod, when known. */
  pod: string;
  node: string;
  container: string;
  detail: string;
}

export interface IpamReport {
  blocks: number;
  allocations: number;
  /** Allocations to something other than a pod (Calico's tunnel addresses): not checked, never released. */
  nonPod: number;
  endpoints: number;
  claims: number;
  problems: IpamProblem[];
}

export interface Allocation {
  ip: string;
  block: IpamBlock;
  owner: AllocationOwner;
}

export function allocations(state: DatastoreState): Allocation[] {
  return state.blocks.flatMap(({ value: block }) =>
    Object.entries(block.allocations).map(([ip, owner]) => ({ ip, block, owner })),
  );
}

/** The container an allocation was given to, when it was a pod's (<network>.<container>). */
export function containerOf(owner: AllocationOwner): string | undefined {
  if (owner.containerID !== undefined) return owner.containerID;
  const dot = owner.handle.indexOf(".");
  return owner.pod !== undefined ? owner.handle.slice(dot + 1) : undefined;
}

/** The recorded endpoints of the allocation's container on its node, on any network or interface. */
export function containerEndpoints(state: DatastoreState, allocation: Allocation) {
  const container = containerOf(allocation.owner);
  return state.endpoints
    .map((entry) => entry.value)
    .filter(
      (endpoint) =>
        endpoint.node === allocation.owner.node &&
        (endpoint.containerID === container ||
          `${endpoint.network}.${endpoint.containerID}` === allocation.owner.handle),
    );
}

/** Whether a recorded endpoint of the allocation's container holds its address. */
export function endpointHolding(state: DatastoreState, allocation: Allocation) {
  const { owner, ip } = allocation;
  return state.endpoints
    .map((entry) => entry.value)
    .find(
      (endpoint) =>
        (owner.containerID !== undefined
          ? endpoint.containerID === owner.containerID
          : owner.handle === `${endpoint.network}.${endpoint.containerID}` ||
            owner.handle === endpoint.containerID) &&
        endpoint.ipNetworks.some((network) => canonicalAddress(network.split("/")[0] ?? "") === ip),
    );
}

export function checkIpam(state: DatastoreState): IpamReport {
  const problems: IpamProblem[] = [];
  const all = allocations(state);
  const allocated = new Map(all.map((allocation) => [allocation.ip, allocation]));
  const pools = state.pools.map((entry) => entry.value);
  const live = new Set(state.livePods ?? []);
  let nonPod = 0;
  for (const allocation of all) {
    if (containerOf(allocation.owner) === undefined) {
      nonPod++;
      continue;
    }
    if (endpointHolding(state, allocation)) continue;
    const pod = podOf(allocation.owner);
    const [sibling] = containerEndpoints(state, allocation);
    problems.push(
      sibling
        ? {
            kind: "no-endpoint",
            ...ownerOf(allocation.ip, allocation.owner),
            detail:
              `allocated in block ${allocation.block.cidr}; no workload endpoint has it, and its container ` +
              `still has ${sibling.endpoint} (another network or interface): its DEL releases it`,
          }
        : pod !== undefined && live.has(pod)
          ? {
              kind: "no-endpoint",
              ...ownerOf(allocation.ip, allocation.owner),
              detail:
                `allocated in block ${allocation.block.cidr}; no workload endpoint has it, and its pod ` +
                "exists: set up by another plugin (Calico, before buoy took over) or mid-ADD; its DEL releases it",
            }
          : {
              kind: "leaked",
              ...ownerOf(allocation.ip, allocation.owner),
              detail:
                `allocated in block ${allocation.block.cidr}, and no workload endpoint of its container has it ` +
                "(an ADD in flight looks the same for a moment: check again)",
            },
    );
  }
  const containers = new Set(state.endpoints.map((entry) => entry.value.containerID));
  for (const { value: endpoint } of state.endpoints) {
    for (const network of endpoint.ipNetworks) {
      const ip = canonicalAddress(network.split("/")[0] ?? "") ?? "";
      if (!findPool(ip, pools)) continue; // another IPAM's address
      const allocation = allocated.get(ip);
      if (allocation && endpointHolding(state, allocation) === endpoint) continue;
      problems.push({
        kind: "unallocated",
        ip,
        pod: `${endpoint.namespace}/${endpoint.pod}`,
        node: endpoint.node,
        container: endpoint.containerID,
        detail: allocation
          ? `the workload endpoint's address is allocated to another container (${allocation.owner.handle})`
          : "the workload endpoint's address is allocated in no block: IPAM can hand it out again",
      });
    }
  }
  for (const { value: claim } of state.claims) {
    const holder = {
      ip: claim.ip,
      pod: `${claim.namespace}/${claim.pod}`,
      node: claim.node,
      container: claim.containerID,
    };
    if (!containers.has(claim.containerID)) {
      problems.push({
        kind: "orphan-claim",
        ...holder,
        detail: "claimed for a container with no workload endpoint (collected after its grace)",
      });
    }
    const allocation = allocated.get(claim.ip);
    if (allocation) {
      problems.push({
        kind: "claimed-and-allocated",
        ...holder,
        detail: `a floating IP that is also allocated in block ${allocation.block.cidr} (${allocation.owner.handle})`,
      });
    }
  }
  problems.sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : a.kind < b.kind ? -1 : 1));
  return {
    blocks: state.blocks.length,
    allocations: all.length,
    nonPod,
    endpoints: state.endpoints.length,
    claims: state.claims.length,
    problems,
  };
}

export function renderIpamCheck(report: IpamReport): string {
  const summary =
    `Checked ${report.blocks} IPAM block(s), ${report.allocations} allocated address(es), ` +
    `${report.endpoints} workload endpoint(s) and ${report.claims} floating-IP claim(s).\n` +
    (report.nonPod > 0
      ? `${report.nonPod} address(es) are allocated to something other than a pod (Calico's tunnel addresses): not checked.\n`
      : "");
  if (report.problems.length === 0) return `${summary}No problems found.\n`;
  return (
    summary +
    `Found ${report.problems.length} problem(s):\n` +
    renderTable(
      ["IP", "PROBLEM", "POD", "NODE", "CONTAINER", "DETAIL"],
      report.problems.map((problem) => [
        problem.ip,
        problem.kind,
        problem.pod,
        problem.node,
        problem.container,
        problem.detail,
      ]),
    )
  );
}

/**
 * The allocation `buoy ipam release` may release: allocated to a pod's
 * container of which no workload endpoint is left on its node (on any
 * network or interface), and (Kubernetes) not to a pod the API server still
 * has, being deleted or not, unless `force` (a recreated pod of the same
 * name, whose old sandbox's address this is). Throws CliError otherwise.
 */
export function releasable(
  state: DatastoreState,
  ipText: string,
  options: { force?: boolean } = {},
): Allocation {
  const ip = canonicalAddress(ipText);
  if (ip === undefined) throw new CliError(`'${ipText}' is not an IP address`);
  const allocation = allocations(state).find((candidate) => candidate.ip === ip);
  if (!allocation) {
    const claim = state.claims.find((entry) => entry.value.ip === ip)?.value;
    throw new CliError(
      claim
        ? `${ip} is not allocated: it is a floating IP held by ${claim.namespace}/${claim.pod} (buoy floatingip remove)`
        : `${ip} is not allocated in any IPAM block`,
    );
  }
  if (containerOf(allocation.owner) === undefined) {
    throw new CliError(
      `${ip} is allocated to ${allocation.owner.handle}, not to a pod: buoy does not release it`,
    );
  }
  const [endpoint] = containerEndpoints(state, allocation);
  if (endpoint) {
    throw new CliError(
      `${ip} belongs to container ${endpoint.containerID}, which still has workload endpoint ` +
        `${endpoint.namespace}/${endpoint.pod} (${endpoint.endpoint}) on node ${endpoint.node}: its DEL releases it`,
    );
  }
  const pod = podOf(allocation.owner);
  if (!options.force && pod !== undefined && (state.livePods ?? []).includes(pod)) {
    throw new CliError(
      `${ip} is allocated to pod ${pod}, which exists: its DEL releases it. If that pod was ` +
        `recreated and this is its old sandbox's address, add --force`,
    );
  }
  return allocation;
}

function podOf(owner: AllocationOwner): string | undefined {
  return owner.pod ? `${owner.namespace ?? "default"}/${owner.pod}` : undefined;
}

function ownerOf(ip: string, owner: AllocationOwner) {
  return {
    ip,
    pod: owner.pod ? `${owner.namespace ?? "default"}/${owner.pod}` : "-",
    node: owner.node,
    container: owner.containerID ?? owner.handle,
  };
}
