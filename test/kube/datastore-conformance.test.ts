// The Datastore port's promises (test/support/datastore-conformance.ts) kept
// by KubernetesDatastore against a real kube-apiserver v1.20.2, opened as the
// CNI plugin opens it: from the conflist install-cni renders out of the
// cluster's calico-config ConfigMap, with the kubeconfig holding the plugin's
// own service-account token (RBAC as manifests/rbac.yaml grants it). Each
// case gets a namespace of its own; pools, blocks, regions, affinities and claims
// (cluster-wide) are deleted after it.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll } from "vitest";
import { poolManifest } from "../../src/cli/manifest.js";
import { openDatastore, residentDatastores } from "../../src/cni/open-datastore.js";
import { silentLogger } from "../../src/log/logger.js";
import type { KubernetesDatastore } from "../../src/kube/kube-datastore.js";
import { installPluginConf } from "../support/buoy-install.js";
import { datastoreConformance } from "../support/datastore-conformance.js";
import { runPrefix } from "../support/harness.js";
import { startKubeApiserver, type KubeApiserver, type KubeObject } from "../support/kube.js";

const NODE = "node-1";
const BUOY = "/apis/buoy.dev/v1";
const prefix = runPrefix();

let kube: KubeApiserver;
let work: string;
let datastore: KubernetesDatastore;
/** As the resident server opens it: with its watch cache (ADR 0013). */
let served: KubernetesDatastore;
const resident = residentDatastores(silentLogger);
let cases = 0;

beforeAll(async () => {
  kube = await startKubeApiserver();
  work = mkdtempSync(join(tmpdir(), `${prefix}-datastore-`));
  const conf = await installPluginConf(kube, work, NODE);
  datastore = (await openDatastore(conf, NODE)) as KubernetesDatastore;
  served = (await resident.open(conf, NODE)) as KubernetesDatastore;
  for (const name of [NODE, "node-2"]) {
    await kube.admin.json("POST", "/api/v1/nodes", {
      apiVersion: "v1",
      kind: "Node",
      metadata: { name },
    });
  }
}, 180_000);

afterAll(async () => {
  resident.stop();
  await kube?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

for (const [name, opened] of [
  ["KubernetesDatastore (real kube-apiserver)", () => datastore],
  ["KubernetesDatastore with the resident server's cache", () => served],
] as const) {
  datastoreConformance(name, async () => {
    const namespace = `${prefix}-ds-${++cases}`;
    await kube.admin.json("POST", "/api/v1/namespaces", { metadata: { name: namespace } });
    return {
      datastore: opened(),
      namespace,
      async addPool(pool) {
        await kube.admin.json("POST", `${BUOY}/ippools`, poolManifest(pool));
      },
      async changePool(pool) {
        await kube.admin.json(
          "PATCH",
          `${BUOY}/ippools/${pool.name}`,
          { spec: { cidr: pool.cidr, blockSize: pool.blockSize } },
          "application/merge-patch+json",
        );
      },
      async labelNamespace(labels) {
        await kube.admin.json(
          "PATCH",
          `/api/v1/namespaces/${namespace}`,
          { metadata: { labels } },
          "application/merge-patch+json",
        );
      },
      async addPod(name, node, floatingIps) {
        const pod = await kube.admin.json<KubeObject>(
          "POST",
          `/api/v1/namespaces/${namespace}/pods`,
          {
            apiVersion: "v1",
            kind: "Pod",
            metadata: {
              name,
              ...(floatingIps.length > 0
                ? {
                    annotations: {
                      "cni.projectcalico.org/floatingIPs": JSON.stringify(floatingIps),
                    },
                  }
                : {}),
            },
            spec: { nodeName: node, containers: [{ name: "c", image: "busybox" }] },
          },
        );
        return pod.metadata?.uid;
      },
      attachedBy: "endpoint",
      claimedAddressWrite: "takes back",
      async cleanup() {
        for (const plural of [
          "workloadendpoints",
          "floatingipclaims",
          "ipamblocks",
          "ipamregions",
          "blockaffinities",
          "ippools",
        ]) {
          await kube.admin.json("DELETE", `${BUOY}/${plural}`);
        }
      },
    };
  });
}
