// `buoy import calico` against a real kube-apiserver v1.20.2 holding
// Calico-shaped objects (crd.projectcalico.org/v1 IPPools and IPAMBlocks, as
// Calico's kubernetes datastore keeps them): a dry run writes nothing; the
// import creates buoy's pools and records every live allocation; run again
// it adds nothing; buoy's real plugin then gives new pods only addresses no
// Calico pod holds, and a Calico pod's DEL through buoy releases its own.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  addNetns,
  CNI_DIR,
  deleteNetns,
  execConflist,
  ROOT,
  runPrefix,
  type Conflist,
} from "../support/harness.js";
import { startKubeApiserver, type KubeApiserver, type KubeObject } from "../support/kube.js";
import {
  applyManifests,
  installCniFromConfigMap,
  waitForBuoyCrds,
} from "../support/buoy-install.js";

const NODE = "node-1";
const CALICO = "/apis/crd.projectcalico.org/v1";
const BUOY = "/apis/buoy.dev/v1";
const prefix = runPrefix();
const namespace = `${prefix}-pods`;
/** Calico gave node-1's block all but its last two addresses. */
const CALICO_HELD = Array.from({ length: 62 }, (_, index) => `10.244.0.${index}`);

let kube: KubeApiserver;
let work: string;
let conflist: Conflist;
const netnses: string[] = [];

function buoy(args: string[]) {
  const run = spawnSync("node", [join(ROOT, "dist/buoy"), ...args], {
    encoding: "utf8",
    env: { ...process.env, DATASTORE_TYPE: "kubernetes", KUBECONFIG: kube.kubeconfig },
  });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

/** Calico's two CRDs, with the schema left open as theirs is for these fields. */
async function calicoCrds(): Promise<void> {
  for (const [plural, kind] of [
    ["ippools", "IPPool"],
    ["ipamblocks", "IPAMBlock"],
  ] as const) {
    await kube.admin.json("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", {
      metadata: { name: `${plural}.crd.projectcalico.org` },
      spec: {
        group: "crd.projectcalico.org",
        scope: "Cluster",
        names: { plural, singular: kind.toLowerCase(), kind, listKind: `${kind}List` },
        versions: [
          {
            name: "v1",
            served: true,
            storage: true,
            schema: {
              openAPIV3Schema: {
                type: "object",
                properties: {
                  spec: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
                },
              },
            },
          },
        ],
      },
    });
  }
  for (let tries = 0; ; tries++) {
    const answer = await kube.admin.request("GET", `${CALICO}/ipamblocks`);
    if (answer.status === 200) return;
    if (tries > 100) throw new Error("Calico's CRDs were not served");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

beforeAll(async () => {
  kube = await startKubeApiserver();
  work = mkdtempSync(join(tmpdir(), `${prefix}-import-calico-`));
  applyManifests(kube, ["crds.yaml", "rbac.yaml", "calico-config.yaml"]);
  await waitForBuoyCrds(kube);
  await calicoCrds();
  conflist = JSON.parse(
    readFileSync(await installCniFromConfigMap(kube, work, NODE, join(CNI_DIR, "buoy")), "utf8"),
  ) as Conflist;
  await kube.admin.json("POST", "/api/v1/nodes", { metadata: { name: NODE } });
  await kube.admin.json("POST", "/api/v1/nodes", { metadata: { name: "node-2" } });
  await kube.admin.json("POST", "/api/v1/namespaces", { metadata: { name: namespace } });

  const calico = (plural: string, name: string, spec: Record<string, unknown>) =>
    kube.admin.json("POST", `${CALICO}/${plural}`, {
      apiVersion: "crd.projectcalico.org/v1",
      kind: plural === "ippools" ? "IPPool" : "IPAMBlock",
      metadata: { name },
      spec,
    });
  await calico("ippools", "default-ipv4-ippool", {
    cidr: "10.244.0.0/16",
    blockSize: 26,
    ipipMode: "Always",
    natOutgoing: true,
    nodeSelector: "all()",
  });
  await calico("ippools", "rack-a", { cidr: "10.245.0.0/24", nodeSelector: "rack == 'a'" });
  // Calico's pods, running: the Pod objects the API server has for them.
  const pod = (name: string, node = NODE) =>
    kube.admin.json("POST", `/api/v1/namespaces/${namespace}/pods`, {
      metadata: { name },
      spec: { nodeName: node, containers: [{ name: "c", image: "busybox" }] },
    });
  for (let index = 1; index < CALICO_HELD.length; index++) await pod(`old-${index}`);
  await pod("b", "node-2");
  await pod("x");
  await calico("ipamblocks", "10-244-0-0-26", {
    cidr: "10.244.0.0/26",
    affinity: `host:${NODE}`,
    strictAffinity: false,
    allocations: [...CALICO_HELD.map((_, index) => index), null, null],
    unallocated: [62, 63],
    attributes: CALICO_HELD.map((_, index) =>
      index === 0
        ? { handle_id: `ipip-tunnel-addr-${NODE}`, secondary: { node: NODE } }
        : {
            handle_id: `k8s-pod-network.calico${index}`,
            secondary: { namespace, pod: `old-${index}`, node: NODE },
          },
    ),
  });
  await calico("ipamblocks", "10-244-0-64-26", {
    cidr: "10.244.0.64/26",
    affinity: "host:node-2",
    allocations: [0, null, null],
    attributes: [
      { handle_id: "k8s-pod-network.other", secondary: { namespace, pod: "b", node: "node-2" } },
    ],
  });
}, 120_000);

afterAll(async () => {
  for (const netns of netnses) deleteNetns(netns);
  await kube?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

const allocated = async (cidrName: string) =>
  Object.keys(
    (
      (await kube.admin.json<KubeObject>("GET", `${BUOY}/ipamblocks/${cidrName}`)).spec as {
        allocations: Record<string, unknown>;
      }
    ).allocations,
  ).sort((a, b) => Number(a.split(".")[3]) - Number(b.split(".")[3]));

describe("buoy import calico", () => {
  it("a dry run says what it would record and writes nothing", async () => {
    const dry = buoy(["import", "calico", "--dry-run", "--enable", "default-ipv4-ippool"]);
    expect(dry, dry.stderr).toMatchObject({
      status: 0,
      stdout:
        "IP pools would be created: default-ipv4-ippool, rack-a\n" +
        "IP pools kept (buoy has them): none\n" +
        "IPAM blocks would be created: 2, would be merged: 0\n" +
        "allocations would be recorded: 63\n" +
        "note: IP pool default-ipv4-ippool: ipipMode Always is not imported (buoy routes without it)\n" +
        "note: IP pool rack-a: nodeSelector \"rack == 'a'\" is imported as disabled (buoy assigns from every pool on every node)\n",
    });
    const pools = await kube.admin.json<{ items: unknown[] }>("GET", `${BUOY}/ippools`);
    const blocks = await kube.admin.json<{ items: unknown[] }>("GET", `${BUOY}/ipamblocks`);
    expect([pools.items.length, blocks.items.length]).toEqual([0, 0]);
  });

  it("records Calico's pools and every live allocation, and adds nothing run again", async () => {
    const imported = buoy(["import", "calico", "--enable", "default-ipv4-ippool"]);
    expect(imported.status, imported.stderr).toBe(0);
    expect(imported.stdout).toContain(
      "IPAM blocks created: 2, merged: 0\nallocations recorded: 63\n",
    );
    const rack = await kube.admin.json<KubeObject>("GET", `${BUOY}/ippools/rack-a`);
    expect(rack.spec).toMatchObject({ cidr: "10.245.0.0/24", disabled: true });
    expect(await allocated("10.244.0.0-26")).toEqual(CALICO_HELD);
    const again = buoy(["import", "calico"]);
    expect(again.stdout).toContain(
      "IP pools kept (buoy has them): default-ipv4-ippool, rack-a\n" +
        "IPAM blocks created: 0, merged: 0\nallocations recorded: 0\n",
    );
  });

  it("buoy's plugin then gives new pods only addresses no Calico pod holds", async () => {
    const given: string[] = [];
    for (const name of ["new-a", "new-b", "new-c"]) {
      await kube.admin.json("POST", `/api/v1/namespaces/${namespace}/pods`, {
        metadata: { name },
        spec: { nodeName: NODE, containers: [{ name: "c", image: "busybox" }] },
      });
      const netns = `${prefix}-${name}`;
      netnses.push(netns);
      const added = await execConflist(conflist, "ADD", {
        containerID: `${name}-${prefix}`,
        netns: addNetns(netns),
        pod: { namespace, name },
      });
      expect(added.exitCode, added.raw).toBe(0);
      given.push(
        String((added.output.ips as { address: string }[])[0]?.address).split("/")[0] ?? "",
      );
    }
    expect(new Set(given).size).toBe(3);
    for (const address of given) expect(CALICO_HELD).not.toContain(address);
    // The two free addresses of Calico's block first, then a block of buoy's own.
    expect(given.slice(0, 2).sort()).toEqual(["10.244.0.62", "10.244.0.63"]);
  });

  it("ipam check tells a Calico pod that still runs from a leak, and release refuses it", async () => {
    // old-8 is gone without its DEL (Calico's node died with it, say).
    await kube.admin.json(
      "DELETE",
      `/api/v1/namespaces/${namespace}/pods/old-8?gracePeriodSeconds=0`,
    );
    expect(
      (await kube.admin.request("GET", `/api/v1/namespaces/${namespace}/pods/old-8`)).status,
    ).toBe(404);
    const check = buoy(["ipam", "check"]);
    expect(check.status).toBe(1);
    expect(check.stdout).toMatch(new RegExp(`10\\.244\\.0\\.7 +no-endpoint +${namespace}/old-7 `));
    expect(check.stdout).toMatch(new RegExp(`10\\.244\\.0\\.8 +leaked +${namespace}/old-8 `));
    expect(buoy(["ipam", "release", "10.244.0.7", "--grace", "0"])).toMatchObject({
      status: 1,
      stderr: `error: 10.244.0.7 is allocated to pod ${namespace}/old-7, which exists: its DEL releases it. If that pod was recreated and this is its old sandbox's address, add --force\n`,
    });
    expect(await allocated("10.244.0.0-26")).toContain("10.244.0.7");
  });

  it("a Calico pod's DEL through buoy's plugin releases the address Calico gave it, and a new import leaves it out", async () => {
    await kube.admin.json(
      "DELETE",
      `/api/v1/namespaces/${namespace}/pods/old-5?gracePeriodSeconds=0`,
    );
    expect(
      (await kube.admin.request("GET", `/api/v1/namespaces/${namespace}/pods/old-5`)).status,
    ).toBe(404);
    const netns = `${prefix}-old-5`;
    netnses.push(netns);
    const deleted = await execConflist(conflist, "DEL", {
      containerID: "calico5",
      netns: addNetns(netns),
      pod: { namespace, name: "old-5" },
    });
    expect(deleted.exitCode, deleted.raw).toBe(0);
    const left = await allocated("10.244.0.0-26");
    expect(left).not.toContain("10.244.0.5");
    expect(left).toContain("10.244.0.6");
    // Calico's block still lists it: the pod is gone, so the import does not take it again.
    const again = buoy(["import", "calico"]);
    expect(again.stdout, again.stdout).toContain("allocations recorded: 0\n");
    expect(await allocated("10.244.0.0-26")).not.toContain("10.244.0.5");
  });

  it("a planted block outside the pools, of another size or on no node is refused; a good one beside it is still recorded", async () => {
    const plant = (name: string, spec: Record<string, unknown>) =>
      kube.admin.json("POST", `${CALICO}/ipamblocks`, {
        apiVersion: "crd.projectcalico.org/v1",
        kind: "IPAMBlock",
        metadata: { name },
        spec,
      });
    const one = [
      { handle_id: "k8s-pod-network.x", secondary: { namespace, pod: "x", node: NODE } },
    ];
    await plant("0-0-0-0-1", {
      cidr: "0.0.0.0/1",
      affinity: `host:${NODE}`,
      allocations: [0],
      attributes: one,
    });
    await plant("10-244-32-0-19", {
      cidr: "10.244.32.0/19",
      affinity: `host:${NODE}`,
      allocations: [0],
      attributes: one,
    });
    await plant("10-244-1-0-26", {
      cidr: "10.244.1.0/26",
      affinity: "host:evil",
      allocations: [0],
      attributes: one,
    });
    await plant("10-244-2-0-26", {
      cidr: "10.244.2.0/26",
      affinity: `host:${NODE}`,
      allocations: [0],
      attributes: one,
    });
    const run = buoy(["import", "calico"]);
    expect(run.status).toBe(1);
    expect(run.stdout).toContain("not imported: block 0.0.0.0/1: in no IP pool; not imported");
    expect(run.stdout).toContain(
      "not imported: block 10.244.32.0/19: IP pool default-ipv4-ippool's blocks are /26; not imported",
    );
    expect(run.stdout).toContain(
      'not imported: block 10.244.1.0/26: affine to "evil", no node of the cluster',
    );
    expect(run.stdout).toContain("allocations recorded: 1\n");
    const names = (
      await kube.admin.json<{ items: KubeObject[] }>("GET", `${BUOY}/ipamblocks`)
    ).items.map((item) => item.metadata?.name);
    expect(names).toContain("10.244.2.0-26");
    expect(names).not.toContain("0.0.0.0-1");
    expect(names).not.toContain("10.244.32.0-19");
    expect(names).not.toContain("10.244.1.0-26");
  });
});
