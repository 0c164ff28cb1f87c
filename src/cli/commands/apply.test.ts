// `buoy apply` through runCli(): calicoctl's pools and peers, JSON on stdin,
// and the refusals that write nothing; BGP peers applied, listed and deleted.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { MemoryKv } from "../../etcd/memory-kv.js";
import { keys, Store } from "../../etcd/store.js";
import {
  CALICO_PEERS,
  CALICO_POOLS,
  clusterWithPod,
  run,
} from "../../../test/support/cluster-with-pod.js";

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
        "error: stdin: document 3: unknown kind 'ConfigMap' (buoy accepts IPPool, Node, BGPPeer, Namespace, FloatingIP, Pod, List, IPPoolList, NodeList, BGPPeerList, NamespaceList, FloatingIPList and PodList)\n",
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
