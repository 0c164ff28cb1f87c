import { describe, expect, it } from "vitest";
import { kvConformance } from "../../test/support/kv-conformance.js";
import { ManualClock, MemoryKv } from "./memory-kv.js";

// Lease expiry on a clock moved by hand: the suite's waits cost no real time.
const clock = new ManualClock();
kvConformance("MemoryKv", () => new MemoryKv({ clock }), clock);

describe("MemoryKv", () => {
  it("MemoryKv() expires leases on the system clock by default, telling watchers", async () => {
    const kv = new MemoryKv();
    const lease = await kv.grantLease(1);
    await kv.txn([], [{ put: "/status/node-a", value: "up", lease }]);
    const startMs = performance.now();
    const controller = new AbortController();
    for await (const signal of kv.watch("/status/", controller.signal)) {
      if (signal !== "ready") controller.abort();
    }
    expect(performance.now() - startMs).toBeLessThan(1500);
    expect(await kv.get("/status/node-a")).toBeUndefined();
  });
});
