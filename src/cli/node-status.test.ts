import { describe, expect, it } from "vitest";
import { agentReport, nodeHealthy, parseMetrics, renderNodeStatus } from "./node-status.js";

const METRICS = `# HELP buoy_build_info 1, labelled
# TYPE buoy_build_info gauge
buoy_build_info{version="0.1.0",nodejs="v24.22.3"} 1
buoy_last_reconcile_success_timestamp_seconds 1764806400
buoy_floating_ip_bindings{family="ipv4"} 3
buoy_floating_ip_bindings{family="ipv6"} 1
buoy_floating_ip_refused{reason="not in a pool"} 2
buoy_routes{kind="pod"} 4
buoy_routes{kind="via"} 2
buoy_fenced 0
buoy_datastore_connected 1
buoy_floating_ips_enabled 1
`;

describe("node status", () => {
  it("parseMetrics() reads names, escaped labels and values", () => {
    const samples = parseMetrics('m{a="x\\"y",b="z"} 2.5\n# c\nn 1e3\n');
    expect(samples.get("m")).toEqual([{ labels: { a: 'x"y', b: "z" }, value: 2.5 }]);
    expect(samples.get("n")).toEqual([{ labels: {}, value: 1000 }]);
  });

  it("renders the agent's report and BIRD's sessions, healthy only when all is well", () => {
    const agent = agentReport("http://127.0.0.1:9096", { status: 200, body: "ok\n" }, METRICS);
    const sessions = [
      { name: "node_192_0_2_2", state: "up", info: "Established" },
      { name: "peer_tor", state: "start", info: "Active        Socket: Connection refused" },
    ];
    const status = { agent, bird: { socket: "/run/bird/bird.ctl", sessions } };
    expect(renderNodeStatus(status, new Date(1764806405000))).toBe(
      `buoy agent at http://127.0.0.1:9096: ready (version 0.1.0)
  last successful reconcile: 2025-12-04T00:00:00.000Z (5 s ago)
  datastore watch: established
  floating IPs: 4 programmed (IPv4 3, IPv6 1), 2 refused (not in a pool 2)
  routes: 6 (pod 4, via 2)
BIRD at /run/bird/bird.ctl: 2 BGP session(s)
PROTOCOL        STATE  INFO
node_192_0_2_2  up     Established
peer_tor        start  Active        Socket: Connection refused
`,
    );
    expect(nodeHealthy(status)).toBe(false);
    expect(nodeHealthy({ ...status, bird: { socket: "s", sessions: sessions.slice(0, 1) } })).toBe(
      true,
    );
    // BIRD expected (its socket is there) and not answering: not well.
    expect(
      nodeHealthy({ agent, bird: { socket: "s", unreachable: "refused", expected: true } }),
    ).toBe(false);
    // Without BIRD (direct routing) the agent alone decides.
    expect(nodeHealthy({ agent, bird: { socket: "s", unreachable: "no such file" } })).toBe(true);
    const notReady = agentReport("u", { status: 503, body: "first sync not applied yet" }, "");
    expect(nodeHealthy({ agent: notReady, bird: { socket: "s", sessions: [] } })).toBe(false);
    expect(
      renderNodeStatus(
        { agent: { url: "u", unreachable: "ECONNREFUSED" }, bird: { socket: "s" } },
        new Date(),
      ),
    ).toBe("buoy agent at u: not answering (ECONNREFUSED)\nBIRD at s: not answering (no socket)\n");
  });
});
