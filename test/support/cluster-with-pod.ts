// For the command tests: run() is runCli() against a MemoryKv, with its output
// and the datastore it opened; calicoctl's manifests; and clusterWithPod(), a
// datastore with Calico's pools applied and one pod holding 10.0.0.7.
import { expect } from "vitest";
import { MemoryKv } from "../../src/etcd/memory-kv.js";
import type { FloatingIpClaim, IpamBlock, WorkloadEndpoint } from "../../src/model/records.js";
import { keys } from "../../src/etcd/store.js";
import type { EtcdDatastoreConfig } from "../../src/cli/datastore-config.js";
import { runCli } from "../../src/cli/run-cli.js";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  opened: EtcdDatastoreConfig | undefined;
}

export async function run(
  kv: MemoryKv,
  argv: string[],
  options: { env?: Record<string, string>; stdin?: string } = {},
): Promise<Run> {
  let stdout = "";
  let stderr = "";
  let opened: EtcdDatastoreConfig | undefined;
  const code = await runCli({
    argv,
    env: options.env ?? {},
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    openKv: (config) => {
      opened = config;
      return kv;
    },
    readStdin: async () => options.stdin ?? "",
  });
  return { code, stdout, stderr, opened };
}

export async function put(kv: MemoryKv, key: string, value: unknown): Promise<void> {
  await kv.txn([], [{ put: key, value: JSON.stringify(value) }]);
}

/** Calico's IPPool reference example, as a calicoctl user would apply it. */
export const CALICO_POOLS = `apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: my.ippool-1
spec:
  cidr: 10.1.0.0/16
  ipipMode: CrossSubnet
  natOutgoing: true
  disabled: false
  nodeSelector: all()
  allowedUses:
    - Workload
    - Tunnel
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: floating-v4
spec:
  cidr: 10.0.0.0/24
  disabled: true
`;

/** calicoctl BGPPeer manifests: Calico's reference example and a peer of every node. */
export const CALICO_PEERS = `apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata:
  name: some.name
spec:
  node: rack1-host1
  peerIP: 192.168.1.1
  asNumber: 63400
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata:
  name: tor-v6
spec:
  peerIP: 2001:db8:0:0::1
  asNumber: 65001
`;

export const block: IpamBlock = {
  cidr: "10.1.0.0/26",
  affinity: "node-1",
  allocations: {
    "10.1.0.5": { handle: "c0ffee", node: "node-1", namespace: "default", pod: "web-0" },
  },
};
export const claim: FloatingIpClaim = {
  ip: "10.0.0.7",
  namespace: "default",
  pod: "web-0",
  containerID: "c0ffee",
  node: "node-1",
  internalIP: "10.1.0.5",
  createdAt: "2025-01-02T03:04:05.000Z",
};
export const endpoint: WorkloadEndpoint = {
  node: "node-1",
  namespace: "default",
  pod: "web-0",
  containerID: "c0ffee",
  endpoint: "eth0",
  interfaceName: "buoyc0ffee",
  mac: "ee:ee:ee:ee:ee:ee",
  ipNetworks: ["10.1.0.5/32"],
  ipNATs: [{ internalIP: "10.1.0.5", externalIP: "10.0.0.7" }],
  network: "k8s-pod-network",
  createdAt: "2025-01-02T03:04:05.000Z",
};

/** A datastore with Calico's pools applied and one pod holding 10.0.0.7. */
export async function clusterWithPod(): Promise<MemoryKv> {
  const kv = new MemoryKv();
  expect((await run(kv, ["apply", "-f", "-"], { stdin: CALICO_POOLS })).code).toBe(0);
  await put(kv, keys.block(block.cidr), block);
  await put(kv, keys.claim(claim.ip), claim);
  await put(kv, keys.endpoint(endpoint.node, endpoint.containerID, endpoint.endpoint), endpoint);
  return kv;
}
