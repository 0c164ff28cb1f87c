// `buoy ipam check` and `buoy ipam release` through runCli() on the etcd
// datastore (the Kubernetes datastore's: test/kube/cli-writes.test.ts).
import { describe, expect, it } from "vitest";
import { keys, Store } from "../../etcd/store.js";
import { block, clusterWithPod, put, run } from "../../../test/support/cluster-with-pod.js";

describe("runCli() ipam check and release", () => {
  it("finds nothing wrong in a consistent cluster, and exits 0", async () => {
    const kv = await clusterWithPod();
    expect(await run(kv, ["ipam", "check"])).toMatchObject({
      code: 0,
      stdout:
        "Checked 1 IPAM block(s), 1 allocated address(es), 1 workload endpoint(s) and 1 floating-IP claim(s).\nNo problems found.\n",
    });
  });

  it("finds a leaked address, releases it, and refuses the pod's own", async () => {
    const kv = await clusterWithPod();
    await put(kv, keys.block(block.cidr), {
      ...block,
      allocations: {
        ...block.allocations,
        "10.1.0.9": {
          handle: "k8s-pod-network.dead",
          node: "node-1",
          containerID: "dead",
          namespace: "default",
          pod: "web-1",
        },
      },
    });
    // The block's affinity record, as IPAM writes it with the block: how DEL finds a node's blocks.
    await put(kv, keys.affinity("node-1", block.cidr), { cidr: block.cidr, node: "node-1" });
    const check = await run(kv, ["ipam", "check", "-o", "json"]);
    expect(check.code).toBe(1);
    expect(JSON.parse(check.stdout)).toMatchObject({
      allocations: 2,
      problems: [{ kind: "leaked", ip: "10.1.0.9", pod: "default/web-1", container: "dead" }],
    });
    expect(await run(kv, ["ipam", "release", "10.1.0.5", "--grace", "0"])).toMatchObject({
      code: 1,
      stderr:
        "error: 10.1.0.5 belongs to container c0ffee, which still has workload endpoint default/web-0 (eth0) on node node-1: its DEL releases it\n",
    });
    expect(await run(kv, ["ipam", "release", "10.0.0.7", "--grace", "0"])).toMatchObject({
      code: 1,
      stderr:
        "error: 10.0.0.7 is not allocated: it is a floating IP held by default/web-0 (buoy floatingip remove)\n",
    });
    expect(await run(kv, ["ipam", "release", "10.1.0.9", "--grace", "0"])).toMatchObject({
      code: 0,
      stdout: "released 10.1.0.9 (handle k8s-pod-network.dead of default/web-1, node node-1)\n",
    });
    const [stored] = await new Store(kv).listBlocks();
    expect(Object.keys(stored?.value.allocations ?? {})).toEqual(["10.1.0.5"]);
    expect((await run(kv, ["ipam", "check"])).code).toBe(0);
  });

  it("reports an endpoint whose address IPAM does not hold, and an orphan claim", async () => {
    const kv = await clusterWithPod();
    await put(kv, keys.block(block.cidr), { ...block, allocations: {} });
    await put(kv, keys.claim("10.0.0.8"), {
      ip: "10.0.0.8",
      namespace: "default",
      pod: "gone",
      containerID: "gone",
      node: "node-1",
      internalIP: "10.1.0.6",
      createdAt: "2025-01-02T03:04:05.000Z",
    });
    const check = await run(kv, ["ipam", "check"]);
    expect(check.code).toBe(1);
    expect(check.stdout).toContain("Found 2 problem(s):");
    expect(check.stdout).toMatch(/10\.0\.0\.8 +orphan-claim +default\/gone/);
    expect(check.stdout).toMatch(
      /10\.1\.0\.5 +unallocated +default\/web-0 .*allocated in no block/,
    );
  });

  it("never releases an address of a container that still has an endpoint, nor a non-pod's", async () => {
    const kv = await clusterWithPod();
    await put(kv, keys.affinity("node-1", block.cidr), { cidr: block.cidr, node: "node-1" });
    await put(kv, keys.block(block.cidr), {
      ...block,
      allocations: {
        ...block.allocations,
        // The live pod's second network, whose ADD did not finish.
        "10.1.0.9": { handle: "net2.c0ffee", node: "node-1", namespace: "default", pod: "web-0" },
        "10.1.0.1": { handle: "ipip-tunnel-addr-node-1", node: "node-1" },
      },
    });
    const check = await run(kv, ["ipam", "check"]);
    expect(check.stdout).toContain(
      "1 address(es) are allocated to something other than a pod (Calico's tunnel addresses): not checked.",
    );
    expect(check.stdout).toMatch(/10\.1\.0\.9 +no-endpoint +default\/web-0 .*still has eth0/);
    expect(check.stdout).not.toContain("10.1.0.1 ");
    expect((await run(kv, ["ipam", "release", "10.1.0.9", "--grace", "0"])).stderr).toContain(
      "10.1.0.9 belongs to container c0ffee, which still has workload endpoint default/web-0 (eth0)",
    );
    expect((await run(kv, ["ipam", "release", "10.1.0.1", "--grace", "0"])).stderr).toContain(
      "10.1.0.1 is allocated to ipip-tunnel-addr-node-1, not to a pod: buoy does not release it",
    );
    // Nothing of the pod's was touched.
    const store = new Store(kv);
    expect((await store.listEndpoints()).length).toBe(1);
    expect(Object.keys((await store.listBlocks())[0]?.value.allocations ?? {}).sort()).toEqual([
      "10.1.0.1",
      "10.1.0.5",
      "10.1.0.9",
    ]);
  });
});
