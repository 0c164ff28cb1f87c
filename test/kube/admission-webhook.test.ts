// The admission webhook (issue 13 item 4, ADR 0010) on a real kube-apiserver:
// `buoy webhook` runs as a process with the buoy-webhook service account's
// token (manifests/webhook.yaml's RBAC), sets up its own TLS (the Secret, the
// caBundle), and the API server calls it for every IPPool and Pod write. As
// the admin, an overlapping pool and a blockSize change of a pool with
// allocations are refused with the words of `buoy apply`, also through
// kubectl. As a tenant whose static token may only edit pods in its own
// namespace, a malformed, over-bound (calico-config's
// max_floating_ips_per_pod), outside-every-pool or forbidden-pool floatingIPs
// annotation is refused at create and at update with ADD's words, and
// nothing is left behind. With the webhook stopped, pool writes fail
// (failurePolicy Fail) and pods are admitted (Ignore: ADD still refuses).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { blockToObject } from "../../src/kube/objects.js";
import { freePort, ROOT, runPrefix, sleep } from "../support/harness.js";
import {
  startKubeApiserver,
  type KubeApiserver,
  type KubeClient,
  type KubeObject,
} from "../support/kube.js";
import { applyManifests, kubectl, waitForBuoyCrds } from "../support/buoy-install.js";

const FLOATING = "cni.projectcalico.org/floatingIPs";
const BUOY = "/apis/buoy.dev/v1";
const VWC = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/buoy";
const TENANT = "tenant-b";
const prefix = runPrefix();
const tenantNs = `${prefix}-b`;

let kube: KubeApiserver;
let tenant: KubeClient;
let work: string;
let webhook: { child: ChildProcess; log: string[] } | undefined;
let webhookPort = 0;

async function startWebhook(kubeconfig: string, port: number) {
  const log: string[] = [];
  const child = spawn(
    "node",
    [join(ROOT, "dist/buoy"), "webhook", "--listen", `127.0.0.1:${port}`, "--tls-san", "127.0.0.1"],
    { env: { ...process.env, KUBECONFIG: kubeconfig }, stdio: ["ignore", "pipe", "pipe"] },
  );
  child.stdout?.on("data", (chunk: Buffer) => log.push(...chunk.toString().split("\n")));
  child.stderr?.on("data", (chunk: Buffer) => log.push(chunk.toString()));
  for (let i = 0; i < 200 && child.exitCode === null; i++) {
    if (log.some((line) => line.includes('"webhook.listening"'))) return { child, log };
    await sleep(50);
  }
  child.kill("SIGKILL");
  throw new Error(`buoy webhook did not start: ${log.join("\n")}`);
}

async function stopWebhook(): Promise<number | null> {
  if (!webhook || webhook.child.exitCode !== null) return webhook?.child.exitCode ?? null;
  const exited = new Promise<number | null>((resolve) => webhook?.child.once("exit", resolve));
  webhook.child.kill("SIGTERM");
  return exited;
}

beforeAll(async () => {
  kube = await startKubeApiserver({ users: [{ name: TENANT }] });
  work = mkdtempSync(join(tmpdir(), `${prefix}-webhook-`));
  applyManifests(kube, ["crds.yaml", "webhook.yaml"]);
  await waitForBuoyCrds(kube);
  // calico-config as shipped, the bound lowered to 4: the webhook reads it from there.
  const calicoConfig = parse(readFileSync(join(ROOT, "manifests/calico-config.yaml"), "utf8")) as {
    data: Record<string, string>;
  };
  const template = calicoConfig.data.cni_network_config ?? "";
  calicoConfig.data.cni_network_config = template.replace(
    '"feature_control": {',
    '"max_floating_ips_per_pod": 4, "feature_control": {',
  );
  expect(calicoConfig.data.cni_network_config).not.toBe(template);
  await kube.admin.json("POST", "/api/v1/namespaces/kube-system/configmaps", calicoConfig);
  // This API server has no Service routing (no kube-proxy, no endpoints
  // controller): point the manifest's webhooks at the process directly.
  const port = await freePort();
  webhookPort = port;
  const config = await kube.admin.json<{ webhooks: Record<string, unknown>[] }>("GET", VWC);
  for (const entry of config.webhooks) {
    const path = (entry.clientConfig as { service: { path: string } }).service.path;
    entry.clientConfig = { url: `https://127.0.0.1:${port}${path}` };
  }
  await kube.admin.json("PUT", VWC, config);
  const token = await kube.serviceAccountToken("kube-system", "buoy-webhook");
  webhook = await startWebhook(
    kube.writeKubeconfig(join(work, "webhook.kubeconfig"), { token }),
    port,
  );

  await kube.admin.json("POST", "/api/v1/namespaces", {
    metadata: { name: tenantNs, labels: { team: "b" } },
  });
  await kube.admin.json("POST", `/apis/rbac.authorization.k8s.io/v1/namespaces/${tenantNs}/roles`, {
    metadata: { name: "pod-editor" },
    rules: [
      { apiGroups: [""], resources: ["pods"], verbs: ["create", "get", "list", "patch", "update"] },
      { apiGroups: ["buoy.dev"], resources: ["floatingips"], verbs: ["create", "list"] },
    ],
  });
  await kube.admin.json(
    "POST",
    `/apis/rbac.authorization.k8s.io/v1/namespaces/${tenantNs}/rolebindings`,
    {
      metadata: { name: "pod-editor" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "pod-editor" },
      subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: TENANT }],
    },
  );
  tenant = kube.client({ token: kube.tokens[TENANT] ?? "" });
}, 180_000);

afterAll(async () => {
  await stopWebhook();
  await kube?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

const pool = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: "buoy.dev/v1",
  kind: "IPPool",
  metadata: { name },
  spec,
});

const messageOf = (response: { body: unknown }): string =>
  (response.body as { message?: string }).message ?? "";

async function poolNames(): Promise<string[]> {
  const list = await kube.admin.json<{ items: KubeObject[] }>("GET", `${BUOY}/ippools`);
  return list.items.map((item) => item.metadata?.name ?? "").sort();
}

describe("buoy webhook's TLS, set up by itself", () => {
  it("created the Secret with the CA and the serving pair, and set the caBundle", async () => {
    const secret = await kube.admin.json<{ type: string; data: Record<string, string> }>(
      "GET",
      "/api/v1/namespaces/kube-system/secrets/buoy-webhook-tls",
    );
    expect(secret.type).toBe("Opaque");
    expect(Object.keys(secret.data).sort()).toEqual(["ca.crt", "tls.crt", "tls.key"]);
    const config = await kube.admin.json<{ webhooks: { clientConfig: { caBundle?: string } }[] }>(
      "GET",
      VWC,
    );
    for (const entry of config.webhooks)
      expect(entry.clientConfig.caBundle).toBe(secret.data["ca.crt"]);
    expect(webhook?.log.join("\n")).toContain('"created":true');
  });
});

/** A request straight to the webhook, trusting the CA it made (and nothing else). */
async function callWebhook(method: string, path: string, body?: string) {
  const secret = await kube.admin.json<{ data: Record<string, string> }>(
    "GET",
    "/api/v1/namespaces/kube-system/secrets/buoy-webhook-tls",
  );
  const ca = Buffer.from(secret.data["ca.crt"] ?? "", "base64").toString("utf8");
  return new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = httpsRequest(
      {
        host: "127.0.0.1",
        port: webhookPort,
        method,
        path,
        ca,
        headers: { "content-type": "application/json" },
      },
      (res) => {
        let text = "";
        res.on("data", (chunk: Buffer) => (text += chunk.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

describe("buoy webhook's HTTPS endpoints", () => {
  it("answers /healthz over TLS its own CA vouches for, and refuses what is no AdmissionReview", async () => {
    expect(await callWebhook("GET", "/healthz")).toEqual({ status: 200, text: '{"status":"ok"}' });
    const notReview = await callWebhook("POST", "/validate-pod", '{"kind":"Pod"}');
    expect(notReview).toEqual({
      status: 400,
      text: '{"message":"expected an AdmissionReview of admission.k8s.io/v1"}',
    });
    expect((await callWebhook("POST", "/validate-pod", "{")).status).toBe(400);
    expect((await callWebhook("POST", "/nowhere", "{}")).status).toBe(404);
  });
});

describe("IPPool writes, as the admin", () => {
  beforeAll(async () => {
    for (const [name, spec] of Object.entries({
      pods: { cidr: "10.244.0.0/16" },
      floating: { cidr: "10.96.0.0/24", disabled: true },
      "team-a": { cidr: "10.97.0.0/24", disabled: true, namespaceSelector: "team == 'a'" },
    })) {
      await kube.admin.json("POST", `${BUOY}/ippools`, pool(name, spec));
    }
    // An address allocated in the floating pool, as IPAM records it.
    const block = blockToObject({
      cidr: "10.96.0.0/26",
      affinity: "node-1",
      allocations: { "10.96.0.2": { handle: "k8s-pod-network.c1", node: "node-1" } },
    });
    await kube.admin.json("POST", `${BUOY}/ipamblocks`, block);
  });

  it("refuses a pool overlapping another, naming both", async () => {
    const response = await kube.admin.request(
      "POST",
      `${BUOY}/ippools`,
      pool("overlap", { cidr: "10.96.0.128/25" }),
    );
    expect(response.status).toBe(403);
    expect(messageOf(response)).toContain(
      'admission webhook "ippools.buoy.dev" denied the request: IP pool overlap (10.96.0.128/25) overlaps IP pool floating (10.96.0.0/24)',
    );
    expect(await poolNames()).toEqual(["floating", "pods", "team-a"]);
  });

  it("refuses it through kubectl apply too, at once", () => {
    const file = join(work, "overlap.yaml");
    writeFileSync(file, JSON.stringify(pool("overlap", { cidr: "10.0.0.0/8" })));
    const started = Date.now();
    const applied = kubectl(kube.kubeconfig, "apply", "-f", file);
    expect(applied.ok).toBe(false);
    expect(applied.out).toContain(
      'admission webhook "ippools.buoy.dev" denied the request: IP pool overlap (10.0.0.0/8) overlaps IP pool',
    );
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("refuses a blockSize or cidr change of a pool with allocations, and keeps the pool", async () => {
    for (const [spec, words] of [
      [{ blockSize: 28 }, "cannot change blockSize 26 -> 28 of IP pool floating"],
      [
        { cidr: "10.96.0.0/23" },
        "cannot change cidr 10.96.0.0/24 -> 10.96.0.0/23 of IP pool floating",
      ],
    ] as const) {
      const response = await kube.admin.request(
        "PATCH",
        `${BUOY}/ippools/floating`,
        { spec },
        {
          contentType: "application/merge-patch+json",
        },
      );
      expect(response.status).toBe(403);
      expect(messageOf(response)).toContain(
        `admission webhook "ippools.buoy.dev" denied the request: ${words}: 1 address(es) are allocated in 1 of its block(s)`,
      );
    }
    const stored = await kube.admin.json<{ spec: Record<string, unknown> }>(
      "GET",
      `${BUOY}/ippools/floating`,
    );
    expect(stored.spec).toMatchObject({ cidr: "10.96.0.0/24" });
    expect(stored.spec.blockSize ?? 26).toBe(26);
  });

  it("admits a blockSize change of a pool whose blocks hold nothing, and other edits", async () => {
    await kube.admin.json(
      "PATCH",
      `${BUOY}/ippools/pods`,
      { spec: { blockSize: 24 } },
      "application/merge-patch+json",
    );
    await kube.admin.json(
      "PATCH",
      `${BUOY}/ippools/floating`,
      { spec: { natOutgoing: true } },
      "application/merge-patch+json",
    );
  });

  it("refuses a namespaceSelector that does not parse, as buoy apply does", async () => {
    const response = await kube.admin.request(
      "POST",
      `${BUOY}/ippools`,
      pool("broken", { cidr: "10.98.0.0/24", namespaceSelector: "team ==" }),
    );
    expect(response.status).toBe(403);
    expect(messageOf(response)).toContain(
      "IP pool broken: namespaceSelector 'team ==' is not a valid selector",
    );
  });
});

describe("floatingIPs on pods, as a tenant of its own namespace", () => {
  const podPath = `/api/v1/namespaces/${tenantNs}/pods`;
  const podObject = (name: string, annotation?: string) => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      ...(annotation !== undefined ? { annotations: { [FLOATING]: annotation } } : {}),
    },
    spec: { containers: [{ name: "c", image: "pause" }] },
  });
  const bad = [
    {
      desc: "malformed JSON",
      value: "[10.96.0.5",
      words: "failed to parse '[10.96.0.5' as JSON: ",
    },
    {
      desc: "an entry that is no IP",
      value: '["nope"]',
      words: "invalid floating IP 'nope': not an IP address",
    },
    {
      desc: "more than the bound",
      value: JSON.stringify(["10.96.0.5", "10.96.0.6", "10.96.0.7", "10.96.0.8", "10.96.0.9"]),
      words: "pod asks for 5 floating IPs; at most 4",
    },
    {
      desc: "outside every pool",
      value: '["192.0.2.9"]',
      words: "floating IP 192.0.2.9 is not within any configured IP pool",
    },
    {
      desc: "in a pool the namespace may not use",
      value: '["10.97.0.5"]',
      words: `floating IP 10.97.0.5 is in pool team-a, which namespace ${tenantNs} may not use`,
    },
  ];

  async function podNames(): Promise<string[]> {
    const list = await tenant.json<{ items: KubeObject[] }>("GET", podPath);
    return list.items.map((item) => item.metadata?.name ?? "").sort();
  }

  it("admits a pod without the annotation, and one with a floating IP it may use", async () => {
    await tenant.json("POST", podPath, podObject("plain"));
    await tenant.json("POST", podPath, podObject("good", '["10.96.0.5"]'));
    expect(await podNames()).toEqual(["good", "plain"]);
  });

  for (const { desc, value, words } of bad) {
    it(`refuses at create: ${desc}, with ADD's words`, async () => {
      const response = await tenant.request("POST", podPath, podObject("bad", value));
      expect(response.status).toBe(403);
      expect((response.body as { message?: string }).message).toContain(
        `admission webhook "pods.buoy.dev" denied the request: ${words}`,
      );
      expect(await podNames()).toEqual(["good", "plain"]);
    });

    it(`refuses at update (a kubectl-style patch): ${desc}, and the pod keeps its annotation`, async () => {
      const response = await tenant.request(
        "PATCH",
        `${podPath}/good`,
        { metadata: { annotations: { [FLOATING]: value } } },
        { contentType: "application/strategic-merge-patch+json" },
      );
      expect(response.status).toBe(403);
      expect((response.body as { message?: string }).message).toContain(
        `admission webhook "pods.buoy.dev" denied the request: ${words}`,
      );
      const pod = await tenant.json<KubeObject>("GET", `${podPath}/good`);
      expect(pod.metadata?.annotations?.[FLOATING]).toBe('["10.96.0.5"]');
    });
  }

  it("admits an update that changes something else of a pod", async () => {
    await tenant.json(
      "PATCH",
      `${podPath}/good`,
      { metadata: { labels: { tier: "web" } } },
      "application/merge-patch+json",
    );
  });
});

describe("FloatingIPs, as a tenant of its own namespace", () => {
  const path = `${BUOY}/namespaces/${tenantNs}/floatingips`;
  const floatingIp = (name: string, address: string) => ({
    apiVersion: "buoy.dev/v1",
    kind: "FloatingIP",
    metadata: { name },
    spec: { address, podSelector: { matchLabels: { app: "web" } } },
  });

  it("admits one for an address it may use", async () => {
    expect((await tenant.request("POST", path, floatingIp("good", "10.96.0.30"))).status).toBe(201);
  });

  it.each([
    [
      "an address that never floats",
      "127.0.0.1",
      "invalid floating IP '127.0.0.1': loopback address",
    ],
    [
      "outside every pool",
      "192.0.2.9",
      "floating IP 192.0.2.9 is not within any configured IP pool",
    ],
    [
      "in a pool the namespace may not use",
      "10.97.0.5",
      `floating IP 10.97.0.5 is in pool team-a, which namespace ${tenantNs} may not use`,
    ],
  ])("refuses at create: %s, with the controller's words", async (_, address, words) => {
    const response = await tenant.request("POST", path, floatingIp("bad", address));
    expect(response.status).toBe(403);
    expect(messageOf(response)).toContain(
      `admission webhook "floatingips.buoy.dev" denied the request: ${words}`,
    );
    const list = await tenant.json<{ items: KubeObject[] }>("GET", path);
    expect(list.items.map((item) => item.metadata?.name)).toEqual(["good"]);
  });

  const fromPool = (name: string, pool: string) => ({
    apiVersion: "buoy.dev/v1",
    kind: "FloatingIP",
    metadata: { name },
    spec: { pool, podSelector: { matchLabels: { app: "web" } } },
  });

  it("admits one asking for an address from a pool it may use", async () => {
    expect((await tenant.request("POST", path, fromPool("pooled", "floating"))).status).toBe(201);
  });

  it.each([
    [
      "a pool the namespace may not use",
      "team-a",
      `IP pool team-a is not one namespace ${tenantNs} may use`,
    ],
    ["a pool that does not exist", "nowhere", "spec.pool names no IP pool: 'nowhere'"],
  ])("refuses at create: %s", async (_, pool, words) => {
    const response = await tenant.request("POST", path, fromPool("badpool", pool));
    expect(response.status).toBe(403);
    expect(messageOf(response)).toContain(
      `admission webhook "floatingips.buoy.dev" denied the request: ${words}`,
    );
  });

  it("refuses, by the schema, both an address and a pool", async () => {
    const both = fromPool("both", "floating");
    const response = await tenant.request("POST", path, {
      ...both,
      spec: { ...both.spec, address: "10.96.0.31" },
    });
    expect(response.status).toBe(422);
  });
});

describe("with the webhook stopped", () => {
  it("stops on SIGTERM, cleanly", async () => {
    expect(await stopWebhook()).toBe(0);
    expect(webhook?.log.join("\n")).toContain('"webhook.stop"');
  });

  it("refuses pool writes (Fail) and admits pods (Ignore: ADD still refuses them)", async () => {
    const response = await kube.admin.request(
      "POST",
      `${BUOY}/ippools`,
      pool("unchecked", { cidr: "10.99.0.0/24" }),
    );
    expect(response.status).toBe(500);
    expect(messageOf(response)).toContain('failed calling webhook "ippools.buoy.dev"');
    expect(await poolNames()).toEqual(["floating", "pods", "team-a"]);
    await tenant.json("POST", `/api/v1/namespaces/${tenantNs}/pods`, {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "late", annotations: { [FLOATING]: '["192.0.2.9"]' } },
      spec: { containers: [{ name: "c", image: "pause" }] },
    });
  });
});
