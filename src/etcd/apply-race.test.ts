// Two `buoy apply`s racing with overlapping pools of different names, on the
// in-memory Kv (the Kv conformance suite holds it to etcd's semantics): both
// plan from one read, the first commits, the second's compare fails and, read
// again, it is refused.
import { describe, expect, it } from "vitest";
import type { Resource } from "../cli/manifest.js";
import type { IpPool } from "../model/records.js";
import { commitPlan, readDatastoreState } from "./etcd-state.js";
import { MemoryKv } from "./memory-kv.js";
import { planApply } from "./plan-apply.js";
import { Store } from "./store.js";

const pool = (name: string, cidr: string): Resource => ({
  kind: "IPPool",
  source: "document 1",
  pool: {
    name,
    cidr,
    blockSize: 26,
    disabled: false,
    nodeSelector: "all()",
    natOutgoing: false,
    disableBGPExport: false,
  } satisfies IpPool,
});

describe("planApply() under a race", () => {
  it("planApply() lets only one of two concurrent applies of overlapping pools through", async () => {
    const store = new Store(new MemoryKv());
    const seen = await readDatastoreState(store);
    const first = planApply(seen, [pool("a", "10.0.0.0/24")]);
    const second = planApply(seen, [pool("b", "10.0.0.0/25")]);
    expect(await store.kv.txn(first.compares, first.ops)).toBe(true);
    expect(await store.kv.txn(second.compares, second.ops)).toBe(false);
    await expect(
      commitPlan(store, (state) => planApply(state, [pool("b", "10.0.0.0/25")]), "apply"),
    ).rejects.toThrow("IP pool b (10.0.0.0/25) overlaps IP pool a (10.0.0.0/24)");
    expect((await store.listPools()).map((stored) => stored.name)).toEqual(["a"]);
  });
});
