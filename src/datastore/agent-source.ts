// The agent's side of the datastore: what one node's plan reads, the watches
// that say when to read again, and the node's acknowledgements (ADR 0004: a
// floating IP is programmed on a new node only when no other live node
// reports it). EtcdAgentSource keeps them as records under a lease;
// KubeAgentSource derives endpoints from the node's pods and keeps them in the
// node's Lease object.
import type { FloatingIpStatus } from "../model/records.js";

/** One record as read, before its shape is checked; `key@version` names it in reports. */
export interface RawRecord {
  key: string;
  version: string;
  /** The parsed value; undefined when it was not even JSON. */
  value: unknown;
}

export type RecordKind =
  "endpoint" | "claim" | "pool" | "status" | "node" | "affinity" | "peer" | "borrowed";

export type AgentState = Record<RecordKind, RawRecord[]>;

/** One record put (`record`) or deleted (undefined) since the last read. */
export interface RecordChange {
  kind: RecordKind;
  key: string;
  record: RawRecord | undefined;
}

export interface WatchHandlers {
  /** Something the plan reads changed. */
  changed(): void;
  /** Every watch is established (true), or one was lost and is being re-established (false). */
  connected(up: boolean): void;
}

export interface AgentSource {
  /** What the node's plan reads, complete as of some moment after the last changed(). */
  read(): Promise<AgentState>;
  /**
   * read(), handed to `take` in pages as they arrive, so that the whole read
   * is never held at once (issue 14: 100k endpoints in one response, and
   * their copies while decoded, were most of the agent's peak memory).
   * Without this method, read().
   */
  readInPages?(take: (kind: RecordKind, records: readonly RawRecord[]) => void): Promise<void>;
  /**
   * Only the records changed since the last read() or readChanges(), read
   * by key (issue 14: a change costs the same whatever the cluster holds);
   * undefined when the source cannot tell which (a watch re-established
   * after a gap): read() then. Without this method, read() every time.
   */
  readChanges?(): Promise<RecordChange[] | undefined>;
  /** Runs the watches until `signal` aborts. */
  watch(signal: AbortSignal, handlers: WatchHandlers): Promise<void>;
  /**
   * Makes this node's acknowledgements `desired`; `recorded` is what read()
   * returned for this node. Throws when they cannot be written.
   */
  recordStatus(
    desired: readonly FloatingIpStatus[],
    recorded: readonly FloatingIpStatus[],
  ): Promise<void>;
  /**
   * recordStatus for some floating IPs only: `recorded` is what this node
   * has recorded for them, `desired` what it should; the records of every
   * other floating IP are left as they are. Resolves to false,
   * writing nothing, when every record must be written again (a new lease):
   * call recordStatus then.
   */
  recordStatusChanges?(
    desired: readonly FloatingIpStatus[],
    recorded: readonly FloatingIpStatus[],
  ): Promise<boolean>;
  /** Renews this node's liveness; false when it had lapsed (the next recordStatus writes everything again). */
  keepAlive(): Promise<boolean>;
  /** One pass of the claim collector; resolves to the floating IPs released. */
  collect(): Promise<string[]>;
  /**
   * Whether the cluster holds NetworkPolicy objects, which buoy does not
   * enforce (the agent warns). Kubernetes only: an etcd cluster has no
   * NetworkPolicy source, so EtcdAgentSource has no such method.
   */
  networkPoliciesPresent?(): Promise<boolean>;
}
