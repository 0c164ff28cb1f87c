// The agent's in-memory copy of what its plan reads (issue 14): every record
// by kind and key, decoded once per version, with the indexes an incremental
// plan needs: which endpoints name an address, which endpoints use a host
// interface, which claim and which nodes' statuses an address has. Each
// change says what it touched, so that a change plans only what it touches.
import type { RawRecord, RecordKind } from "../datastore/agent-source.js";
import { fitRecord } from "../model/record-shapes.js";
import type { FloatingIpClaim, FloatingIpStatus, WorkloadEndpoint } from "../model/records.js";
import { canonicalAddress } from "../net/address.js";
import type { PlannedEndpoint } from "../dataplane/nat-plan.js";

/** What the model keeps of an endpoint and of a claim: what planNat reads. */
export type PlannedClaim = Pick<FloatingIpClaim, "ip" | "containerID" | "node" | "egress">;

type Decoded<K extends RecordKind> = K extends "endpoint"
  ? PlannedEndpoint
  : K extends "claim"
    ? PlannedClaim
    : NonNullable<ReturnType<typeof fitRecord<K>>>;

interface Entry {
  version: string;
  /** Undefined: the record does not have the shape of its kind (reported once, planned as absent). */
  value: unknown;
}

/** What a batch of changes touched. */
export interface Touched {
  /** Addresses named by a changed endpoint, claim or status, as written and canonical. */
  addresses: Set<string>;
  /** Keys of the endpoints that changed (put or deleted). */
  endpoints: Set<string>;
  /** Kinds every plan reads (pools, nodes, affinities, peers, borrowed addresses) that changed. */
  global: Set<RecordKind>;
  /** Whether a status of another node changed: direct routing routes every one. */
  othersStatus: boolean;
  /**
   * Addresses (canonical) whose status record of this node changed: no plan
   * reads them (its own writes coming back), the record is only compared
   * with what it should say.
   */
  ownStatuses: Set<string>;
}

/** A complete read being applied page by page (AgentModel.replacing). */
export interface Replacement {
  take(kind: RecordKind, records: readonly RawRecord[]): void;
  /** Deletes what no page held; what the whole read touched. */
  finish(): Touched;
}

export function nothingTouched(): Touched {
  return {
    addresses: new Set(),
    endpoints: new Set(),
    global: new Set(),
    othersStatus: false,
    ownStatuses: new Set(),
  };
}

const KINDS: readonly RecordKind[] = [
  "endpoint",
  "claim",
  "pool",
  "status",
  "node",
  "affinity",
  "peer",
  "borrowed",
];

export class AgentModel {
  readonly #records = new Map<RecordKind, Map<string, Entry>>(
    KINDS.map((kind) => [kind, new Map()]),
  );
  readonly #byAddress = new KeyIndex();
  readonly #byInterface = new KeyIndex();
  readonly #claims = new Index<PlannedClaim>();
  readonly #statuses = new Index<FloatingIpStatus>();
  /** Records held that do not fit their kind. */
  malformed = 0;

  /** `malformed` hears of each record version that does not fit its kind. */
  constructor(
    private readonly node: string,
    private readonly onMalformed: (kind: RecordKind, record: RawRecord) => void,
  ) {}

  /** Puts (`record` set) or deletes one record; unchanged versions cost nothing. */
  apply(kind: RecordKind, key: string, record: RawRecord | undefined, touched: Touched): void {
    const records = this.#records.get(kind) as Map<string, Entry>;
    const before = records.get(key);
    if (record && before?.version === record.version) return;
    let value: unknown;
    if (record) {
      value = record.value === undefined ? undefined : fitRecord(kind, record.value);
      if (value === undefined) this.onMalformed(kind, record);
      else value = slim(kind, value);
    }
    if (before && before.value === undefined) this.malformed -= 1;
    if (record && value === undefined) this.malformed += 1;
    this.#link(kind, key, before?.value, touched, false);
    if (record) records.set(key, { version: record.version, value });
    else records.delete(key);
    this.#link(kind, key, value, touched, true);
    if (kind !== "endpoint" && kind !== "claim" && kind !== "status") touched.global.add(kind);
  }

  /** Makes the model `state` (a complete read): what differs is applied and touched. */
  replaceAll(state: Record<RecordKind, readonly RawRecord[]>): Touched {
    const replacing = this.replacing();
    for (const kind of KINDS) replacing.take(kind, state[kind]);
    return replacing.finish();
  }

  /**
   * A complete read that arrives in pages: each page is applied as it comes
   * (what differs is touched), and `finish` deletes what no page held.
   */
  replacing(): Replacement {
    const touched = nothingTouched();
    const seen = new Map<RecordKind, Set<string>>(KINDS.map((kind) => [kind, new Set()]));
    return {
      take: (kind, records) => {
        const keys = seen.get(kind) as Set<string>;
        for (const record of records) {
          keys.add(record.key);
          this.apply(kind, record.key, record, touched);
        }
      },
      finish: () => {
        for (const kind of KINDS) {
          const keys = seen.get(kind) as Set<string>;
          for (const key of [...(this.#records.get(kind) as Map<string, Entry>).keys()]) {
            if (!keys.has(key)) this.apply(kind, key, undefined, touched);
          }
        }
        return touched;
      },
    };
  }

  /** The decoded records of a kind, in key order of arrival (complete plans read these). */
  all<K extends RecordKind>(kind: K): Decoded<K>[] {
    const values: Decoded<K>[] = [];
    for (const entry of (this.#records.get(kind) as Map<string, Entry>).values()) {
      if (entry.value !== undefined) values.push(entry.value as Decoded<K>);
    }
    return values;
  }

  endpoint(key: string): PlannedEndpoint | undefined {
    return this.#records.get("endpoint")?.get(key)?.value as PlannedEndpoint | undefined;
  }

  /** Keys of the endpoints whose ipNATs name `address` (either side, any spelling). */
  endpointsNaming(address: string): Iterable<string> {
    return this.#byAddress.keys(address);
  }

  /** Keys of the endpoints whose host-side interface is `name`. */
  endpointsOn(name: string): Iterable<string> {
    return this.#byInterface.keys(name);
  }

  /** The claim of an address (canonical); of two records for one address, the last by key, as a complete read has it. */
  claim(address: string): PlannedClaim | undefined {
    let last: [string, PlannedClaim] | undefined;
    for (const entry of this.#claims.entries(address)) {
      if (last === undefined || entry[0] > last[0]) last = entry;
    }
    return last?.[1];
  }

  /** The statuses recorded for an address (canonical), by any node. */
  statuses(address: string): FloatingIpStatus[] {
    return [...this.#statuses.entries(address)].map(([, status]) => status);
  }

  /** The node, other than this one, that reports translating `address`: the first by name. */
  hostedElsewhere(address: string): string | undefined {
    let first: string | undefined;
    for (const [, status] of this.#statuses.entries(address)) {
      if (status.node !== this.node && (first === undefined || status.node < first)) {
        first = status.node;
      }
    }
    return first;
  }

  /** Adds a record to the indexes (`adding`) or takes it out, noting what it touched. */
  #link(kind: RecordKind, key: string, value: unknown, touched: Touched, adding: boolean): void {
    if (value === undefined) return;
    if (kind === "endpoint") {
      const endpoint = value as PlannedEndpoint;
      touched.endpoints.add(key);
      for (const address of endpointAddresses(endpoint)) {
        touched.addresses.add(address);
        if (adding) this.#byAddress.add(address, key);
        else this.#byAddress.delete(address, key);
      }
      if (adding) this.#byInterface.add(endpoint.interfaceName, key);
      else this.#byInterface.delete(endpoint.interfaceName, key);
    } else if (kind === "claim" || kind === "status") {
      const record = value as { ip: string; node: string };
      const address = canonicalAddress(record.ip) ?? record.ip;
      if (kind === "status") this.#touchStatus(record.node, address, touched);
      else touched.addresses.add(address);
      if (!adding) (kind === "claim" ? this.#claims : this.#statuses).delete(address, key);
      else if (kind === "claim") this.#claims.add(address, key, value as PlannedClaim);
      else this.#statuses.add(address, key, value as FloatingIpStatus);
    }
  }

  #touchStatus(node: string, address: string, touched: Touched): void {
    if (node === this.node) {
      touched.ownStatuses.add(address);
    } else {
      touched.addresses.add(address);
      touched.othersStatus = true;
    }
  }
}

/**
 * Only what the plans read of an endpoint or a claim: at 100k bindings the
 * records as written (MAC, network, timestamps, pod UID) are most of the
 * agent's memory.
 */
function slim(kind: RecordKind, value: unknown): unknown {
  if (kind === "endpoint") {
    const e = value as WorkloadEndpoint;
    const endpoint: PlannedEndpoint = {
      node: e.node,
      namespace: e.namespace,
      pod: e.pod,
      containerID: e.containerID,
      endpoint: e.endpoint,
      interfaceName: e.interfaceName,
      ipNetworks: e.ipNetworks,
      ipNATs: e.ipNATs.map(({ internalIP, externalIP }) => ({ internalIP, externalIP })),
      ...(e.egress === true ? { egress: true } : {}),
    };
    return endpoint;
  }
  if (kind === "claim") {
    const { ip, containerID, node, egress } = value as FloatingIpClaim;
    return { ip, containerID, node, ...(egress === true ? { egress } : {}) } satisfies PlannedClaim;
  }
  return value;
}

/** Both sides of every ipNAT of an endpoint, as written and canonical. */
export function endpointAddresses(endpoint: Pick<WorkloadEndpoint, "ipNATs">): Set<string> {
  const addresses = new Set<string>();
  for (const nat of endpoint.ipNATs) {
    for (const text of [nat.externalIP, nat.internalIP]) {
      addresses.add(text);
      const canonical = canonicalAddress(text);
      if (canonical !== undefined) addresses.add(canonical);
    }
  }
  return addresses;
}

/**
 * Values by name, then by record key. Almost every name has one record, so
 * that one is held without a Map of its own (a Map per address was a third
 * of the model's memory at 100k bindings).
 */
class Index<V> {
  readonly #names = new Map<string, [string, V] | Map<string, V>>();

  add(name: string, key: string, value: V): void {
    const held = this.#names.get(name);
    if (held === undefined || (Array.isArray(held) && held[0] === key)) {
      this.#names.set(name, [key, value]);
    } else if (Array.isArray(held)) {
      this.#names.set(name, new Map([held, [key, value]]));
    } else {
      held.set(key, value);
    }
  }

  delete(name: string, key: string): void {
    const held = this.#names.get(name);
    if (held === undefined) return;
    if (Array.isArray(held)) {
      if (held[0] === key) this.#names.delete(name);
      return;
    }
    held.delete(key);
    if (held.size === 1) this.#names.set(name, [...held][0] as [string, V]);
  }

  *entries(name: string): IterableIterator<[string, V]> {
    const held = this.#names.get(name);
    if (held === undefined) return;
    if (Array.isArray(held)) yield held;
    else yield* held;
  }

  *keys(name: string): IterableIterator<string> {
    for (const [key] of this.entries(name)) yield key;
  }
}

/**
 * Record keys by name, like Index without values: a name with one key holds
 * the key itself (Index's [key, value] pair was 64 bytes per address and
 * binding, ~13 MB at 100k bindings).
 */
class KeyIndex {
  readonly #names = new Map<string, string | Set<string>>();

  add(name: string, key: string): void {
    const held = this.#names.get(name);
    if (held === undefined || held === key) this.#names.set(name, key);
    else if (typeof held === "string") this.#names.set(name, new Set([held, key]));
    else held.add(key);
  }

  delete(name: string, key: string): void {
    const held = this.#names.get(name);
    if (held === undefined) return;
    if (typeof held === "string") {
      if (held === key) this.#names.delete(name);
      return;
    }
    held.delete(key);
    if (held.size === 1) this.#names.set(name, [...held][0] as string);
  }

  *keys(name: string): IterableIterator<string> {
    const held = this.#names.get(name);
    if (held === undefined) return;
    if (typeof held === "string") yield held;
    else yield* held;
  }
}
