// One pod's ADD with one floating IP, then its DEL, as the plugin makes them
// through the Datastore port (snapshot, IPAM, claims and endpoint; release),
// with a counter read before and after each: what issue 14's bounded-reads
// tests compare between an empty and a full cluster, on etcd
// (src/etcd/bounded-reads.test.ts) and on Kubernetes
// (test/kube/bounded-reads.test.ts).
import { expect } from "vitest";
import type { Datastore } from "../../src/datastore/datastore.js";
import { assignAddress } from "../../src/ipam/ipam.js";
import type { AllocationOwner, IpPool, WorkloadEndpoint } from "../../src/model/records.js";

export interface Reads {
  requests: number;
  bytes: number;
}

export function podOwner(pod: string, node: string, namespace = "ns"): AllocationOwner {
  return { handle: `net.${pod}`, node, namespace, pod, network: "net", containerID: pod };
}

/**
 * ADD then DEL of `pod` on `node` asking for `floating`; `reads` is the
 * counter the datastore's transport keeps. The node's block is made first
 * (it has run pods before), outside what is counted.
 */
export async function addAndDelCounted(options: {
  datastore: Datastore;
  reads: Reads;
  node: string;
  pod: string;
  namespace: string;
  floating: string;
  pools: readonly IpPool[];
  /** Before counting starts, e.g. for a watch cache to see the node's block. */
  settle?: () => Promise<void>;
}): Promise<{ add: Reads; del: Reads }> {
  const { datastore, reads, node, pod, namespace, floating, pools } = options;
  const since = (start: Reads): Reads => ({
    requests: reads.requests - start.requests,
    bytes: reads.bytes - start.bytes,
  });
  await assignAddress(datastore, {
    family: 4,
    owner: podOwner(`${pod}-earlier`, node, namespace),
    pools: [],
  });
  await options.settle?.();
  const start = { ...reads };
  const snapshot = await datastore.readAllocationSnapshot({ node, floatingIps: [floating] });
  const owner = podOwner(pod, node, namespace);
  const ip = await assignAddress(
    datastore,
    { family: 4, owner, pools: [], exclude: [floating] },
    snapshot,
  );
  const createdAt = new Date().toISOString();
  const endpoint: WorkloadEndpoint = {
    node,
    namespace,
    pod,
    containerID: pod,
    endpoint: "eth0",
    interfaceName: "calipod",
    mac: "0a:58:0a:00:00:05",
    ipNetworks: [`${ip}/32`],
    ipNATs: [{ internalIP: ip, externalIP: floating }],
    network: "net",
    createdAt,
  };
  await datastore.commitAttachment({
    endpoint,
    claims: [
      {
        ip: floating,
        namespace,
        pod,
        containerID: pod,
        node,
        internalIP: ip,
        createdAt,
        endpoint: "eth0",
        network: "net",
      },
    ],
    pools,
    seen: snapshot,
  });
  const add = since(start);
  const before = { ...reads };
  const released = await datastore.release({
    node,
    containerID: pod,
    ifname: "eth0",
    handle: owner.handle,
    namespace,
    pod,
  });
  expect(released).toEqual({ addresses: [ip], floatingIps: [floating] });
  return { add, del: since(before) };
}
