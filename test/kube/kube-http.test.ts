// The CNI executable's HTTPS calls (src/kube/http.ts) against a real
// kube-apiserver: client certificates and tokens from a kubeconfig, the API's
// error reasons, conditional deletes, merge patches of pod annotations, and a
// server that is not there. Run under Node here; the same module runs in the
// bun-compiled plugin.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKubeHttp, KubeApiError, KubeUnavailableError } from "../../src/kube/http.js";
import { parseKubeconfig } from "../../src/kube/kubeconfig.js";
import { freePort, ROOT } from "../support/harness.js";
import { startKubeApiserver, type KubeApiserver } from "../support/kube.js";

let kube: KubeApiserver;

beforeAll(async () => {
  kube = await startKubeApiserver();
}, 120_000);

afterAll(async () => {
  await kube?.stop();
});

type Pod = {
  metadata: {
    name: string;
    uid: string;
    resourceVersion: string;
    annotations?: Record<string, string>;
  };
};

const podBody = (name: string) => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, annotations: { "cni.projectcalico.org/floatingIPs": '["203.0.113.10"]' } },
  spec: { nodeName: "node-1", containers: [{ name: "c", image: "busybox" }] },
});

describe("createKubeHttp()", () => {
  it("authenticates with the admin kubeconfig's client certificate", async () => {
    const credentials = parseKubeconfig(
      readFileSync(kube.kubeconfig, "utf8"),
      kube.kubeconfig,
      (p) => readFileSync(p, "utf8"),
    );
    expect(credentials.clientCert).toBeDefined();
    const http = createKubeHttp(credentials);
    const namespace = await http.get<{ metadata: { name: string } }>("/api/v1/namespaces/default");
    expect(namespace.metadata.name).toBe("default");
  });

  it("creates, reads, patches the annotations of and conditionally deletes a pod with a token", async () => {
    const http = createKubeHttp({ server: kube.server, ca: kube.ca, token: kube.token });
    const created = await http.create<Pod>("/api/v1/namespaces/default/pods", podBody("web"));
    const again = await http
      .create("/api/v1/namespaces/default/pods", podBody("web"))
      .catch((e) => e);
    expect(again).toBeInstanceOf(KubeApiError);
    expect(again).toMatchObject({ status: 409, reason: "AlreadyExists" });

    const patched = await http.patch<Pod>("/api/v1/namespaces/default/pods/web", {
      metadata: { annotations: { "cni.projectcalico.org/podIP": "10.244.0.5/32" } },
    });
    expect(patched.metadata.annotations).toEqual({
      "cni.projectcalico.org/floatingIPs": '["203.0.113.10"]',
      "cni.projectcalico.org/podIP": "10.244.0.5/32",
    });

    // Deletes are conditional on the uid: an object of the same name made
    // since (another uid) is never removed. (A ConfigMap: without a kubelet a
    // deleted pod lingers as terminating.)
    const map = await http.create<Pod>("/api/v1/namespaces/default/configmaps", {
      metadata: { name: "claim-like" },
      data: { ip: "203.0.113.10" },
    });
    const wrongUid = await http
      .delete("/api/v1/namespaces/default/configmaps/claim-like", {
        uid: "00000000-0000-0000-0000-000000000000",
      })
      .catch((e: unknown) => e);
    expect(wrongUid).toMatchObject({ status: 409, reason: "Conflict" });
    await http.delete("/api/v1/namespaces/default/configmaps/claim-like", {
      uid: map.metadata.uid,
    });
    const gone = await http
      .get("/api/v1/namespaces/default/configmaps/claim-like")
      .catch((e: unknown) => e);
    expect(gone).toMatchObject({ status: 404, reason: "NotFound" });
    expect(created.metadata.name).toBe("web");
  });

  it("reports a bad token as Unauthorized and a missing right as Forbidden", async () => {
    const bad = createKubeHttp({ server: kube.server, ca: kube.ca, token: "nope" });
    expect(await bad.get("/api/v1/namespaces").catch((e) => e)).toMatchObject({
      status: 401,
      reason: "Unauthorized",
    });
    const { cert, key } = kube.issueClientCert("nobody");
    const nobody = createKubeHttp({
      server: kube.server,
      ca: kube.ca,
      clientCert: cert,
      clientKey: key,
    });
    const forbidden = (await nobody.get("/api/v1/namespaces").catch((e: unknown) => e)) as Error;
    expect(forbidden).toBeInstanceOf(KubeApiError);
    expect(forbidden).toMatchObject({ status: 403, reason: "Forbidden" });
    expect(String(forbidden.message)).toContain('User "nobody" cannot list resource "namespaces"');
  });

  it("refuses a server whose certificate its CA did not sign", async () => {
    const other = createKubeHttp({
      server: kube.server,
      ca: kube.issueClientCert("x").cert,
      token: kube.token,
    });
    expect(await other.get("/version").catch((e) => e)).toBeInstanceOf(KubeUnavailableError);
  });

  it("works the same under bun, the CNI executable's runtime", () => {
    const script = `
      import { createKubeHttp } from "${ROOT}src/kube/http.ts";
      const http = createKubeHttp({ server: process.env.SERVER, ca: process.env.CA, token: process.env.TOKEN });
      const ns = await http.get("/api/v1/namespaces/default");
      const missing = await http.get("/api/v1/namespaces/nope").catch((e) => e);
      console.log(JSON.stringify([ns.metadata.name, missing.name, missing.reason]));
    `;
    const result = spawnSync(join(ROOT, "node_modules/.bin/bun"), ["-e", script], {
      encoding: "utf8",
      env: { ...process.env, SERVER: kube.server, CA: kube.ca, TOKEN: kube.token },
    });
    expect(result.stderr).toBe("");
    expect(JSON.parse(result.stdout)).toEqual(["default", "KubeApiError", "NotFound"]);
  });

  it("reports a server that is not there as unavailable, naming it", async () => {
    const port = await freePort();
    const http = createKubeHttp({ server: `https://127.0.0.1:${port}`, token: "t" }, 2000);
    const error = (await http.get("/version").catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(KubeUnavailableError);
    expect(String(error.message)).toContain(`GET https://127.0.0.1:${port}/version: ECONNREFUSED`);
  });
});
