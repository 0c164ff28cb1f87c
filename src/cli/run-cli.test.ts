import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { MemoryKv } from "../etcd/memory-kv.js";
import type { FloatingIpClaim, IpamBlock, WorkloadEndpoint } from "../model/records.js";
import { keys, Store } from "../etcd/store.js";
import type { EtcdDatastoreConfig } from "./datastore-config.js";
import { runCli } from "./run-cli.js";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  opened: EtcdDatastoreConfig | undefined;
}

async function run(
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

async function put(kv: MemoryKv, key: string, value: unknown): Promise<void> {
  await kv.txn([], [{ put: key, value: JSON.stringify(value) }]);
}

/** Calico's IPPool reference example, as a calicoctl user would apply it. */
const CALICO_POOLS = `apiVersion: projectcalico.org/v3
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
const CALICO_PEERS = `apiVersion: projectcalico.org/v3
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

const block: IpamBlock = {
  cidr: "10.1.0.0/26",
  affinity: "node-1",
  allocations: {
    "10.1.0.5": { handle: "c0ffee", node: "node-1", namespace: "default", pod: "web-0" },
  },
};
const claim: FloatingIpClaim = {
  ip: "10.0.0.7",
  namespace: "default",
  pod: "web-0",
  containerID: "c0ffee",
  node: "node-1",
  internalIP: "10.1.0.5",
  createdAt: "2025-01-02T03:04:05.000Z",
};
const endpoint: WorkloadEndpoint = {
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
async function clusterWithPod(): Promise<MemoryKv> {
  const kv = new MemoryKv();
  expect((await run(kv, ["apply", "-f", "-"], { stdin: CALICO_POOLS })).code).toBe(0);
  await put(kv, keys.block(block.cidr), block);
  await put(kv, keys.claim(claim.ip), claim);
  await put(kv, keys.endpoint(endpoint.node, endpoint.containerID, endpoint.endpoint), endpoint);
  return kv;
}

const tmp = mkdtempSync(join(tmpdir(), "buoy-cli-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("runCli() apply", () => {
  it("runCli() applies calicoctl's IPPool manifests unchanged", async () => {
    const kv = new MemoryKv();
    const file = join(tmp, "pools.yaml");
    writeFileSync(file, CALICO_POOLS);
    const result = await run(kv, ["apply", "-f", file]);
    expect(result).toMatchObject({
      code: 0,
      stdout: "Successfully applied 2 'IPPool' resource(s)\n",
      stderr: "",
      opened: { type: "etcdv3", endpoints: ["http://127.0.0.1:2379"] },
    });
    expect(await new Store(kv).listPools()).toEqual([
      {
        name: "floating-v4",
        cidr: "10.0.0.0/24",
        blockSize: 26,
        disabled: true,
        nodeSelector: "all()",
        natOutgoing: false,
        disableBGPExport: false,
      },
      {
        name: "my.ippool-1",
        cidr: "10.1.0.0/16",
        blockSize: 26,
        disabled: false,
        nodeSelector: "all()",
        natOutgoing: true,
        disableBGPExport: false,
      },
    ]);
  });

  it("runCli() applies pools and nodes from JSON on stdin", async () => {
    const kv = new MemoryKv();
    const list = {
      apiVersion: "buoy.dev/v1",
      kind: "List",
      items: [
        {
          apiVersion: "buoy.dev/v1",
          kind: "IPPool",
          metadata: { name: "v6" },
          spec: { cidr: "fd00:10::/64" },
        },
        {
          apiVersion: "buoy.dev/v1",
          kind: "Node",
          metadata: { name: "node-1" },
          spec: { addresses: ["192.0.2.11"], asNumber: 64512 },
        },
      ],
    };
    const result = await run(kv, ["apply", "-f", "-"], { stdin: JSON.stringify(list) });
    expect(result).toMatchObject({ code: 0, stdout: "Successfully applied 2 resource(s)\n" });
    expect(await new Store(kv).listNodes()).toEqual([
      { name: "node-1", addresses: ["192.0.2.11"], asNumber: 64512 },
    ]);
  });

  const refused: { desc: string; stdin: string; stderr: string }[] = [
    {
      desc: "names the file and document of an unknown kind",
      stdin: `${CALICO_POOLS}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: calico-config}\n`,
      stderr:
        "error: stdin: document 3: unknown kind 'ConfigMap' (buoy accepts IPPool, Node, BGPPeer, List, IPPoolList, NodeList and BGPPeerList)\n",
    },
    {
      desc: "refuses a bad cidr",
      stdin: `apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: bad}\nspec: {cidr: 10.0.0.0/33}\n`,
      stderr: "error: stdin: document 1: IP pool bad: '10.0.0.0/33' is not a CIDR\n",
    },
    {
      desc: "refuses a BGPPeer with a peer selector",
      stdin: `${CALICO_PEERS}---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: rr}\nspec: {nodeSelector: all(), peerSelector: route-reflector == 'true'}\n`,
      stderr:
        "error: stdin: document 3: BGP peer rr: spec.nodeSelector is not supported by buoy; name one node in spec.node, or leave both out for a peer of every node\n",
    },
    {
      desc: "refuses an empty file",
      stdin: "# nothing here\n",
      stderr: "error: stdin holds no resources\n",
    },
  ];
  for (const { desc, stdin, stderr } of refused) {
    it(`runCli() apply ${desc}, writing nothing`, async () => {
      const kv = new MemoryKv();
      const result = await run(kv, ["apply", "-f", "-"], { stdin });
      expect(result).toMatchObject({ code: 1, stdout: "", stderr });
      expect(await kv.list("/")).toEqual([]);
    });
  }

  it("runCli() apply refuses a pool overlapping an existing pool, naming both", async () => {
    const kv = await clusterWithPod();
    const result = await run(kv, ["apply", "-f", "-"], {
      stdin: `apiVersion: buoy.dev/v1\nkind: IPPool\nmetadata: {name: more-floating}\nspec: {cidr: 10.0.0.128/25}\n`,
    });
    expect(result).toMatchObject({
      code: 1,
      stderr:
        "error: IP pool more-floating (10.0.0.128/25) overlaps IP pool floating-v4 (10.0.0.0/24)\n",
    });
    expect((await new Store(kv).listPools()).map((pool) => pool.name)).toEqual([
      "floating-v4",
      "my.ippool-1",
    ]);
  });

  it("runCli() apply refuses a new blockSize for a pool with allocated blocks", async () => {
    const kv = await clusterWithPod();
    const result = await run(kv, ["apply", "-f", "-"], {
      stdin: CALICO_POOLS.replace("cidr: 10.1.0.0/16", "cidr: 10.1.0.0/16\n  blockSize: 24"),
    });
    expect(result).toMatchObject({
      code: 1,
      stderr:
        "error: cannot change blockSize 26 -> 24 of IP pool my.ippool-1: 1 address(es) are allocated in 1 of its block(s)\n",
    });
  });
});

describe("runCli() BGP peers", () => {
  it("runCli() applies calicoctl's BGPPeer manifests and lists them", async () => {
    const kv = new MemoryKv();
    expect(await run(kv, ["apply", "-f", "-"], { stdin: CALICO_PEERS })).toMatchObject({
      code: 0,
      stdout: "Successfully applied 2 'BGPPeer' resource(s)\n",
    });
    expect(JSON.parse((await kv.get(keys.bgpPeer("tor-v6")))?.value ?? "")).toEqual({
      name: "tor-v6",
      peerIP: "2001:db8::1",
      asNumber: 65001,
    });
    expect(await run(kv, ["get", "bgppeers"])).toMatchObject({
      code: 0,
      stdout: `NAME       PEERIP       ASN    NODE
some.name  192.168.1.1  63400  rack1-host1
tor-v6     2001:db8::1  65001  (all)
`,
    });
    expect((await run(kv, ["get", "bgpp", "tor-v6"])).stdout).toContain("tor-v6");
  });

  it("runCli() get bgppeers -o yaml prints peers that apply accepts back unchanged", async () => {
    const kv = new MemoryKv();
    await run(kv, ["apply", "-f", "-"], { stdin: CALICO_PEERS });
    for (const format of ["yaml", "json"]) {
      const printed = await run(kv, ["get", "bgppeers", "-o", format]);
      const copy = new MemoryKv();
      expect(await run(copy, ["apply", "-f", "-"], { stdin: printed.stdout })).toMatchObject({
        code: 0,
        stdout: "Successfully applied 2 'BGPPeer' resource(s)\n",
      });
      const values = async (store: MemoryKv) =>
        (await store.list(keys.bgpPeers)).map((entry) => entry.value);
      expect(await values(copy)).toEqual(await values(kv));
      expect((await run(kv, ["apply", "-f", "-"], { stdin: printed.stdout })).code).toBe(0);
    }
  });

  it("runCli() deletes BGP peers by name and from a manifest", async () => {
    const kv = new MemoryKv();
    await run(kv, ["apply", "-f", "-"], { stdin: CALICO_PEERS });
    expect(await run(kv, ["delete", "bgppeer", "some.name"])).toMatchObject({
      code: 0,
      stdout: "Successfully deleted 1 'BGPPeer' resource(s)\n",
    });
    expect(await run(kv, ["delete", "bgppeer", "some.name"])).toMatchObject({
      code: 1,
      stderr: "error: BGP peer some.name does not exist\n",
    });
    await run(kv, ["apply", "-f", "-"], { stdin: CALICO_PEERS });
    expect(await run(kv, ["delete", "-f", "-"], { stdin: CALICO_PEERS })).toMatchObject({
      code: 0,
      stdout: "Successfully deleted 2 'BGPPeer' resource(s)\n",
    });
    expect(await kv.list("/")).toEqual([]);
  });
});

describe("runCli() get", () => {
  it("runCli() get ippools prints calicoctl's columns", async () => {
    const kv = await clusterWithPod();
    expect(await run(kv, ["get", "ippools"])).toMatchObject({
      code: 0,
      stdout: `NAME         CIDR         SELECTOR
floating-v4  10.0.0.0/24  all()
my.ippool-1  10.1.0.0/16  all()
`,
    });
    expect((await run(kv, ["get", "ippool", "floating-v4", "-o", "wide"])).stdout).toBe(
      `NAME         CIDR         SELECTOR  BLOCKSIZE  DISABLED  NATOUTGOING  DISABLEBGPEXPORT
floating-v4  10.0.0.0/24  all()     26         true      false        false
`,
    );
  });

  it("runCli() get -o yaml prints pools that apply accepts back unchanged", async () => {
    const kv = await clusterWithPod();
    const yaml = await run(kv, ["get", "ippools", "-o", "yaml"]);
    expect(yaml.code).toBe(0);
    expect(parse(yaml.stdout)).toMatchObject({ apiVersion: "buoy.dev/v1", kind: "IPPoolList" });

    const copy = new MemoryKv();
    const applied = await run(copy, ["apply", "-f", "-"], { stdin: yaml.stdout });
    expect(applied).toMatchObject({
      code: 0,
      stdout: "Successfully applied 2 'IPPool' resource(s)\n",
    });
    expect(await new Store(copy).listPools()).toEqual(await new Store(kv).listPools());
    // And onto the original: re-applying what is there changes nothing and is allowed.
    expect((await run(kv, ["apply", "-f", "-"], { stdin: yaml.stdout })).code).toBe(0);
  });

  it("runCli() get -o json prints one named pool as a resource", async () => {
    const kv = await clusterWithPod();
    const result = await run(kv, ["get", "ippool", "floating-v4", "-o", "json"]);
    expect(JSON.parse(result.stdout)).toEqual({
      apiVersion: "buoy.dev/v1",
      kind: "IPPool",
      metadata: { name: "floating-v4" },
      spec: {
        cidr: "10.0.0.0/24",
        blockSize: 26,
        disabled: true,
        nodeSelector: "all()",
        natOutgoing: false,
        disableBGPExport: false,
      },
    });
  });

  it("runCli() get endpoints and floatingips show the pod's floating IP", async () => {
    const kv = await clusterWithPod();
    expect((await run(kv, ["get", "workloadendpoints", "-o", "wide"])).stdout).toBe(
      `WORKLOAD       NODE    NETWORKS     INTERFACE   FLOATING IPS        EGRESS  CONTAINER
default/web-0  node-1  10.1.0.5/32  buoyc0ffee  10.0.0.7->10.1.0.5  -       c0ffee
`,
    );
    expect((await run(kv, ["get", "floatingips", "--node", "node-1"])).stdout).toBe(
      `FLOATING IP  POD            NODE    INTERNAL IP  PROGRAMMED  ANNOUNCED
10.0.0.7     default/web-0  node-1  10.1.0.5     no          -
`,
    );
    const yaml = parse((await run(kv, ["get", "fip", "10.0.0.7", "-o", "yaml"])).stdout);
    expect(yaml).toMatchObject({ kind: "FloatingIP", metadata: { name: "10.0.0.7" } });
  });

  it("runCli() get floatingips shows how the holder's node announces each one", async () => {
    const kv = await clusterWithPod();
    await put(kv, keys.status("node-1", "10.0.0.7"), {
      ip: "10.0.0.7",
      node: "node-1",
      internalIP: "10.1.0.5",
      programmedSince: "2025-01-02T03:04:06.000Z",
      announced: "direct",
    });
    expect((await run(kv, ["get", "floatingips"])).stdout).toBe(
      `FLOATING IP  POD            NODE    INTERNAL IP  PROGRAMMED  ANNOUNCED
10.0.0.7     default/web-0  node-1  10.1.0.5     yes         direct
`,
    );
    const json = JSON.parse((await run(kv, ["get", "fip", "10.0.0.7", "-o", "json"])).stdout);
    expect(json).toMatchObject({ status: { programmed: true, announced: "direct" } });
  });

  it("runCli() get of a name that does not exist exits 1", async () => {
    const kv = await clusterWithPod();
    expect(await run(kv, ["get", "ippool", "nope"])).toMatchObject({
      code: 1,
      stdout: "",
      stderr: "error: IP pool nope does not exist\n",
    });
  });
});

describe("runCli() delete", () => {
  it("runCli() delete refuses a pool in use, giving the counts", async () => {
    const kv = await clusterWithPod();
    expect(await run(kv, ["delete", "ippool", "my.ippool-1"])).toMatchObject({
      code: 1,
      stderr:
        "error: cannot delete IP pool my.ippool-1 (10.1.0.0/16): 1 address(es) are allocated in 1 block(s) and 0 floating IP(s) are claimed inside it\n",
    });
    expect(await run(kv, ["delete", "ippool", "floating-v4"])).toMatchObject({
      code: 1,
      stderr:
        "error: cannot delete IP pool floating-v4 (10.0.0.0/24): 0 address(es) are allocated in 0 block(s) and 1 floating IP(s) are claimed inside it\n",
    });
    expect(await new Store(kv).listPools()).toHaveLength(2);
  });

  it("runCli() delete removes an unused pool and its empty blocks", async () => {
    const kv = await clusterWithPod();
    await put(kv, keys.block(block.cidr), { ...block, allocations: {} });
    const result = await run(kv, ["delete", "ippool", "my.ippool-1"]);
    expect(result).toMatchObject({
      code: 0,
      stdout: "Successfully deleted 1 'IPPool' resource(s)\n",
    });
    const store = new Store(kv);
    expect((await store.listPools()).map((pool) => pool.name)).toEqual(["floating-v4"]);
    expect(await store.listBlocks()).toEqual([]);
  });

  it("runCli() delete -f deletes the pools a manifest names", async () => {
    const kv = new MemoryKv();
    await run(kv, ["apply", "-f", "-"], { stdin: CALICO_POOLS });
    const result = await run(kv, ["delete", "-f", "-"], { stdin: CALICO_POOLS });
    expect(result).toMatchObject({
      code: 0,
      stdout: "Successfully deleted 2 'IPPool' resource(s)\n",
    });
    expect(await kv.list("/")).toEqual([]);
  });

  it("runCli() delete of a missing pool names it", async () => {
    expect(await run(new MemoryKv(), ["delete", "ippool", "nope"])).toMatchObject({
      code: 1,
      stderr: "error: IP pool nope does not exist\n",
    });
  });
});

describe("runCli() datastore and usage", () => {
  it("runCli() sends 'apply' with DATASTORE_TYPE=kubernetes to kubectl, touching no datastore", async () => {
    const result = await run(new MemoryKv(), ["apply", "-f", "-"], {
      env: { DATASTORE_TYPE: "kubernetes" },
      stdin:
        "apiVersion: buoy.dev/v1\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/24}\n",
    });
    expect(result).toMatchObject({ code: 1, opened: undefined });
    expect(result.stderr).toMatch(
      /^error: 'buoy apply' works on the etcdv3 datastore only so far; .* use kubectl /,
    );
  });

  it("runCli() 'get' with DATASTORE_TYPE=kubernetes and no KUBECONFIG says what it needs", async () => {
    const result = await run(new MemoryKv(), ["get", "ippools"], {
      env: { DATASTORE_TYPE: "kubernetes" },
    });
    expect(result).toMatchObject({ code: 2, opened: undefined });
    expect(result.stderr).toContain(
      "DATASTORE_TYPE=kubernetes needs KUBECONFIG, or to run in a pod (KUBERNETES_SERVICE_HOST)",
    );
  });

  it("runCli() takes the etcd endpoints from the flag over ETCD_ENDPOINTS", async () => {
    const result = await run(
      new MemoryKv(),
      ["get", "ippools", "--etcd-endpoints", "http://10.0.0.1:2379,http://10.0.0.2:2379"],
      { env: { ETCD_ENDPOINTS: "http://ignored:2379" } },
    );
    expect(result.opened?.endpoints).toEqual(["http://10.0.0.1:2379", "http://10.0.0.2:2379"]);
  });

  const usage: { desc: string; argv: string[]; stderr: RegExp }[] = [
    {
      desc: "an unknown command",
      argv: ["frobnicate"],
      stderr: /^error: unknown command 'frobnicate'/,
    },
    {
      desc: "an unknown option",
      argv: ["get", "ippools", "--frob"],
      stderr: /unknown option '--frob'/,
    },
    {
      desc: "an unknown output format",
      argv: ["get", "ippools", "-o", "xml"],
      stderr: /'xml' is invalid/,
    },
    {
      desc: "an unknown resource type",
      argv: ["get", "pods"],
      stderr: /^error: unknown resource type 'pods'/,
    },
    {
      desc: "apply without -f",
      argv: ["apply"],
      stderr: /required option '-f, --filename <file>'/,
    },
    {
      desc: "delete without a name",
      argv: ["delete", "ippool"],
      stderr: /^error: delete needs a type and a name/,
    },
    {
      desc: "delete of a type buoy records itself",
      argv: ["delete", "floatingip", "10.0.0.7"],
      stderr:
        /^error: floatingips are recorded by buoy itself and cannot be deleted; delete ippool, node or bgppeer/,
    },
    {
      desc: "--node on pools",
      argv: ["get", "ippools", "--node", "n1"],
      stderr: /^error: --node applies to/,
    },
    { desc: "no command at all", argv: [], stderr: /^Usage: buoy/ },
  ];
  for (const { desc, argv, stderr } of usage) {
    it(`runCli() exits 2 on ${desc}`, async () => {
      const result = await run(new MemoryKv(), argv);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(stderr);
    });
  }

  it("runCli() prints help for every command and exits 0", async () => {
    for (const argv of [
      ["--help"],
      ["apply", "--help"],
      ["get", "--help"],
      ["delete", "-h"],
      ["help", "get"],
    ]) {
      const result = await run(new MemoryKv(), argv);
      expect(result).toMatchObject({ code: 0, stderr: "" });
      expect(result.stdout).toMatch(/^Usage: buoy/);
    }
    expect((await run(new MemoryKv(), ["get", "--help"])).stdout).toContain("buoy get ippools");
    // `buoy lab` looks for this word to know that apply takes BGP peers.
    expect((await run(new MemoryKv(), ["apply", "--help"])).stdout).toContain("BGPPeer");
  });

  it("runCli() prints the client version", async () => {
    expect(await run(new MemoryKv(), ["version"])).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/^Client Version: +v\d+\.\d+\.\d+\n$/),
    });
  });
});
