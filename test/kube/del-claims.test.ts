// DEL's claims on a real kube-apiserver v1.20.2, with the plugin's own token:
// a DEL deletes a claim only while it still names the DEL's container.
// The FloatingIP controller moves a claim in place (same uid, a new
// generation: src/kube/floating-ip-controller.ts #moveClaim) while the old
// pod's sandbox is torn down; DEL deletes on uid and resourceVersion
// (src/kube/release-container.ts), so the moved claim survives the old
// pod's DEL, even when the move lands between DEL's read and its delete.
// And an older buoy's claims, which carry no container label: found by the
// pod's annotation, and otherwise once docs/install.md's command labels them.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Released } from "../../src/datastore/datastore.js";
import { FLOATING_IP_LABEL } from "../../src/failover/floating-ip.js";
import type { KubeHttp } from "../../src/kube/http.js";
import { KubernetesDatastore } from "../../src/kube/kube-datastore.js";
import { ipObjectName } from "../../src/kube/names.js";
import { claimToObject } from "../../src/kube/objects.js";
import { installPluginConf, pluginKubeHttp } from "../support/buoy-install.js";
import { ROOT, runPrefix, waitFor } from "../support/harness.js";
import { KUBE_BIN, startKubeApiserver, type KubeApiserver } from "../support/kube.js";

const CLAIMS = "/apis/buoy.dev/v1/floatingipclaims";
const NODE = "node-1";
const NAMESPACE = "default";
const CONTAINER_LABEL = "buoy.dev/container";
const prefix = runPrefix();

let kube: KubeApiserver;
let work: string;
let http: KubeHttp;

interface ClaimObject {
  metadata: {
    name: string;
    uid: string;
    resourceVersion: string;
    generation: number;
    labels?: Record<string, string>;
  };
  spec: { ip: string; containerID: string; pod: string; floatingIP?: string };
}

/** A container ID as a CRI runtime makes them: 64 hex digits, one more than a label holds. */
function containerID(name: string): string {
  return Buffer.from(name).toString("hex").padEnd(64, "0").slice(0, 64);
}

/** The claim of `pod`'s sandbox as the plugin makes it: labelled with its container. */
function pluginClaim(ip: string, pod: string, container: string) {
  return claimToObject(
    {
      ip,
      namespace: NAMESPACE,
      pod,
      containerID: container,
      node: NODE,
      internalIP: "10.0.0.5",
      endpoint: "eth0",
      createdAt: "",
    },
    undefined,
  );
}

/** The claim the FloatingIP controller makes for `pod`'s sandbox (its decorate()). */
function controllerClaim(ip: string, pod: string, container: string) {
  const object = pluginClaim(ip, pod, container);
  return {
    ...object,
    metadata: {
      ...object.metadata,
      labels: { ...object.metadata.labels, [FLOATING_IP_LABEL]: "fip-uid" },
    },
    spec: { ...object.spec, floatingIP: `${NAMESPACE}/web` },
  };
}

/** An older buoy's claim: no container label. */
function unlabelledClaim(ip: string, pod: string, container: string) {
  const object = pluginClaim(ip, pod, container);
  return { ...object, metadata: { name: object.metadata.name } };
}

function readClaim(ip: string): Promise<ClaimObject | undefined> {
  return kube.admin
    .json<ClaimObject>("GET", `${CLAIMS}/${ipObjectName(ip) ?? ip}`)
    .catch(() => undefined);
}

/** Moves the claim of `ip` to `pod`'s sandbox in place, as the controller's #moveClaim does. */
async function moveClaim(ip: string, pod: string, container: string): Promise<ClaimObject> {
  const current = await readClaim(ip);
  const next = controllerClaim(ip, pod, container);
  return kube.admin.json<ClaimObject>("PUT", `${CLAIMS}/${current?.metadata.name}`, {
    ...next,
    metadata: { ...next.metadata, resourceVersion: current?.metadata.resourceVersion },
  });
}

/** Waits until the watch cache (what DEL lists from) shows `ip`'s claim under `container`'s label. */
async function untilListed(ip: string, container: string): Promise<void> {
  const selector = `${CONTAINER_LABEL}=${container.slice(0, 63)}`;
  const listed = () =>
    kube.admin.json<{ items: ClaimObject[] }>(
      "GET",
      `${CLAIMS}?${new URLSearchParams({ labelSelector: selector, resourceVersion: "0" }).toString()}`,
    );
  await waitFor(
    `the claim of ${ip} listed for ${container}`,
    async () => (await listed()).items.some((item) => item.spec.ip === ip),
    10_000,
    () => selector,
  );
}

async function createPod(name: string, annotations: Record<string, string> = {}): Promise<void> {
  await kube.admin.json("POST", `/api/v1/namespaces/${NAMESPACE}/pods`, {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, annotations },
    spec: { nodeName: NODE, containers: [{ name: "c", image: "busybox" }] },
  });
}

/**
 * The plugin's DEL of `container` (pod `pod`), through its own token; with
 * `beforeClaimDelete`, run once just before its first claim delete reaches
 * the API server: a write that races the DEL's read.
 */
async function del(
  pod: string,
  container: string,
  beforeClaimDelete?: () => Promise<unknown>,
): Promise<Released> {
  let hook = beforeClaimDelete;
  const racing: KubeHttp = {
    server: http.server,
    get: (path) => http.get(path),
    create: (path, body) => http.create(path, body),
    replace: (path, body) => http.replace(path, body),
    patch: (path, body, type) => http.patch(path, body, type),
    delete: async (path, preconditions) => {
      if (hook && path.startsWith(`${CLAIMS}/`)) {
        const run = hook;
        hook = undefined;
        await run();
      }
      return http.delete(path, preconditions);
    },
  };
  const released = await new KubernetesDatastore(racing, NODE).release({
    node: NODE,
    containerID: container,
    ifname: "eth0",
    namespace: NAMESPACE,
    pod,
  });
  expect(hook, "the racing write ran").toBeUndefined();
  return released;
}

/** docs/install.md's command that labels an older buoy's claims, as the operator runs it. */
function runUpgradeLabelling(): string {
  const doc = readFileSync(join(ROOT, "docs/install.md"), "utf8");
  const at = doc.indexOf("label them once:");
  const start = doc.indexOf("```sh\n", at) + "```sh\n".length;
  const script = doc.slice(start, doc.indexOf("```", start));
  expect(at).toBeGreaterThan(0);
  expect(script).toContain("kubectl label floatingipclaim");
  const run = spawnSync("sh", ["-c", script], {
    encoding: "utf8",
    env: { ...process.env, KUBECONFIG: kube.kubeconfig, PATH: `${KUBE_BIN}:${process.env.PATH}` },
  });
  expect(run.status, run.stderr).toBe(0);
  return `${run.stdout}${run.stderr}`;
}

beforeAll(async () => {
  kube = await startKubeApiserver();
  work = mkdtempSync(join(tmpdir(), `${prefix}-del-claims-`));
  const conf = await installPluginConf(kube, work, NODE);
  http = pluginKubeHttp(conf);
}, 180_000);

afterAll(async () => {
  await kube?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("DEL racing the FloatingIP controller's in-place move", () => {
  it("the old pod's DEL leaves the claim moved in place between its read and its delete", async () => {
    const ip = "203.0.113.1";
    const [old, moved] = [containerID("race-old"), containerID("race-new")];
    await createPod("race-old");
    const made = await kube.admin.json<ClaimObject>(
      "POST",
      CLAIMS,
      controllerClaim(ip, "race-old", old),
    );
    await untilListed(ip, old);
    let after: ClaimObject | undefined;
    const released = await del("race-old", old, async () => {
      after = await moveClaim(ip, "race-new", moved);
    });
    expect(released.floatingIps).toEqual([]);
    const kept = await readClaim(ip);
    expect(kept?.metadata.uid).toBe(made.metadata.uid);
    expect(kept?.metadata.generation).toBeGreaterThan(made.metadata.generation);
    expect(kept?.metadata.resourceVersion).toBe(after?.metadata.resourceVersion);
    expect(kept?.spec).toMatchObject({ containerID: moved, pod: "race-new" });
    expect(kept?.metadata.labels?.[CONTAINER_LABEL]).toBe(moved.slice(0, 63));

    // The new holder's own DEL finds it by its new label and deletes it.
    await untilListed(ip, moved);
    expect((await del("race-new", moved)).floatingIps).toEqual([ip]);
    expect(await readClaim(ip)).toBeUndefined();
  }, 60_000);

  it("the old pod's DEL after the move leaves the claim, whatever the watch cache still shows", async () => {
    const ip = "203.0.113.2";
    const [old, moved] = [containerID("after-old"), containerID("after-new")];
    await createPod("after-old", { "cni.projectcalico.org/floatingIPs": `["${ip}"]` });
    const made = await kube.admin.json<ClaimObject>(
      "POST",
      CLAIMS,
      controllerClaim(ip, "after-old", old),
    );
    await untilListed(ip, old);
    await moveClaim(ip, "after-new", moved);
    expect((await del("after-old", old)).floatingIps).toEqual([]);
    const kept = await readClaim(ip);
    expect(kept?.metadata.uid).toBe(made.metadata.uid);
    expect(kept?.spec.containerID).toBe(moved);
  }, 60_000);

  it("without a move, the pod's DEL deletes its claim", async () => {
    const ip = "203.0.113.3";
    const own = containerID("still");
    await createPod("still");
    await kube.admin.json("POST", CLAIMS, controllerClaim(ip, "still", own));
    await untilListed(ip, own);
    expect((await del("still", own)).floatingIps).toEqual([ip]);
    expect(await readClaim(ip)).toBeUndefined();
  }, 60_000);
});

describe("an older buoy's claims, without the container label", () => {
  it("DEL finds one its pod's annotation names; another waits for install.md's labelling, then goes at DEL", async () => {
    const [named, unnamed] = ["203.0.113.10", "203.0.113.11"];
    const [first, second] = [containerID("old-named"), containerID("old-unnamed")];
    await createPod("old-named", { "cni.projectcalico.org/floatingIPs": `["${named}"]` });
    await kube.admin.json("POST", CLAIMS, unlabelledClaim(named, "old-named", first));
    await kube.admin.json("POST", CLAIMS, unlabelledClaim(unnamed, "old-unnamed", second));
    expect((await del("old-named", first)).floatingIps).toEqual([named]);
    // Its pod is gone: nothing names the claim, and DEL lists no unlabelled claims.
    expect((await del("old-unnamed", second)).floatingIps).toEqual([]);
    expect(await readClaim(unnamed)).toBeDefined();

    const output = runUpgradeLabelling();
    expect(output).toContain("labeled");
    expect((await readClaim(unnamed))?.metadata.labels?.[CONTAINER_LABEL]).toBe(
      second.slice(0, 63),
    );
    await untilListed(unnamed, second);
    expect((await del("old-unnamed", second)).floatingIps).toEqual([unnamed]);
  }, 60_000);
});
