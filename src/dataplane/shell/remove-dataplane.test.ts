import { describe, expect, it } from "vitest";
import { renderDataplaneRemoved } from "./remove-dataplane.js";

describe("renderDataplaneRemoved()", () => {
  it("says what was removed, a line per table and route", () => {
    expect(
      renderDataplaneRemoved({
        tables: ["ip buoy", "ip6 buoy"],
        floatingIps: ["10.96.0.1", "fd00:96::1"],
        routes: [
          { family: 4, dst: "10.96.0.1/32", dev: "cali0123456789a" },
          { family: 4, dst: "10.244.1.0/26", blackhole: true },
        ],
        conntrackFlushed: ["10.96.0.1"],
      }),
    ).toBe(
      "removed nftables table ip buoy\n" +
        "removed nftables table ip6 buoy\n" +
        "  it translated 2 floating IPs: 10.96.0.1, fd00:96::1\n" +
        "removed 2 routes with protocol 202:\n" +
        "  10.96.0.1/32 dev cali0123456789a\n" +
        "  blackhole 10.244.1.0/26\n" +
        "flushed the conntrack entries of 10.96.0.1\n",
    );
  });

  it("says so when there was nothing", () => {
    expect(
      renderDataplaneRemoved({ tables: [], floatingIps: [], routes: [], conntrackFlushed: [] }),
    ).toBe("nothing to remove: no buoy table or route on this node\n");
  });
});
