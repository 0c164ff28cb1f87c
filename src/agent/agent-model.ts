// The agent's in-memory copy of what its plan reads (issue 14): every record
// by kind and key, decoded once per version, with the indexes an incremental
// plan needs: which endpoints name an address, which endpoints use a host
// interface, which claim and which nodes' statuses an address has. Each
// change says what it touched, so that a change plans only what it touches.
import type { RawRecord, RecordKind } from "../datastore/agent-source.js";
import { fitRecord } from "../model/record-shapes.js";
import type { FloatingIpClaim, FloatingIpStatus, WorkloadEndpoint } from "../model/records.js";
import { canonicalAddress } from "../net/address.js";

type Decoded<K extends RecordKind> = NonNullable<ReturnType<typeof fitRecord<K>>>;

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
}

export function nothingTouched(): Touched {
  return { addresses: new Set(), endpoints: new Set(), global: new Set(), othersStatus: false };
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
  readonly #byAddress = new Map<string, Set<string>>();
  readonly #byInterface = new Map<string, Set<string>>();
  readonly #claims = new Map<string, Map<string, FloatingIpClaim>>();
  readonly #statuses = new Map<string, Map<string, FloatingIpStatus>>();
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
    }
    if (before && before.value === undefined) this.malformed -= 1;
    if (record && value === undefined) this.malformed += 1;
    this.#unindex(kind, key, before?.value, touched);
    if (record) records.set(key, { version: record.version, value });
    else records.delete(key);
    this.#index(kind, key, value, touched);
    if (kind !== "endpoint" && kind !== "claim" && kind !== "status") touched.global.add(kind);
  }

  /** Makes the model `state` (a complete read): what differs is applied and touched. */
  replaceAll(state: Record<RecordKind, readonly RawRecord[]>): Touched {
    const touched = nothingTouched();
    for (const kind of KINDS) {
      const records = this.#records.get(kind) as Map<string, Entry>;
      const seen = new Set<string>();
      for (const record of state[kind]) {
        seen.add(record.key);
        this.apply(kind, record.key, record, touched);
      }
      for (const key of [...records.keys()]) {
        if (!seen.has(key)) this.apply(kind, key, undefined, touched);
      }
    }
    return touched;
  }

  /** The decoded records of a kind, in key order of arrival (complete plans read these). */
  all<K extends RecordKind>(kind: K): Decoded<K>[] {
    const values: Decoded<K>[] = [];
    for (const entry of (this.#records.get(kind) as Map<string, Entry>).values()) {
      if (entry.value !== undefined) values.push(entry.value as Decoded<K>);
    }
    return values;
  }

  endpoint(key: string): WorkloadEndpoint | undefined {
    return this.#records.get("endpoint")?.get(key)?.value as WorkloadEndpoint | undefined;
  }

  /** Keys of the endpoints whose ipNATs name `address` (either side, any spelling). */
  endpointsNaming(address: string): ReadonlySet<string> {
    return this.#byAddress.get(address) ?? EMPTY;
  }

  /** Keys of the endpoints whose host-side interface is `name`. */
  endpointsOn(name: string): ReadonlySet<string> {
    return this.#byInterface.get(name) ?? EMPTY;
  }

  /** The claim of an address (canonical); of two records for one address, the last by key, as a complete read has it. */
  claim(address: string): FloatingIpClaim | undefined {
    const claims = this.#claims.get(address);
    if (!claims) return undefined;
    let last: string | undefined;
    for (const key of claims.keys()) if (last === undefined || key > last) last = key;
    return claims.get(last as string);
  }

  /** The statuses recorded for an address (canonical), by any node. */
  statuses(address: string): FloatingIpStatus[] {
    return [...(this.#statuses.get(address)?.values() ?? [])];
  }

  /** The node, other than this one, that reports translating `address`: the first by name. */
  hostedElsewhere(address: string): string | undefined {
    let first: string | undefined;
    for (const status of this.#statuses.get(address)?.values() ?? []) {
      if (status.node !== this.node && (first === undefined || status.node < first)) {
        first = status.node;
      }
    }
    return first;
  }

  #index(kind: RecordKind, key: string, value: unknown, touched: Touched): void {
    if (value === undefined) return;
    if (kind === "endpoint") {
      const endpoint = value as WorkloadEndpoint;
      touched.endpoints.add(key);
      for (const address of endpointAddresses(endpoint)) {
        touched.addresses.add(address);
        addTo(this.#byAddress, address, key);
      }
      addTo(this.#byInterface, endpoint.interfaceName, key);
    } else if (kind === "claim") {
      const claim = value as FloatingIpClaim;
      const address = canonicalAddress(claim.ip) ?? claim.ip;
      touched.addresses.add(address);
      let claims = this.#claims.get(address);
      if (!claims) this.#claims.set(address, (claims = new Map()));
      claims.set(key, claim);
    } else if (kind === "status") {
      const status = value as FloatingIpStatus;
      const address = canonicalAddress(status.ip) ?? status.ip;
      touched.addresses.add(address);
      if (status.node !== this.node) touched.othersStatus = true;
      let statuses = this.#statuses.get(address);
      if (!statuses) this.#statuses.set(address, (statuses = new Map()));
      statuses.set(key, status);
    }
  }

  #unindex(kind: RecordKind, key: string, value: unknown, touched: Touched): void {
    if (value === undefined) return;
    if (kind === "endpoint") {
      const endpoint = value as WorkloadEndpoint;
      touched.endpoints.add(key);
      for (const address of endpointAddresses(endpoint)) {
        touched.addresses.add(address);
        removeFrom(this.#byAddress, address, key);
      }
      removeFrom(this.#byInterface, endpoint.interfaceName, key);
    } else if (kind === "claim" || kind === "status") {
      const record = value as { ip: string; node: string };
      const address = canonicalAddress(record.ip) ?? record.ip;
      touched.addresses.add(address);
      if (kind === "status" && record.node !== this.node) touched.othersStatus = true;
      const index = kind === "claim" ? this.#claims : this.#statuses;
      const byKey = index.get(address);
      byKey?.delete(key);
      if (byKey?.size === 0) index.delete(address);
    }
  }
}

const EMPTY: ReadonlySet<string> = new Set();

/** Both sides of every ipNAT of an endpoint, as written and canonical. */
export function endpointAddresses(endpoint: WorkloadEndpoint): Set<string> {
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

function addTo(index: Map<string, Set<string>>, name: string, key: string): void {
  let keys = index.get(name);
  if (!keys) index.set(name, (keys = new Set()));
  keys.add(key);
}

function removeFrom(index: Map<string, Set<string>>, name: string, key: string): void {
  const keys = index.get(name);
  keys?.delete(key);
  if (keys?.size === 0) index.delete(name);
}
