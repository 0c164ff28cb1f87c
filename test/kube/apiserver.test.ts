// The project's own kube-apiserver (scripts/kube/build.sh, test/support/kube.ts)
// against what the kubernetes datastore will rely on: namespaces, a
// CustomResourceDefinition with a structural schema, custom objects, a pod
// watch by node (fieldSelector spec.nodeName), optimistic concurrency,
// ServiceAccount tokens under RBAC and the Node authorizer.
// Run: npm run test:kube (inside a network namespace made by netns-run.sh).
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sh, sleep } from "../support/harness.js";
import {
  KUBE_BIN,
  SERVICE_ACCOUNT_ISSUER,
  startKubeApiserver,
  type KubeApiserver,
  type KubeClient,
  type KubeList,
  type KubeObject,
  type KubeResponse,
} from "../support/kube.js";

const NS = "buoy-kube";
const GROUP = "test.buoy.dev";
const WIDGETS = `/apis/${GROUP}/v1/namespaces/${NS}/widgets`;
const PODS = `/api/v1/namespaces/${NS}/pods`;

let kube: KubeApiserver;
let admin: KubeClient;

beforeAll(async () => {
  kube = await startKubeApiserver();
  admin = kube.admin;
  console.log(
    `kube-apiserver ready in ${kube.timings.apiserverReadyMs} ms ` +
      `(${kube.timings.totalMs} ms with PKI and etcd) at ${kube.server}`,
  );
  await admin.json("POST", "/api/v1/namespaces", { metadata: { name: NS } });
}, 120_000);

afterAll(async () => {
  await kube?.stop();
});

/** Retries `attempt` until `done` holds for its result or `timeoutMs` passes; the last result. */
async function until<T>(
  attempt: () => Promise<T>,
  done: (result: T) => boolean,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = await attempt();
    if (done(result) || Date.now() > deadline) return result;
    await sleep(100);
  }
}

function pod(name: string, nodeName: string): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: NS },
    spec: { nodeName, containers: [{ name: "main", image: "localhost/none:1" }] },
  };
}

describe("the API server", () => {
  it("is Kubernetes v1.20.2 on 127.0.0.1 with the admin's kubeconfig", async () => {
    const version = await admin.json<{ gitVersion: string }>("GET", "/version");
    expect(version.gitVersion).toBe("v1.20.2");
    expect(kube.server).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const namespace = await admin.json<{ status: { phase: string } }>(
      "GET",
      `/api/v1/namespaces/${NS}`,
    );
    expect(namespace.status.phase).toBe("Active");
    // The static token is the same admin.
    const byToken = await kube.client({ token: kube.token }).request("GET", `/api/v1/namespaces`);
    expect(byToken.status).toBe(200);
    const anonymous = await kube.client({ token: "not-a-token" }).request("GET", "/api/v1/pods");
    expect(anonymous.status).toBe(401);
  });

  it.skipIf(!existsSync(join(KUBE_BIN, "kubectl")))("kubeconfig works with kubectl 1.20", () => {
    const result = sh([
      join(KUBE_BIN, "kubectl"),
      `--kubeconfig=${kube.kubeconfig}`,
      `--cache-dir=${join(kube.dir, "kubectl-cache")}`,
      "get",
      "namespace",
      NS,
      "-o",
      "jsonpath={.metadata.name}",
    ]);
    expect(result.stderr).toBe("");
    expect(result.stdout).toBe(NS);
  });
});

describe("a CustomResourceDefinition", () => {
  const crd = {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `widgets.${GROUP}` },
    spec: {
      group: GROUP,
      scope: "Namespaced",
      names: { plural: "widgets", singular: "widget", kind: "Widget", listKind: "WidgetList" },
      versions: [
        {
          name: "v1",
          served: true,
          storage: true,
          subresources: { status: {} },
          schema: {
            openAPIV3Schema: {
              type: "object",
              properties: {
                spec: {
                  type: "object",
                  required: ["size"],
                  properties: {
                    size: { type: "integer", minimum: 1 },
                    floatingIPs: { type: "array", items: { type: "string" } },
                  },
                },
                status: { type: "object", properties: { phase: { type: "string" } } },
              },
            },
          },
        },
      ],
    },
  };
  const widget = (name: string, spec: Record<string, unknown>): KubeObject => ({
    apiVersion: `${GROUP}/v1`,
    kind: "Widget",
    metadata: { name, labels: { app: "buoy-test" } },
    spec,
  });

  beforeAll(async () => {
    await admin.json("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd);
    const established = await until(
      () =>
        admin.json<{ status?: { conditions?: { type: string; status: string }[] } }>(
          "GET",
          `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.${GROUP}`,
        ),
      (got) =>
        !!got.status?.conditions?.some((c) => c.type === "Established" && c.status === "True"),
    );
    expect(established.status?.conditions).toContainEqual(
      expect.objectContaining({ type: "Established", status: "True" }),
    );
  });

  it("creates, gets and lists custom objects; prunes unknown fields; validates", async () => {
    // Established, the new resource's handler can still take a moment to be served.
    const created = await until(
      () => admin.request("POST", WIDGETS, widget("w1", { size: 3, extra: "pruned" })),
      (response) => response.status !== 404,
    );
    expect(created.status).toBe(201);
    expect(created.body.spec).toEqual({ size: 3 });
    expect(created.body.metadata?.uid).toBeTruthy();

    const got = await admin.json("GET", `${WIDGETS}/w1`);
    expect(got.spec).toEqual({ size: 3 });
    expect(got.metadata?.resourceVersion).toBe(created.body.metadata?.resourceVersion);

    await admin.json("POST", WIDGETS, widget("w2", { size: 1, floatingIPs: ["10.96.0.7"] }));
    const list = await admin.json<KubeList>(
      "GET",
      `${WIDGETS}?labelSelector=${encodeURIComponent("app=buoy-test")}`,
    );
    expect(list.kind).toBe("WidgetList");
    expect(list.items.map((item) => item.metadata?.name).sort()).toEqual(["w1", "w2"]);
    const all = await admin.json<KubeList>("GET", `/apis/${GROUP}/v1/widgets`);
    expect(all.items).toHaveLength(2);

    const invalid = await admin.request("POST", WIDGETS, widget("bad", { size: 0 }));
    expect(invalid.status).toBe(422);
    expect(invalid.body).toMatchObject({ reason: "Invalid" });
    const duplicate = await admin.request("POST", WIDGETS, widget("w1", { size: 2 }));
    expect(duplicate.status).toBe(409);
    expect(duplicate.body).toMatchObject({ reason: "AlreadyExists" });
  });

  it("refuses a PUT with a stale resourceVersion (409 Conflict)", async () => {
    const stale = await admin.json("GET", `${WIDGETS}/w1`);
    const updated = await admin.json("PUT", `${WIDGETS}/w1`, {
      ...stale,
      spec: { size: 4 },
    });
    expect(updated.metadata?.resourceVersion).not.toBe(stale.metadata?.resourceVersion);
    expect(updated.metadata?.generation).toBe(2);

    const conflict = await admin.request("PUT", `${WIDGETS}/w1`, { ...stale, spec: { size: 5 } });
    expect(conflict.status).toBe(409);
    expect(conflict.body).toMatchObject({ kind: "Status", reason: "Conflict" });
    expect((await admin.json("GET", `${WIDGETS}/w1`)).spec).toEqual({ size: 4 });

    // The status subresource: its own writes, spec unchanged, same concurrency rule.
    const withStatus = await admin.json("PUT", `${WIDGETS}/w1/status`, {
      ...updated,
      spec: { size: 99 },
      status: { phase: "Ready" },
    });
    expect(withStatus.spec).toEqual({ size: 4 });
    expect(withStatus.status).toEqual({ phase: "Ready" });
    const staleStatus = await admin.request("PUT", `${WIDGETS}/w1/status`, {
      ...updated,
      status: { phase: "Stale" },
    });
    expect(staleStatus.status).toBe(409);
  });
});

describe("a pod watch by node", () => {
  it("sees only the pods of spec.nodeName, with annotation changes and deletion", async () => {
    const selector = `fieldSelector=${encodeURIComponent("spec.nodeName=node-a")}`;
    const before = await admin.json<KubeList>("GET", `${PODS}?${selector}`);
    const watch = await admin.watch(
      `${PODS}?${selector}&resourceVersion=${before.metadata?.resourceVersion}`,
    );
    try {
      await admin.json("POST", PODS, pod("on-b", "node-b"));
      await admin.json("POST", PODS, pod("on-a", "node-a"));

      const added = await watch.next();
      expect(added.type).toBe("ADDED");
      expect(added.object.metadata?.name).toBe("on-a");

      await admin.json(
        "PATCH",
        `${PODS}/on-a`,
        { metadata: { annotations: { "cni.projectcalico.org/floatingIPs": '["10.96.0.7"]' } } },
        "application/merge-patch+json",
      );
      const modified = await watch.next();
      expect(modified.type).toBe("MODIFIED");
      expect(modified.object.metadata?.annotations).toEqual({
        "cni.projectcalico.org/floatingIPs": '["10.96.0.7"]',
      });

      // No kubelet here: only a zero grace period deletes a pod bound to a node.
      await admin.json("DELETE", `${PODS}/on-b`, { gracePeriodSeconds: 0 });
      await admin.json("DELETE", `${PODS}/on-a`, { gracePeriodSeconds: 0 });
      const deleted = await watch.next((event) => event.type === "DELETED");
      expect(deleted.object.metadata?.name).toBe("on-a");
      expect(watch.events.map((event) => event.object.metadata?.name)).not.toContain("on-b");
      expect((await admin.request("GET", `${PODS}/on-a`)).status).toBe(404);
    } finally {
      watch.close();
    }
  });
});

describe("ServiceAccount tokens under RBAC", () => {
  it("a TokenRequest token is the account, allowed only what a RoleBinding grants", async () => {
    await admin.json("POST", `/api/v1/namespaces/${NS}/serviceaccounts`, {
      metadata: { name: "reader" },
    });
    const token = await kube.serviceAccountToken(NS, "reader");
    const claims = JSON.parse(
      Buffer.from(token.split(".")[1] as string, "base64url").toString("utf8"),
    ) as { iss: string; sub: string };
    expect(claims.iss).toBe(SERVICE_ACCOUNT_ISSUER);
    expect(claims.sub).toBe(`system:serviceaccount:${NS}:reader`);

    const reader = kube.client({ token });
    expect((await reader.request("GET", PODS)).status).toBe(403);

    await admin.json("POST", `/apis/rbac.authorization.k8s.io/v1/namespaces/${NS}/roles`, {
      metadata: { name: "pod-reader" },
      rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] }],
    });
    await admin.json("POST", `/apis/rbac.authorization.k8s.io/v1/namespaces/${NS}/rolebindings`, {
      metadata: { name: "reader-reads-pods" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "pod-reader" },
      subjects: [{ kind: "ServiceAccount", name: "reader", namespace: NS }],
    });
    // The RBAC authorizer learns of new bindings through its informers.
    const listed = await until<KubeResponse>(
      () => reader.request("GET", PODS),
      (response) => response.status === 200,
    );
    expect(listed.status).toBe(200);
    expect((await reader.request("GET", "/api/v1/namespaces/default/pods")).status).toBe(403);
    expect((await reader.request("POST", PODS, pod("nope", "node-a"))).status).toBe(403);
    const review = await reader.json<{ status: { allowed: boolean } }>(
      "POST",
      "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
      { spec: { resourceAttributes: { namespace: NS, verb: "watch", resource: "pods" } } },
    );
    expect(review.status.allowed).toBe(true);
  });

  it("a node's client certificate is under the Node authorizer", async () => {
    const node = kube.client(kube.issueClientCert("system:node:node-a", ["system:nodes"]));
    const pods = await node.request(
      "GET",
      `/api/v1/pods?fieldSelector=${encodeURIComponent("spec.nodeName=node-a")}`,
    );
    expect(pods.status).toBe(200);
    expect(
      (await node.request("POST", "/api/v1/namespaces", { metadata: { name: "x" } })).status,
    ).toBe(403);
  });
});
