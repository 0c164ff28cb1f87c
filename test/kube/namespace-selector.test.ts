// Who may use a pool (issue 13, SPEC §4): IPPool namespaceSelector read
// against the pod's Namespace labels by the real plugin, with its own
// service-account token (RBAC: get namespaces), against a real
// kube-apiserver. Two namespaces labelled differently: each gets addresses
// from its own pool only, and a floating IP from a pool its namespace may not
// use is refused with an Event, leaving nothing behind.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  addNetns,
  CNI_DIR,
  deleteNetns,
  execConflist,
  hostInterfaces,
  runPrefix,
  type Conflist,
} from "../support/harness.js";
import { startKubeApiserver, type KubeApiserver, type KubeObject } from "../support/kube.js";
import {
  applyManifests,
  createKubePools,
  installCniFromConfigMap,
  waitForBuoyCrds,
} from "../support/buoy-install.js";

const NODE = "node-1";
const FLOATING = "cni.projectcalico.org/floatingIPs";
const BUOY = "/apis/buoy.dev/v1";
const prefix = runPrefix();
const teamA = `${prefix}-a`;
const teamB = `${prefix}-b`;

let kube: KubeApiserver;
let work: string;
let conflist: Conflist;
let netnses: string[] = [];

type Block = KubeObject & { spec: { cidr: string; allocations?: Record<string, unknown> } };

beforeAll(async () => {
  kube = await startKubeApiserver();
  work = mkdtempSync(join(tmpdir(), `${prefix}-nssel-`));
  applyManifests(kube, ["crds.yaml", "rbac.yaml", "calico-config.yaml"]);
  await waitForBuoyCrds(kube);
  const path = await installCniFromConfigMap(kube, work, NODE, join(CNI_DIR, "buoy"));
  conflist = JSON.parse(readFileSync(path, "utf8")) as Conflist;
  await createKubePools(kube, {
    "pods-a": { cidr: "10.244.1.0/24", namespaceSelector: "team == 'a'" },
    "pods-b": { cidr: "10.244.2.0/24", namespaceSelector: "team in {'b'}" },
    "floating-a": { cidr: "10.96.1.0/24", disabled: true, namespaceSelector: "team == 'a'" },
    // No webhook refuses it yet: it selects no namespace.
    broken: { cidr: "10.96.9.0/24", disabled: true, namespaceSelector: "team ==" },
  });
  await kube.admin.json("POST", "/api/v1/nodes", { metadata: { name: NODE } });
  for (const [name, team] of [
    [teamA, "a"],
    [teamB, "b"],
  ] as const) {
    await kube.admin.json("POST", "/api/v1/namespaces", { metadata: { name, labels: { team } } });
  }
}, 180_000);

afterEach(() => {
  for (const ns of netnses) deleteNetns(ns);
  netnses = [];
});

afterAll(async () => {
  await kube?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function createPod(namespace: string, name: string, annotation?: string): Promise<void> {
  await kube.admin.json("POST", `/api/v1/namespaces/${namespace}/pods`, {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      ...(annotation === undefined ? {} : { annotations: { [FLOATING]: annotation } }),
    },
    spec: { nodeName: NODE, containers: [{ name: "c", image: "busybox" }] },
  });
}

function sandbox(namespace: string, pod: string) {
  const netns = `${prefix}-${pod}`;
  netnses.push(netns);
  return {
    containerID: `${pod}-${Math.random().toString(16).slice(2, 10)}`,
    netns: addNetns(netns),
    pod: { namespace, name: pod },
  };
}

async function leftovers() {
  const blocks = await kube.admin.json<{ items: Block[] }>("GET", `${BUOY}/ipamblocks`);
  const claims = await kube.admin.json<{ items: KubeObject[] }>("GET", `${BUOY}/floatingipclaims`);
  return {
    allocations: blocks.items.flatMap((block) => Object.keys(block.spec.allocations ?? {})),
    claims: claims.items.map((claim) => claim.metadata?.name),
    interfaces: hostInterfaces(),
  };
}

async function events(namespace: string, pod: string) {
  const list = await kube.admin.json<{
    items: { reason: string; message: string; type: string; involvedObject: { name: string } }[];
  }>("GET", `/api/v1/namespaces/${namespace}/events`);
  return list.items.filter((event) => event.involvedObject.name === pod);
}

async function podAnnotations(namespace: string, pod: string): Promise<string[]> {
  const object = await kube.admin.json<KubeObject>(
    "GET",
    `/api/v1/namespaces/${namespace}/pods/${pod}`,
  );
  return Object.keys(object.metadata?.annotations ?? {});
}

describe("IPPool namespaceSelector on the kubernetes datastore", () => {
  it("gives each namespace a pod address from its own pool", async () => {
    await createPod(teamA, "web-a");
    await createPod(teamB, "web-b");
    const [a, b] = [sandbox(teamA, "web-a"), sandbox(teamB, "web-b")];
    const addedA = await execConflist(conflist, "ADD", a);
    expect(addedA.exitCode, addedA.raw + addedA.stderr).toBe(0);
    const addedB = await execConflist(conflist, "ADD", b);
    expect(addedB.exitCode, addedB.raw + addedB.stderr).toBe(0);
    const address = (outcome: typeof addedA) =>
      String((outcome.output.ips as { address: string }[])[0]?.address);
    expect(address(addedA)).toMatch(/^10\.244\.1\.\d+\/32$/);
    expect(address(addedB)).toMatch(/^10\.244\.2\.\d+\/32$/);
    for (const call of [a, b]) expect((await execConflist(conflist, "DEL", call)).exitCode).toBe(0);
    expect((await leftovers()).allocations).toEqual([]);
  });

  it("refuses a floating IP from a pool the namespace may not use, with an Event, leaving nothing", async () => {
    await createPod(teamB, "intruder", '["10.96.1.5"]');
    const before = await leftovers();
    const refused = await execConflist(conflist, "ADD", sandbox(teamB, "intruder"));
    const message = `floating IP 10.96.1.5 is in pool floating-a, which namespace ${teamB} may not use`;
    expect(refused.exitCode).toBe(1);
    expect(refused.output).toMatchObject({ code: 100, msg: message });
    expect(await events(teamB, "intruder")).toEqual([
      expect.objectContaining({ type: "Warning", reason: "FloatingIPRefused", message }),
    ]);
    expect(await leftovers()).toEqual(before);
    expect(await podAnnotations(teamB, "intruder")).toEqual([FLOATING]);

    // The namespace the pool selects gets it.
    await createPod(teamA, "owner", '["10.96.1.5"]');
    const owner = sandbox(teamA, "owner");
    const added = await execConflist(conflist, "ADD", owner);
    expect(added.exitCode, added.raw + added.stderr).toBe(0);
    expect((await leftovers()).claims).toEqual(["10.96.1.5"]);
    expect((await execConflist(conflist, "DEL", owner)).exitCode).toBe(0);
    expect(await leftovers()).toEqual(before);
  });

  it("a pool whose selector does not parse selects no namespace (fail closed)", async () => {
    await createPod(teamA, "hopeful", '["10.96.9.5"]');
    const before = await leftovers();
    const refused = await execConflist(conflist, "ADD", sandbox(teamA, "hopeful"));
    expect(refused.output).toMatchObject({
      code: 100,
      msg: `floating IP 10.96.9.5 is in pool broken, which namespace ${teamA} may not use`,
    });
    expect(await leftovers()).toEqual(before);
  });
});
