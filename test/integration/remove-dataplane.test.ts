// `buoy remove-dataplane` against the kernel, in the run's throwaway node
// namespace: buoy's two tables (as the agent renders them), its routes and
// the conntrack entries of its floating IPs go; another table, another
// route and another flow's entry stay; a second run finds nothing.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatPlan } from "../../src/dataplane/nat-plan.js";
import { renderNftTable } from "../../src/dataplane/nft-script.js";
import { ROOT, must, runPrefix, sh } from "../support/harness.js";

const LINK = `${runPrefix().slice(0, 9)}-rd`;
const BUOY = `${ROOT}dist/buoy`;

const plan: NatPlan = {
  bindings: [
    { family: 4, floating: "10.96.0.1", pod: "192.168.78.2", hostIfname: LINK },
    { family: 6, floating: "fd00:96::1", pod: "fd00:78::2", hostIfname: LINK },
  ],
  refused: [],
};

function conntrackEntry(dst: string, sport: number): void {
  must([
    "conntrack",
    "-I",
    "-p",
    "tcp",
    "-s",
    dst.includes(":") ? "fd00:78::9" : "192.168.78.9",
    "-d",
    dst,
    "--sport",
    String(sport),
    "--dport",
    "80",
    "--state",
    "ESTABLISHED",
    "-t",
    "120",
    "-u",
    "ASSURED",
  ]);
}

const conntrack = () =>
  sh(["conntrack", "-L", "-f", "ipv4"]).stdout + sh(["conntrack", "-L", "-f", "ipv6"]).stdout;
const routes = (family: 4 | 6) => must(["ip", `-${family}`, "route", "show"]);

beforeAll(() => {
  must(["ip", "link", "add", LINK, "type", "veth", "peer", "name", `${LINK}p`]);
  must(["ip", "addr", "add", "192.168.78.1/24", "dev", LINK]);
  must(["ip", "addr", "add", "fd00:78::1/64", "dev", LINK, "nodad"]);
  must(["ip", "link", "set", LINK, "up"]);
  must(["ip", "link", "set", `${LINK}p`, "up"]);
  must(["nft", "-f", "-"], renderNftTable(plan, 4) + renderNftTable(plan, 6));
  must(["nft", "add", "table", "ip", "other"]);
  for (const route of ["10.96.0.1/32 dev", "10.244.9.0/26 via 192.168.78.7 dev"]) {
    must(["ip", "route", "add", ...route.split(" "), LINK, "proto", "202"]);
  }
  must(["ip", "-6", "route", "add", "fd00:96::1/128", "dev", LINK, "proto", "202"]);
  must(["ip", "route", "add", "10.244.8.0/26", "via", "192.168.78.7", "proto", "static"]);
  conntrackEntry("10.96.0.1", 40001);
  conntrackEntry("fd00:96::1", 40002);
  conntrackEntry("192.168.78.2", 40003);
});

afterAll(() => {
  sh(["nft", "delete", "table", "ip", "other"]);
  sh(["conntrack", "-F"]);
  sh(["ip", "link", "del", LINK]);
});

describe("buoy remove-dataplane", () => {
  it("removes buoy's tables, routes and its floating IPs' conntrack entries, and nothing else", () => {
    const result = sh([BUOY, "remove-dataplane"]);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toBe(
      "removed nftables table ip buoy\n" +
        "removed nftables table ip6 buoy\n" +
        "  it translated 2 floating IPs: 10.96.0.1, fd00:96::1\n" +
        "removed 3 routes with protocol 202:\n" +
        "  10.96.0.1/32 dev " +
        LINK +
        "\n" +
        "  10.244.9.0/26 via 192.168.78.7\n" +
        "  fd00:96::1/128 dev " +
        LINK +
        "\n" +
        "flushed the conntrack entries of 10.96.0.1, fd00:96::1\n",
    );
    const tables = must(["nft", "list", "tables"]);
    expect(tables).not.toContain("buoy");
    expect(tables).toContain("table ip other");
    expect(must(["ip", "-4", "route", "show", "proto", "202"])).toBe("");
    expect(must(["ip", "-6", "route", "show", "proto", "202"])).toBe("");
    expect(routes(4)).toContain("10.244.8.0/26 via 192.168.78.7");
    const flows = conntrack();
    expect(flows).not.toContain("dst=10.96.0.1 ");
    expect(flows).not.toContain("dst=fd00:96::1 ");
    expect(flows).toContain("dst=192.168.78.2 ");
  });

  it("a second run finds nothing and succeeds", () => {
    const result = sh([BUOY, "remove-dataplane"]);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toBe("nothing to remove: no buoy table or route on this node\n");
  });
});
