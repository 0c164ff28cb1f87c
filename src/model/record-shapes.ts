// The shapes the agent relies on in records it did not write. A record that
// does not fit is skipped (and reported), never allowed to throw inside the
// planning of every other record.
import * as v from "valibot";
import type {
  BgpPeer,
  FloatingIpClaim,
  FloatingIpStatus,
  IpPool,
  NodeRecord,
  WorkloadEndpoint,
} from "./records.js";

const IpNat = v.looseObject({ internalIP: v.string(), externalIP: v.string() });

const shapes = {
  endpoint: v.looseObject({
    node: v.string(),
    namespace: v.string(),
    pod: v.string(),
    containerID: v.string(),
    endpoint: v.string(),
    interfaceName: v.string(),
    ipNetworks: v.array(v.string()),
    ipNATs: v.array(IpNat),
  }),
  claim: v.looseObject({ ip: v.string(), containerID: v.string(), node: v.string() }),
  pool: v.looseObject({ name: v.string(), cidr: v.string(), blockSize: v.number() }),
  status: v.looseObject({ ip: v.string(), node: v.string(), internalIP: v.string() }),
  node: v.looseObject({
    name: v.string(),
    addresses: v.array(v.string()),
    asNumber: v.optional(v.number()),
  }),
  affinity: v.looseObject({ cidr: v.string(), node: v.string() }),
  borrowed: v.looseObject({ ip: v.string(), node: v.string() }),
  peer: v.looseObject({
    name: v.string(),
    peerIP: v.string(),
    asNumber: v.number(),
    node: v.optional(v.string()),
  }),
};

interface Shaped {
  endpoint: WorkloadEndpoint;
  claim: FloatingIpClaim;
  pool: IpPool;
  status: FloatingIpStatus;
  node: NodeRecord;
  affinity: { cidr: string; node: string };
  borrowed: { ip: string; node: string };
  peer: BgpPeer;
}

/** The record if it has the shape of `kind`, else undefined. */
export function fitRecord<K extends keyof Shaped>(kind: K, value: unknown): Shaped[K] | undefined {
  return v.is(shapes[kind], value) ? (value as unknown as Shaped[K]) : undefined;
}
