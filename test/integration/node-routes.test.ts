// LinuxRoutes against the kernel, in the run's throwaway node namespace:
// dev, via and blackhole routes with buoy's protocol are written and read
// back, and a next hop the node cannot reach (a Node record with a wrong
// address) is reported while every other change is still applied.
import { afterAll, describe, expect, it } from "vitest";
import { LinuxRoutes } from "../../src/dataplane/shell/linux-routes.js";
import type { NodeRoute } from "../../src/dataplane/node-routes.js";
import { must, runPrefix } from "../support/harness.js";

const LINK = `${runPrefix().slice(0, 9)}-rt`;
must(["ip", "link", "add", LINK, "type", "veth", "peer", "name", `${LINK}p`]);
must(["ip", "addr", "add", "192.168.77.1/24", "dev", LINK]);
must(["ip", "addr", "add", "fd00:77::1/64", "dev", LINK, "nodad"]);
must(["ip", "link", "set", LINK, "up"]);
must(["ip", "link", "set", `${LINK}p`, "up"]);

afterAll(() => {
  must(["ip", "link", "del", LINK]);
});

describe("LinuxRoutes", () => {
  const routes = new LinuxRoutes();
  const valid: NodeRoute[] = [
    { family: 4, dst: "10.99.1.0/26", via: "192.168.77.12" },
    { family: 4, dst: "10.99.0.0/26", blackhole: true },
    { family: 4, dst: "203.0.113.50/32", dev: LINK },
  ];
  const unreachable: NodeRoute = { family: 4, dst: "10.99.2.0/26", via: "198.51.100.9" };

  it("applies what it can and reports a next hop that is not on a connected network", async () => {
    const failures = await routes.apply([...valid, unreachable], []);
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatch(/invalid gateway|unreachable/i);
    const read = await routes.read();
    expect(read).toEqual(expect.arrayContaining(valid));
    expect(read).not.toContainEqual(unreachable);
  });

  it("a floating IP's local route wins over a route to it learned by BIRD (IPv6 too)", async () => {
    for (const [family, ip, gateway] of [
      [4, "203.0.113.51", "192.168.77.12"],
      [6, "2001:db8:f100::51", "fd00:77::12"],
    ] as const) {
      const host = family === 4 ? `${ip}/32` : `${ip}/128`;
      // What BIRD's kernel protocol writes for another node's announcement.
      must([
        "ip",
        `-${family}`,
        "route",
        "add",
        host,
        "via",
        gateway,
        "proto",
        "bird",
        "metric",
        "32",
      ]);
      const local: NodeRoute = { family, dst: host, dev: LINK };
      expect(await routes.apply([local], [])).toEqual([]);
      const chosen = must(["ip", `-${family}`, "route", "get", ip]);
      expect(chosen, chosen).toContain(`dev ${LINK}`);
      expect(chosen).not.toContain(`via ${gateway}`);
      await routes.apply([], [local]);
      must(["ip", `-${family}`, "route", "del", host, "proto", "bird", "metric", "32"]);
    }
  });

  it("removes them again, and a second removal of a route already gone is no error", async () => {
    expect(await routes.apply([], valid)).toEqual([]);
    expect(await routes.read()).toEqual([]);
    expect(await routes.apply([], valid)).toEqual([]);
  });
});
