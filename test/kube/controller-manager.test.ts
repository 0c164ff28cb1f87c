// kube-controller-manager beside the API server (startKubeApiserver with
// controllerManager: true; built by KCM=1 scripts/kube/build.sh): what tests
// get from it that the API server alone does not do: a `default`
// ServiceAccount in new namespaces, namespace deletion and garbage collection
// by ownerReferences.
import { afterAll, beforeAll, expect, it } from "vitest";
import { sleep } from "../support/harness.js";
import { startKubeApiserver, type KubeApiserver, type KubeResponse } from "../support/kube.js";

let kube: KubeApiserver;

beforeAll(async () => {
  kube = await startKubeApiserver({ controllerManager: true });
  console.log(`kube-apiserver and kube-controller-manager ready in ${kube.timings.totalMs} ms`);
}, 120_000);

afterAll(async () => {
  await kube?.stop();
});

async function untilStatus(path: string, status: number, timeoutMs = 30_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let response: KubeResponse;
  do {
    response = await kube.admin.request("GET", path);
    if (response.status === status) break;
    await sleep(200);
  } while (Date.now() < deadline);
  return response.status;
}

it("gives new namespaces a default ServiceAccount and deletes namespaces with their contents", async () => {
  await kube.admin.json("POST", "/api/v1/namespaces", { metadata: { name: "doomed" } });
  expect(await untilStatus("/api/v1/namespaces/doomed/serviceaccounts/default", 200)).toBe(200);
  await kube.admin.json("POST", "/api/v1/namespaces/doomed/configmaps", {
    metadata: { name: "inside" },
    data: { a: "b" },
  });
  await kube.admin.json("DELETE", "/api/v1/namespaces/doomed");
  expect(await untilStatus("/api/v1/namespaces/doomed", 404)).toBe(404);
});

it("collects a dependent whose owner is deleted", async () => {
  const owner = await kube.admin.json("POST", "/api/v1/namespaces/default/configmaps", {
    metadata: { name: "owner" },
  });
  await kube.admin.json("POST", "/api/v1/namespaces/default/configmaps", {
    metadata: {
      name: "dependent",
      ownerReferences: [
        { apiVersion: "v1", kind: "ConfigMap", name: "owner", uid: owner.metadata?.uid },
      ],
    },
  });
  await kube.admin.json("DELETE", "/api/v1/namespaces/default/configmaps/owner");
  expect(await untilStatus("/api/v1/namespaces/default/configmaps/dependent", 404)).toBe(404);
});
