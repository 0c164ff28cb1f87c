// Changing a running pod's floating IPs (etcd mode: the CLI; Kubernetes mode
// will feed the same planner from annotation edits). Pure: takes what was read
// in one request and returns one transaction (compares + operations) that
// updates the claims and the endpoint(s) together, with the same checks as at
// ADD, and the same change as units for when it is more than one transaction
// holds (ADR 0012: new claims, the endpoint, released claims). The node agent
// sees the changed endpoint and reprograms.
import type {
  FloatingIpClaim,
  IpNat,
  NamespaceRecord,
  Versioned,
  WorkloadEndpoint,
} from "../model/records.js";
import { podRef } from "../model/records.js";
import type { KvCompare, KvOp } from "../datastore/kv.js";
import { keys, type AllocationSnapshot } from "./store.js";
import { canonicalFloatingIps, FloatingIpError } from "../floating/annotation.js";
import type { ClaimHolder } from "../floating/claim-check.js";
import {
  etcdSnapshotLookup,
  planClaimCompares,
  type EtcdClaimLookup,
} from "./claims-transaction.js";
import type { PartedChange, TxnUnit } from "./plan-parts.js";
import {
  DEFAULT_MAX_FLOATING_IPS,
  planBindings,
  validateFloatingIpCount,
  validateInPools,
  validatePoolNamespaces,
} from "../floating/validate.js";

export interface LiveState extends AllocationSnapshot {
  endpoints: Versioned<WorkloadEndpoint>[];
  /** The namespaces' labels (a namespace without a record has none). */
  namespaces?: NamespaceRecord[];
}

export interface ChangePlan {
  compares: KvCompare[];
  ops: KvOp[];
  /** What the pod holds afterwards. */
  ipNATs: IpNat[];
  /** Whether it leaves from them afterwards (set by planFloatingIpEgress). */
  egress?: boolean;
  /**
   * The same change as units (ADR 0012), for when it is more than one
   * transaction holds: new claims in key order, the endpoint, released claims.
   */
  parted?: PartedChange;
  /** Each new claim's key with what it held before (a leftover of this container's). */
  previous?: Map<string, string | undefined>;
  /** The container whose claims the change writes. */
  containerID?: string;
}

/** The pod's current endpoint; `ref` is `namespace/pod` (or a pod in default). */
export function findEndpoint(state: LiveState, ref: string): Versioned<WorkloadEndpoint> {
  const slash = ref.indexOf("/");
  const [namespace, pod] =
    slash < 0 ? ["default", ref] : [ref.slice(0, slash), ref.slice(slash + 1)];
  const matches = state.endpoints.filter(
    (e) => e.value.namespace === namespace && e.value.pod === pod,
  );
  if (matches.length === 0)
    throw new FloatingIpError(`no workload endpoint for pod ${namespace}/${pod}`);
  // An older sandbox of the same pod may not have been deleted yet: take the
  // newest endpoint, eth0 first among its interfaces.
  const newest = [...matches].sort(
    (a, b) =>
      b.value.createdAt.localeCompare(a.value.createdAt) ||
      Number(b.value.endpoint === "eth0") - Number(a.value.endpoint === "eth0"),
  );
  return newest[0] as Versioned<WorkloadEndpoint>;
}

/**
 * Sets exactly `requested` as the pod's floating IPs (entries as in the
 * annotation), at most `maxFloatingIps` of them (the conflist's bound).
 */
export function planFloatingIpSet(
  state: LiveState,
  ref: string,
  requested: readonly string[],
  maxFloatingIps = DEFAULT_MAX_FLOATING_IPS,
  options: PlanOptions = {},
): ChangePlan {
  const endpoint = findEndpoint(state, ref);
  const wanted = canonicalFloatingIps(requested);
  validateFloatingIpCount(wanted, maxFloatingIps);
  validateInPools(wanted, state.pools);
  const held = new Set(endpoint.value.ipNATs.map((nat) => nat.externalIP));
  validateNamespace(
    state,
    wanted.filter((ip) => !held.has(ip)),
    endpoint.value.namespace,
  );
  const podIps = endpoint.value.ipNetworks.map((network) => network.split("/")[0] as string);
  const bindings = planBindings(wanted, podIps);
  const holder = holderOf(endpoint.value);
  const current = new Set(endpoint.value.ipNATs.map((nat) => nat.externalIP));
  const claimed = wanted.filter((ip) => !current.has(ip));
  const lookup = options.lookup ?? etcdSnapshotLookup(state);
  const compares: KvCompare[] = [
    endpointCompare(endpoint),
    ...planClaimCompares(claimed, holder, lookup),
  ];
  const ops: KvOp[] = [];
  const writes: TxnUnit[] = [];
  const removals: TxnUnit[] = [];
  const previous = new Map<string, string | undefined>();
  const now = new Date().toISOString();
  for (const binding of bindings.filter((b) => claimed.includes(b.externalIP))) {
    const claim: FloatingIpClaim = {
      ip: binding.externalIP,
      ...holder,
      internalIP: binding.internalIP,
      createdAt: now,
      ...markOf(options, binding.externalIP),
    };
    const put: KvOp = { put: keys.claim(binding.externalIP), value: JSON.stringify(claim) };
    ops.push(put);
    const held = lookup.claim(binding.externalIP);
    previous.set(put.put, held && JSON.stringify(held.value));
    writes.push({ compares: planClaimCompares([binding.externalIP], holder, lookup), ops: [put] });
  }
  for (const ip of current) {
    if (wanted.includes(ip)) continue;
    const claim = state.claims.find(
      (c) => c.value.ip === ip && c.value.containerID === holder.containerID,
    );
    if (!claim) continue;
    const compare: KvCompare = { key: keys.claim(ip), modRevision: Number(claim.revision) };
    compares.push(compare);
    ops.push({ delete: keys.claim(ip) });
    removals.push({ compares: [compare], ops: [{ delete: keys.claim(ip) }] });
  }
  const ipNATs = bindings.map(({ internalIP, externalIP }) => ({ internalIP, externalIP }));
  const put = endpointPut(endpoint.value, ipNATs);
  ops.push(put);
  const byKey = (a: TxnUnit, b: TxnUnit) => {
    const [x, y] = [firstKey(a), firstKey(b)];
    return x < y ? -1 : x > y ? 1 : 0;
  };
  const parted: PartedChange = {
    writes: writes.sort(byKey),
    anchor: { compares: [endpointCompare(endpoint)], ops: [put] },
    removals,
  };
  return { compares, ops, ipNATs, parted, previous, containerID: holder.containerID };
}

function firstKey(unit: TxnUnit): string {
  const [op] = unit.ops;
  return op === undefined ? "" : "put" in op ? op.put : op.delete;
}

/**
 * Moves a held floating IP to another pod: one transaction, old holder's
 * endpoint included; the target then holds at most `maxFloatingIps`.
 */
export function planFloatingIpMove(
  state: LiveState,
  ipText: string,
  targetRef: string,
  maxFloatingIps = DEFAULT_MAX_FLOATING_IPS,
  options: PlanOptions = {},
): ChangePlan {
  const ip = canonicalFloatingIps([ipText])[0] as string;
  const claim = state.claims.find((c) => c.value.ip === ip);
  if (!claim) throw new FloatingIpError(`floating IP ${ip} is not held by any pod; use set or add`);
  const target = findEndpoint(state, targetRef);
  if (target.value.containerID === claim.value.containerID) {
    throw new FloatingIpError(`floating IP ${ip} is already held by pod ${podRef(target.value)}`);
  }
  validateNamespace(state, [ip], target.value.namespace);
  const podIps = target.value.ipNetworks.map((network) => network.split("/")[0] as string);
  const [binding] = planBindings([ip], podIps);
  const source = state.endpoints.find(
    (e) =>
      e.value.containerID === claim.value.containerID &&
      e.value.ipNATs.some((nat) => nat.externalIP === ip),
  );
  const holder = holderOf(target.value);
  const moved: FloatingIpClaim = {
    ip,
    ...holder,
    internalIP: (binding as { internalIP: string }).internalIP,
    createdAt: new Date().toISOString(),
    ...markOf(options, ip),
  };
  const compares: KvCompare[] = [
    { key: keys.claim(ip), modRevision: Number(claim.revision) },
    endpointCompare(target),
  ];
  const ops: KvOp[] = [{ put: keys.claim(ip), value: JSON.stringify(moved) }];
  if (source) {
    compares.push(endpointCompare(source));
    ops.push(
      endpointPut(
        source.value,
        source.value.ipNATs.filter((nat) => nat.externalIP !== ip),
      ),
    );
  }
  const ipNATs = [
    ...target.value.ipNATs.filter((nat) => nat.externalIP !== ip),
    { internalIP: moved.internalIP, externalIP: ip },
  ];
  validateFloatingIpCount(
    ipNATs.map((nat) => nat.externalIP),
    maxFloatingIps,
  );
  ops.push(endpointPut(target.value, ipNATs));
  return { compares, ops, ipNATs };
}

/**
 * Opts the pod in to egress from its floating IPs, or out (ADR 0007): the
 * endpoint's `egress`, changed only if it is still the endpoint that was read.
 */
export function planFloatingIpEgress(state: LiveState, ref: string, on: boolean): ChangePlan {
  const endpoint = findEndpoint(state, ref);
  const value: WorkloadEndpoint = { ...endpoint.value, egress: true };
  if (!on) delete value.egress;
  return {
    compares: [endpointCompare(endpoint)],
    ops: [{ put: endpointKey(value), value: JSON.stringify(value) }],
    ipNATs: endpoint.value.ipNATs,
    egress: on,
  };
}

export interface PlanOptions {
  /** The claims' lookup, read for just these addresses (else made from `state`). */
  lookup?: EtcdClaimLookup;
  /**
   * The claim of `ip` is held for this FloatingIP (namespace/name): its
   * controller's mark, and `egress` when its spec asks that the pod leave from it.
   */
  floatingIP?: { ip: string; key: string; egress?: boolean };
}

function markOf(options: PlanOptions, ip: string): { floatingIP?: string; egress?: true } {
  const mark = options.floatingIP;
  if (mark?.ip !== ip) return {};
  return { floatingIP: mark.key, ...(mark.egress === true ? { egress: true } : {}) };
}

/** The pools of `ips` must select the pod's namespace (by its record's labels). */
function validateNamespace(state: LiveState, ips: readonly string[], namespace: string): void {
  const labels = state.namespaces?.find((record) => record.name === namespace)?.labels ?? {};
  validatePoolNamespaces(ips, state.pools, namespace, labels);
}

function holderOf(endpoint: WorkloadEndpoint): ClaimHolder {
  return {
    namespace: endpoint.namespace,
    pod: endpoint.pod,
    containerID: endpoint.containerID,
    node: endpoint.node,
  };
}

function endpointKey(endpoint: WorkloadEndpoint): string {
  return keys.endpoint(endpoint.node, endpoint.containerID, endpoint.endpoint);
}

function endpointCompare(endpoint: Versioned<WorkloadEndpoint>): KvCompare {
  return { key: endpointKey(endpoint.value), modRevision: Number(endpoint.revision) };
}

function endpointPut(endpoint: WorkloadEndpoint, ipNATs: IpNat[]): KvOp {
  return { put: endpointKey(endpoint), value: JSON.stringify({ ...endpoint, ipNATs }) };
}
