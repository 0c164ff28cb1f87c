// `buoy delete` through runCli(): pools in use refused, unused ones deleted
// with their empty blocks, by name and from a manifest.
import { describe, expect, it } from "vitest";
import { MemoryKv } from "../../etcd/memory-kv.js";
import { keys, Store } from "../../etcd/store.js";
import {
  block,
  CALICO_POOLS,
  clusterWithPod,
  put,
  run,
} from "../../../test/support/cluster-with-pod.js";

describe("runCli() delete", () => {
  it("runCli() delete refuses a pool in use, giving the counts", async () => {
    const kv = await clusterWithPod();
    expect(await run(kv, ["delete", "ippool", "my.ippool-1"])).toMatchObject({
      code: 1,
      stderr:
        "error: cannot delete IP pool my.ippool-1 (10.1.0.0/16): 1 address(es) are allocated in 1 block(s) and 0 floating IP(s) are claimed inside it\n",
    });
    expect(await run(kv, ["delete", "ippool", "floating-v4"])).toMatchObject({
      code: 1,
      stderr:
        "error: cannot delete IP pool floating-v4 (10.0.0.0/24): 0 address(es) are allocated in 0 block(s) and 1 floating IP(s) are claimed inside it\n",
    });
    expect(await new Store(kv).listPools()).toHaveLength(2);
  });

  it("runCli() delete removes an unused pool and its empty blocks", async () => {
    const kv = await clusterWithPod();
    await put(kv, keys.block(block.cidr), { ...block, allocations: {} });
    const result = await run(kv, ["delete", "ippool", "my.ippool-1"]);
    expect(result).toMatchObject({
      code: 0,
      stdout: "Successfully deleted 1 'IPPool' resource(s)\n",
    });
    const store = new Store(kv);
    expect((await store.listPools()).map((pool) => pool.name)).toEqual(["floating-v4"]);
    expect(await store.listBlocks()).toEqual([]);
  });

  it("runCli() delete -f deletes the pools a manifest names", async () => {
    const kv = new MemoryKv();
    await run(kv, ["apply", "-f", "-"], { stdin: CALICO_POOLS });
    const result = await run(kv, ["delete", "-f", "-"], { stdin: CALICO_POOLS });
    expect(result).toMatchObject({
      code: 0,
      stdout: "Successfully deleted 2 'IPPool' resource(s)\n",
    });
    expect(await kv.list("/")).toEqual([]);
  });

  it("runCli() delete of a missing pool names it", async () => {
    expect(await run(new MemoryKv(), ["delete", "ippool", "nope"])).toMatchObject({
      code: 1,
      stderr: "error: IP pool nope does not exist\n",
    });
  });
});
