// The lab's topology as data: every namespace, interface, address and pool a
// lab with a given prefix uses, computed from its options. Pure: the builder
// (lab-builder.ts) creates what this describes, and `down` finds what it
// created by the same names.
//
//   <prefix>-fab   bridge <prefix>-br  192.168.200.1/24  fd00:200::1/64   etcd
//     ├─ <prefix>-1 ── <prefix>-up in <prefix>-n1   192.168.200.11  fd00:200::11  node-1
//     ├─ <prefix>-2 ── <prefix>-up in <prefix>-n2   192.168.200.12  fd00:200::12  node-2
//     └─ <prefix>-x ── <prefix>-up in <prefix>-ext  192.168.200.254 fd00:200::fe  the ToR
//   pods: <prefix>-<node#>-<pod>, eth0 from the CNI plugin run in the node's namespace

export type LabRouting = "bgp" | "direct";

export interface LabOptions {
  prefix: string;
  /** Number of nodes, 1 to MAX_LAB_NODES. */
  nodes: number;
  routing: LabRouting;
  /** Dual-stack pods: IPv6 pools and BGP sessions as well. */
  ipv6: boolean;
}

export const LAB_PREFIX_PATTERN = /^[a-z][a-z0-9]{2,11}$/;
/** Interface names are at most 15 bytes: `<prefix of 12>-<node#>` leaves two digits. */
export const MAX_LAB_NODES = 50;
export const NODE_AS_NUMBER = 64512;
export const EXTERNAL_AS_NUMBER = 64513;
export const ETCD_CLIENT_PORT = 2379;
export const AGENT_LISTEN = "127.0.0.1:9096";
/** Where the FloatingIP controller serves /readyz and /metrics, in the fabric namespace. */
export const CONTROLLER_LISTEN = "127.0.0.1:9097";
/** The fabric's address of the datastore, the external router and the nodes. */
export const FABRIC_V4 = {
  prefixLength: 24,
  datastore: "192.168.200.1",
  external: "192.168.200.254",
};
export const FABRIC_V6 = { prefixLength: 64, datastore: "fd00:200::1", external: "fd00:200::fe" };
export const ETCD_ENDPOINT = `http://${FABRIC_V4.datastore}:${ETCD_CLIENT_PORT}`;

export interface LabPoolPlan {
  name: string;
  cidr: string;
  blockSize: number;
  disabled: boolean;
  natOutgoing: boolean;
}

export interface LabNodePlan {
  /** 1-based. */
  index: number;
  /** The name in the datastore, the agent's --node and the conflist's nodename. */
  name: string;
  netns: string;
  /** The node's end of its link to the fabric, inside netns. */
  ifname: string;
  /** The fabric's end, a port of the bridge. */
  fabricPort: string;
  ipv4: string;
  ipv6: string;
}

export interface LabTopology {
  prefix: string;
  routing: LabRouting;
  ipv6: boolean;
  fabric: { netns: string; bridge: string; ipv4: string; ipv6: string };
  external: {
    netns: string;
    ifname: string;
    fabricPort: string;
    ipv4: string;
    ipv6: string;
    asNumber: number;
  };
  nodes: LabNodePlan[];
  etcd: { endpoint: string; clientUrls: string[]; peerUrl: string };
  pools: LabPoolPlan[];
}

export class LabError extends Error {
  override readonly name = "LabError";
}

/** Throws LabError unless `prefix` can name a lab's namespaces, interfaces and files. */
export function validateLabPrefix(prefix: string): string {
  if (!LAB_PREFIX_PATTERN.test(prefix)) {
    throw new LabError(
      `invalid lab prefix '${prefix}': 3 to 12 lower-case letters and digits, starting with a letter`,
    );
  }
  return prefix;
}

/** `lab` and 4 random hex digits, from 2 random bytes. */
export function randomLabPrefix(randomBytes: Uint8Array, base = "lab"): string {
  const hex = [...randomBytes.slice(0, 2)].map((byte) => byte.toString(16).padStart(2, "0"));
  return validateLabPrefix(base + hex.join(""));
}

export function planLabTopology(options: LabOptions): LabTopology {
  const { prefix, nodes: count } = options;
  validateLabPrefix(prefix);
  if (!Number.isInteger(count) || count < 1 || count > MAX_LAB_NODES) {
    throw new LabError(`a lab has 1 to ${MAX_LAB_NODES} nodes, not ${count}`);
  }
  const nodes = Array.from({ length: count }, (_, offset): LabNodePlan => {
    const index = offset + 1;
    return {
      index,
      name: `node-${index}`,
      netns: `${prefix}-n${index}`,
      ifname: `${prefix}-up`,
      fabricPort: `${prefix}-${index}`,
      ipv4: `192.168.200.${10 + index}`,
      // fd00:200::11 for node-1: the IPv4 host number's digits, as the docs write it.
      ipv6: `fd00:200::${10 + index}`,
    };
  });
  const pools: LabPoolPlan[] = [
    { name: "pods-v4", cidr: "10.244.0.0/16", blockSize: 26, disabled: false, natOutgoing: true },
    {
      name: "floating-v4",
      cidr: "203.0.113.0/24",
      blockSize: 26,
      disabled: true,
      natOutgoing: false,
    },
  ];
  if (options.ipv6) {
    pools.push(
      {
        name: "pods-v6",
        cidr: "fd00:244::/64",
        blockSize: 122,
        disabled: false,
        natOutgoing: false,
      },
      {
        name: "floating-v6",
        cidr: "2001:db8:f100::/120",
        blockSize: 122,
        disabled: true,
        natOutgoing: false,
      },
    );
  }
  return {
    prefix,
    routing: options.routing,
    ipv6: options.ipv6,
    fabric: {
      netns: `${prefix}-fab`,
      bridge: `${prefix}-br`,
      ipv4: FABRIC_V4.datastore,
      ipv6: FABRIC_V6.datastore,
    },
    external: {
      netns: `${prefix}-ext`,
      ifname: `${prefix}-up`,
      fabricPort: `${prefix}-x`,
      ipv4: FABRIC_V4.external,
      ipv6: FABRIC_V6.external,
      asNumber: EXTERNAL_AS_NUMBER,
    },
    nodes,
    etcd: {
      endpoint: ETCD_ENDPOINT,
      clientUrls: [
        ETCD_ENDPOINT,
        `http://[${FABRIC_V6.datastore}]:${ETCD_CLIENT_PORT}`,
        `http://127.0.0.1:${ETCD_CLIENT_PORT}`,
      ],
      peerUrl: "http://127.0.0.1:2380",
    },
    pools,
  };
}

/** Pod names: what Kubernetes allows, short enough to stay readable in a namespace name. */
const POD_NAME_PATTERN = /^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$/;

export function validatePodName(name: string): string {
  if (!POD_NAME_PATTERN.test(name)) {
    throw new LabError(
      `invalid pod name '${name}': up to 40 lower-case letters, digits and '-', starting and ending with a letter or digit`,
    );
  }
  return name;
}

/** Kubernetes namespaces are DNS labels (and CNI_ARGS is `;`- and `=`-separated). */
const POD_NAMESPACE_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export function validatePodNamespace(namespace: string): string {
  if (!POD_NAMESPACE_PATTERN.test(namespace)) {
    throw new LabError(
      `invalid Kubernetes namespace '${namespace}': up to 63 lower-case letters, digits and '-', starting and ending with a letter or digit`,
    );
  }
  return namespace;
}

/** The pod's network namespace: `<prefix>-<node#>-<pod>`. */
export function podNetnsName(prefix: string, nodeIndex: number, pod: string): string {
  return `${prefix}-${nodeIndex}-${validatePodName(pod)}`;
}

/** Whether a namespace name belongs to the lab with this prefix. */
export function isLabNetns(prefix: string, netns: string): boolean {
  return netns.startsWith(`${prefix}-`);
}

export function findNode(topology: LabTopology, node: number | string): LabNodePlan {
  const found = topology.nodes.find((plan) =>
    typeof node === "number" ? plan.index === node : plan.name === node || plan.netns === node,
  );
  if (!found) {
    const names = topology.nodes.map((plan) => plan.name).join(", ");
    const asked = typeof node === "number" ? `node-${node}` : node;
    throw new LabError(`lab ${topology.prefix} has no node ${asked} (it has ${names})`);
  }
  return found;
}

/** Every namespace of the lab's infrastructure (pods not included), fabric first. */
export function infrastructureNetns(topology: LabTopology): string[] {
  return [
    topology.fabric.netns,
    topology.external.netns,
    ...topology.nodes.map((node) => node.netns),
  ];
}
