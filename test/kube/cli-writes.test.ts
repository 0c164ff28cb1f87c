// `buoy apply` and `buoy delete` on the kubernetes datastore, against a real
// kube-apiserver v1.20.2 with buoy's CRDs: a file of pools, a BGP peer and
// FloatingIPs created and then replaced on their resourceVersion (metadata
// kept), the etcd datastore's refusals before anything is written, the
// API server's own kinds refused naming kubectl, a pool in use kept, and a
// tenant with its own token refused by the API server with nothing written;
// and ipam check finding a leaked address that ipam release frees.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, runPrefix } from "../support/harness.js";
import { startKubeApiserver, type KubeApiserver, type KubeObject } from "../support/kube.js";
import { applyManifests, waitForBuoyCrds } from "../support/buoy-install.js";
import { grantTenant } from "../support/tenant.js";

const BUOY = "/apis/buoy.dev/v1";
const prefix = runPrefix();
const namespace = `${prefix}-shop`;

let kube: KubeApiserver;
let work: string;
let tenantKubeconfig: string;

function buoy(args: string[], input = "", kubeconfig = kube.kubeconfig) {
  const run = spawnSync("node", [join(ROOT, "dist/buoy"), ...args], {
    encoding: "utf8",
    input,
    env: { ...process.env, DATASTORE_TYPE: "kubernetes", KUBECONFIG: kubeconfig },
  });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

const names = async (path: string) =>
  (await kube.admin.json<{ items: KubeObject[] }>("GET", path)).items
    .map((item) => item.metadata?.name)
    .sort();

const FILE = `
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: { name: ${prefix}-pods }
spec: { cidr: 10.244.0.0/16, natOutgoing: true }
---
apiVersion: buoy.dev/v1
kind: IPPool
metadata: { name: ${prefix}-floating }
spec: { cidr: 10.96.0.0/24, disabled: true }
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: { name: ${prefix}-tor }
spec: { peerIP: 192.0.2.254, asNumber: 64512 }
---
apiVersion: buoy.dev/v1
kind: FloatingIP
metadata: { name: db, namespace: ${namespace} }
spec: { pool: ${prefix}-floating, podSelector: { matchLabels: { app: db } } }
---
apiVersion: buoy.dev/v1
kind: FloatingIP
metadata: { name: web, namespace: ${namespace} }
spec: { address: 10.96.0.7, podSelector: { matchLabels: { app: web } }, egress: true }
`;

beforeAll(async () => {
  kube = await startKubeApiserver({ users: [{ name: `${prefix}-tenant` }] });
  work = mkdtempSync(join(tmpdir(), `${prefix}-cli-writes-`));
  applyManifests(kube, ["crds.yaml"]);
  await waitForBuoyCrds(kube);
  await kube.admin.json("POST", "/api/v1/namespaces", { metadata: { name: namespace } });
  await grantTenant(kube, {
    user: `${prefix}-tenant`,
    namespace,
    role: "floating-ips",
    rules: [{ apiGroups: ["buoy.dev"], resources: ["floatingips"], verbs: ["*"] }],
  });
  tenantKubeconfig = kube.writeKubeconfig(join(work, "tenant.kubeconfig"), {
    token: kube.tokens[`${prefix}-tenant`] ?? "",
  });
}, 120_000);

afterAll(async () => {
  await kube?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("buoy apply and delete on the kubernetes datastore", () => {
  it("creates a file's pools, peer and FloatingIPs, then replaces them keeping their metadata", async () => {
    const applied = buoy(["apply", "-f", "-"], FILE);
    expect(applied, applied.stderr).toMatchObject({
      status: 0,
      stdout: "Successfully applied 5 resource(s)\n",
    });
    expect(applied.stderr).toContain("applied 5 of 5");
    expect(await names(`${BUOY}/ippools`)).toEqual([`${prefix}-floating`, `${prefix}-pods`]);
    expect(await names(`${BUOY}/bgppeers`)).toEqual([`${prefix}-tor`]);
    const web = await kube.admin.json<KubeObject>(
      "GET",
      `${BUOY}/namespaces/${namespace}/floatingips/web`,
    );
    expect(web.spec).toEqual({
      address: "10.96.0.7",
      podSelector: { matchLabels: { app: "web" } },
      egress: true,
    });
    expect(web.metadata?.generation).toBe(1);

    // What `buoy get` reads back is what was applied.
    const got = buoy(["get", "ippool", `${prefix}-floating`, "-o", "yaml"]);
    expect(got.status, got.stderr).toBe(0);
    expect(got.stdout).toContain("cidr: 10.96.0.0/24");
    expect(got.stdout).toContain("disabled: true");
    const fips = buoy(["get", "floatingips"]);
    expect(fips.status, fips.stderr).toBe(0);
    expect(fips.stdout).toContain(`${namespace}/db`);

    // An administrator's label, then the file again with one change.
    await kube.admin.json(
      "PATCH",
      `${BUOY}/ippools/${prefix}-floating`,
      { metadata: { labels: { team: "net" } } },
      "application/merge-patch+json",
    );
    const changed = FILE.replace("egress: true", "egress: false");
    const again = buoy(["apply", "-f", "-"], changed);
    expect(again.status, again.stderr).toBe(0);
    const pool = await kube.admin.json<KubeObject>("GET", `${BUOY}/ippools/${prefix}-floating`);
    expect(pool.metadata?.labels).toEqual({ team: "net" });
    const webAfter = await kube.admin.json<KubeObject>(
      "GET",
      `${BUOY}/namespaces/${namespace}/floatingips/web`,
    );
    expect(webAfter.metadata?.uid).toBe(web.metadata?.uid);
    expect(webAfter.metadata?.generation).toBe(2);
    expect((webAfter.spec as { egress: boolean }).egress).toBe(false);
  });

  it("refuses what apply refuses on etcd before writing any of the file", async () => {
    const file = `
apiVersion: buoy.dev/v1
kind: FloatingIP
metadata: { name: cache, namespace: ${namespace} }
spec: { pool: ${prefix}-floating, podSelector: {} }
---
apiVersion: buoy.dev/v1
kind: IPPool
metadata: { name: ${prefix}-more }
spec: { cidr: 10.244.3.0/24 }
`;
    const overlap = buoy(["apply", "-f", "-"], file);
    expect(overlap.status).toBe(1);
    expect(overlap.stderr).toContain(
      `IP pool ${prefix}-more (10.244.3.0/24) overlaps IP pool ${prefix}-pods (10.244.0.0/16)`,
    );
    const outside = buoy(
      ["apply", "-f", "-"],
      `apiVersion: buoy.dev/v1
kind: FloatingIP
metadata: { name: cache, namespace: ${namespace} }
spec: { address: 192.0.2.9, podSelector: {} }
`,
    );
    expect(outside.stderr).toContain(
      `FloatingIP ${namespace}/cache: floating IP 192.0.2.9 is not within any configured IP pool`,
    );
    const rival = buoy(
      ["apply", "-f", "-"],
      `apiVersion: buoy.dev/v1
kind: FloatingIP
metadata: { name: cache, namespace: ${namespace} }
spec: { address: 10.96.0.7, podSelector: {} }
`,
    );
    expect(rival.stderr).toContain(
      `FloatingIP ${namespace}/cache: 10.96.0.7 is already the address of FloatingIP ${namespace}/web`,
    );
    expect(await names(`${BUOY}/namespaces/${namespace}/floatingips`)).toEqual(["db", "web"]);
    expect(await names(`${BUOY}/ippools`)).toEqual([`${prefix}-floating`, `${prefix}-pods`]);
  });

  it("refuses the API server's own kinds, naming what changes them", () => {
    const node = buoy(
      ["apply", "-f", "-"],
      "apiVersion: buoy.dev/v1\nkind: Node\nmetadata: { name: node-1 }\nspec: { addresses: [192.0.2.1], asNumber: 64600 }\n",
    );
    expect(node.status).toBe(1);
    expect(node.stderr).toContain("kubectl annotate node node-1 projectcalico.org/ASNumber=64600");
    const deleted = buoy(["delete", "node", "node-1"]);
    expect(deleted.status).toBe(1);
    expect(deleted.stderr).toContain("the Node is the Kubernetes Node (kubectl delete node)");
  });

  it("a tenant's own token gets the API server's refusal and writes nothing", async () => {
    const pool = `apiVersion: buoy.dev/v1
kind: IPPool
metadata: { name: ${prefix}-stolen }
spec: { cidr: 10.97.0.0/24 }
`;
    const applied = buoy(["apply", "-f", "-"], pool, tenantKubeconfig);
    expect(applied.status).toBe(1);
    expect(applied.stderr).toMatch(/forbidden/);
    const deleted = buoy(["delete", "ippool", `${prefix}-floating`], "", tenantKubeconfig);
    expect(deleted.status).toBe(1);
    expect(deleted.stderr).toMatch(/forbidden/);
    expect(await names(`${BUOY}/ippools`)).toEqual([`${prefix}-floating`, `${prefix}-pods`]);
  });

  it("keeps a pool with an allocated address, which ipam check finds leaked and ipam release frees; deletes a file's resources", async () => {
    await kube.admin.json("POST", `${BUOY}/ipamblocks`, {
      apiVersion: "buoy.dev/v1",
      kind: "IPAMBlock",
      metadata: { name: "10.244.0.0-26", labels: { "node.buoy.dev/node-1": "" } },
      spec: {
        cidr: "10.244.0.0/26",
        affinity: "node-1",
        allocations: {
          "10.244.0.5": {
            handle: "k8s-pod-network.c1",
            node: "node-1",
            containerID: "c1",
            namespace,
            pod: "gone",
          },
        },
      },
    });
    const inUse = buoy(["delete", "ippool", `${prefix}-pods`]);
    expect(inUse.status).toBe(1);
    expect(inUse.stderr).toContain(
      `cannot delete IP pool ${prefix}-pods (10.244.0.0/16): 1 address(es) are allocated in 1 block(s)`,
    );
    // No workload endpoint has it: leaked, and released by the datastore's own release.
    const check = buoy(["ipam", "check"]);
    expect(check.status).toBe(1);
    expect(check.stdout).toMatch(/10\.244\.0\.5 +leaked +.*-shop\/gone +node-1 +c1 /);
    const released = buoy(["ipam", "release", "10.244.0.5", "--grace", "0"]);
    expect(released, released.stderr).toMatchObject({
      status: 0,
      stdout: `released 10.244.0.5 (handle k8s-pod-network.c1 of ${namespace}/gone, node node-1)\n`,
    });
    const block = await kube.admin.json<KubeObject>("GET", `${BUOY}/ipamblocks/10.244.0.0-26`);
    expect((block.spec as { allocations: object }).allocations).toEqual({});
    expect(buoy(["ipam", "check"])).toMatchObject({ status: 0 });
    expect(buoy(["ipam", "release", "10.244.0.5", "--grace", "0"]).stderr).toContain(
      "10.244.0.5 is not allocated in any IPAM block",
    );
    const peer = buoy(["delete", "bgppeer", `${prefix}-tor`]);
    expect(peer, peer.stderr).toMatchObject({
      status: 0,
      stdout: "Successfully deleted 1 'BGPPeer' resource(s)\n",
    });
    const file = FILE.split("---").filter(
      (document) => !document.includes(`${prefix}-pods`) && !document.includes(`${prefix}-tor`),
    );
    const gone = buoy(["delete", "-f", "-"], file.join("---"));
    expect(gone.status, gone.stderr).toBe(0);
    expect(await names(`${BUOY}/ippools`)).toEqual([`${prefix}-pods`]);
    expect(await names(`${BUOY}/bgppeers`)).toEqual([]);
    expect(await names(`${BUOY}/namespaces/${namespace}/floatingips`)).toEqual([]);
  });
});
