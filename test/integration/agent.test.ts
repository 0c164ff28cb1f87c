// The node agent against the real kernel and etcd: pods made by the real CNI
// plugin, the agent as its own process (dist/buoy agent) in the node
// namespace, traffic from a client namespace routed to the node.
import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createControllerMetrics } from "../../src/controller/controller-metrics.js";
import { keys } from "../../src/etcd/store.js";
import { monitoredMetricNames, serves } from "../support/metric-names.js";
import {
  addClientNetns,
  addNetns,
  createPool,
  deleteNetns,
  etcdPluginConf,
  must,
  ping,
  ROOT,
  runPlugin,
  runPrefix,
  sh,
  sleep,
  startEtcd,
  startAgent,
  startIn,
  tcpRequest,
  type AgentProcess,
  type Etcd,
} from "../support/harness.js";

const prefix = runPrefix();
const client = `${prefix}-agc`;
const namespaces = [client];
let etcd: Etcd;
let agent: AgentProcess | undefined;

async function stopAgent(signal: NodeJS.Signals): Promise<void> {
  await agent?.stop(signal);
  agent = undefined;
}

const agentArgs = ["--node", "node-1", "--floating-ips", "on", "--resync", "1"];

async function http(path: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://${agent?.address}${path}`);
  return { status: response.status, body: await response.text() };
}

async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  ms = 3000,
): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < ms) {
    if (await check()) return Date.now() - start;
    await sleep(50);
  }
  throw new Error(`timed out after ${ms} ms waiting for: ${what}`);
}

function podCall(name: string, annotation?: string) {
  const ns = `${prefix}-${name}`;
  namespaces.push(ns);
  return {
    ns,
    conf: etcdPluginConf(etcd, {
      ipam: { type: "calico-ipam", assign_ipv6: "true" },
      feature_control: { floating_ips: true },
      ...(annotation
        ? {
            runtimeConfig: {
              "io.kubernetes.cri.pod-annotations": {
                "cni.projectcalico.org/floatingIPs": annotation,
              },
            },
          }
        : {}),
    }),
    containerID: `ctr-${name}`,
    netns: addNetns(ns),
    pod: { namespace: "default", name },
  };
}

/** The CLI bundle against this run's etcd. */
const cli = (...args: string[]) =>
  sh(["node", `${ROOT}/dist/buoy`, "--etcd-endpoints", etcd.endpoint, ...args]);

/** Elements of buoy's DNAT map as the kernel holds them (0 when the table is gone). */
function nftElements(family: "ip" | "ip6", map = "fip_dnat"): number {
  const listing = sh(["nft", "-j", "list", "map", family, "buoy", map]);
  if (listing.status !== 0) return 0;
  const objects = (JSON.parse(listing.stdout) as { nftables: { map?: { elem?: unknown[] } }[] })
    .nftables;
  return objects.reduce((count, object) => count + (object.map?.elem?.length ?? 0), 0);
}

beforeAll(async () => {
  etcd = await startEtcd();
  await createPool(etcd.store, "pods", { cidr: "10.244.0.0/16" });
  await createPool(etcd.store, "pods6", { cidr: "fd00:244::/64" });
  await createPool(etcd.store, "floating", { cidr: "10.96.0.0/24", disabled: true });
  await createPool(etcd.store, "floating6", { cidr: "fd00:96::/120", disabled: true });
  addClientNetns(client, {
    nodeIfname: "bagc0",
    node: ["192.168.125.1/24", "fd00:125::1/64"],
    client: ["192.168.125.2/24", "fd00:125::2/64"],
  });
  agent = await startAgent(etcd, agentArgs);
});

afterAll(async () => {
  await stopAgent("SIGTERM");
  sh(["ip", "link", "del", "bagc0"]);
  sh(["nft", "delete", "table", "ip", "buoy"]);
  sh(["nft", "delete", "table", "ip6", "buoy"]);
  for (const ns of namespaces) deleteNetns(ns);
  await etcd?.stop();
});

describe("buoy agent", () => {
  it("is ready after its first sync and exports metrics", async () => {
    await until("readyz 200", async () => (await http("/readyz")).status === 200);
    expect((await http("/healthz")).status).toBe(200);
    const metrics = (await http("/metrics")).body;
    expect(metrics).toContain("buoy_datastore_connected 1");
    expect(metrics).toContain("buoy_floating_ips_enabled 1");
    expect(metrics).toMatch(/^buoy_build_info\{version="\d+\.\d+\.\d+",nodejs="v24\.[\d.]+"\} 1$/m);
    expect(metrics).toMatch(/^process_resident_memory_bytes \d+/m);
    const lastSuccess = Number(
      /^buoy_last_reconcile_success_timestamp_seconds (\S+)$/m.exec(metrics)?.[1],
    );
    expect(Math.abs(Date.now() / 1000 - lastSuccess)).toBeLessThan(60);
    // This node's affine blocks and pod addresses per pool: none yet, every pool listed.
    expect(metrics).toContain('buoy_ipam_blocks{pool="pods"} 0');
    expect(metrics).toContain('buoy_ipam_addresses_in_use{pool="floating"} 0');
  });

  it("serves every metric the repo's dashboard and alert rules name (the controller's from its registry)", async () => {
    const served = (await http("/metrics")).body;
    const controller = await createControllerMetrics().registry.metrics();
    const names = monitoredMetricNames();
    expect(names.length).toBeGreaterThan(15);
    const missing = names.filter((name) => !serves(served, name) && !serves(controller, name));
    expect(missing).toEqual([]);
  });

  it("programs a new pod's floating IPs within a second; the pod sees the client's address", async () => {
    const web = podCall("web", '["10.96.0.1","fd00:96::1"]');
    const added = await runPlugin({ command: "ADD", ...web });
    expect(added.exitCode, added.raw).toBe(0);
    const took = await until(
      "ping 10.96.0.1 from the client",
      () => ping(client, "10.96.0.1", 1),
      2000,
    );
    expect(took).toBeLessThan(1500);
    expect(ping(client, "fd00:96::1", 2)).toBe(true);

    const server = startIn(web.ns, [
      "socat",
      "TCP-LISTEN:80,fork,reuseaddr",
      "SYSTEM:echo peer=$SOCAT_PEERADDR",
    ]);
    try {
      let answer = "";
      await until("TCP to the floating IP", () => {
        answer = tcpRequest(client, "10.96.0.1", 80, 1);
        return answer.includes("peer=");
      });
      expect(answer.trim()).toBe("peer=192.168.125.2");
    } finally {
      server.stop();
    }
    let metrics = "";
    await until("binding gauges", async () => {
      metrics = (await http("/metrics")).body;
      return (
        metrics.includes('buoy_floating_ip_bindings{family="ipv4"} 1') &&
        metrics.includes('buoy_floating_ip_bindings{family="ipv6"} 1')
      );
    }).catch((error: Error) => {
      throw new Error(`${error.message}\n${metrics}`);
    });
    expect(must(["ip", "route", "show", "proto", "202"])).toContain("10.96.0.1 dev cali");
    const listed = cli("get", "floatingips");
    expect(listed.stdout).toMatch(/10\.96\.0\.1 +default\/web +node-1 +10\.244\.\S+ +yes/);
    // The pod's two addresses in their pools' blocks, its floating IPs in theirs.
    const ipam = cli("ipam", "show", "--show-blocks");
    expect(ipam.status, ipam.stderr).toBe(0);
    expect(ipam.stdout).toMatch(
      /^IP pool floating +10\.96\.0\.0\/24 +256 +1 \(0%\) +255 \(99%\) +1$/m,
    );
    expect(ipam.stdout).toMatch(
      /^IP pool pods +10\.244\.0\.0\/16 +65536 +1 \(0%\) +65535 \(99%\) +0$/m,
    );
    expect(ipam.stdout).toMatch(
      /^ {2}block \(node-1\) +10\.244\.\d+\.\d+\/26 +64 +1 \(1%\) +63 \(98%\)$/m,
    );
    expect(ipam.stdout).toMatch(/^IP pool floating6 +fd00:96::\/120 +256 +1 \(0%\)/m);
  });

  it("keeps traffic flowing when killed with SIGKILL, and restarts without duplicates", async () => {
    const pinger = spawn(
      "ip",
      ["netns", "exec", client, "ping", "-i", "0.01", "-c", "300", "-q", "10.96.0.1"],
      {
        stdio: ["ignore", "pipe", "ignore"],
      },
    );
    let summary = "";
    pinger.stdout?.on("data", (chunk: Buffer) => (summary += chunk.toString()));
    const done = new Promise((resolve) => pinger.once("exit", resolve));
    await sleep(500);
    await stopAgent("SIGKILL");
    await sleep(500);
    agent = await startAgent(etcd, agentArgs);
    await done;
    const received = Number(/(\d+) received/.exec(summary)?.[1] ?? -1);
    expect(summary).toContain("300 packets transmitted");
    expect(received).toBe(300);
    await until("readyz after restart", async () => (await http("/readyz")).status === 200);
    expect(nftElements("ip")).toBe(1);
    expect(nftElements("ip6")).toBe(1);
    expect(agent.log.join("\n")).not.toContain('replacedTables":["ipv4');
  });

  it("repairs drift: a deleted table and a deleted route come back within the resync period", async () => {
    must(["nft", "delete", "table", "ip", "buoy"]);
    must(["ip", "route", "del", "10.96.0.1/32", "proto", "202"]);
    await until("table restored", () => nftElements("ip") === 1, 3000);
    await until(
      "route restored",
      () => must(["ip", "route", "show", "proto", "202"]).includes("10.96.0.1"),
      3000,
    );
    expect(ping(client, "10.96.0.1", 2)).toBe(true);
  });

  it("refuses an endpoint whose ipNAT has no claim, or lies outside every pool, and reports it", async () => {
    const endpoint = (ip: string, id: string) => ({
      node: "node-1",
      namespace: "default",
      pod: `forged-${id}`,
      containerID: `forged-${id}`,
      endpoint: "eth0",
      interfaceName: "califorged0000",
      mac: "02:00:00:00:00:09",
      ipNetworks: ["10.244.9.9/32"],
      ipNATs: [{ internalIP: "10.244.9.9", externalIP: ip }],
      network: "k8s-pod-network",
      createdAt: new Date().toISOString(),
    });
    await etcd.store.kv.txn(
      [],
      [
        {
          put: keys.endpoint("node-1", "forged-a", "eth0"),
          value: JSON.stringify(endpoint("10.96.0.77", "a")),
        },
        {
          put: keys.endpoint("node-1", "forged-b", "eth0"),
          value: JSON.stringify(endpoint("198.51.100.7", "b")),
        },
        { put: keys.endpoint("node-1", "forged-c", "eth0"), value: "{not json" },
        // Shapes that used to throw inside planning and stall every node's agent.
        { put: keys.claim("10.96.0.99"), value: "null" },
        {
          put: keys.endpoint("node-1", "forged-e", "eth0"),
          value: JSON.stringify({ node: "node-1" }),
        },
        // Claimed and valid, but its pod's interface is gone (the pod died without a DEL).
        {
          put: keys.endpoint("node-1", "forged-d", "eth0"),
          value: JSON.stringify(endpoint("10.96.0.78", "d")),
        },
        {
          put: keys.claim("10.96.0.78"),
          value: JSON.stringify({
            ip: "10.96.0.78",
            namespace: "default",
            pod: "forged-d",
            containerID: "forged-d",
            node: "node-1",
            internalIP: "10.244.9.9",
            createdAt: "",
          }),
        },
      ],
    );
    await until("refusals in metrics", async () =>
      /buoy_floating_ip_refused\{reason="no claim"\} 1/.test((await http("/metrics")).body),
    );
    const metrics = (await http("/metrics")).body;
    expect(metrics).toMatch(/buoy_floating_ip_refused\{reason="not in any pool"\} 1/);
    expect(metrics).toMatch(/buoy_floating_ip_refused\{reason="host interface missing"\} 1/);
    expect(metrics).toContain("buoy_last_apply_failed 0");
    expect(metrics).toMatch(/buoy_floating_ip_refused\{reason="malformed record"\} [2-9]/);
    expect(sh(["nft", "list", "map", "ip", "buoy", "fip_dnat"]).stdout).not.toContain("10.96.0.77");
    expect(agent?.child.exitCode).toBeNull();
    for (const id of ["a", "b", "c", "d", "e"]) {
      await etcd.store.deleteKey(keys.endpoint("node-1", `forged-${id}`, "eth0"));
    }
    for (const ip of ["10.96.0.78", "10.96.0.99"]) await etcd.store.deleteKey(keys.claim(ip));
  });

  it("withdraws the binding when the pod is deleted", async () => {
    const web = {
      ...podCall("web-del"),
      ns: `${prefix}-web`,
      containerID: "ctr-web",
      netns: `/var/run/netns/${prefix}-web`,
      pod: { namespace: "default", name: "web" },
    };
    expect((await runPlugin({ command: "DEL", ...web })).exitCode).toBe(0);
    await until("binding removed", () => nftElements("ip") === 0, 2000);
    expect(must(["ip", "route", "show", "proto", "202"])).toBe("");
    expect(ping(client, "10.96.0.1", 1)).toBe(false);
  });
});

describe("live changes through the CLI, with the agent running", () => {
  const buoy = (...args: string[]) =>
    sh(["node", `${ROOT}/dist/buoy`, "--etcd-endpoints", etcd.endpoint, ...args]);

  it("adds, changes and removes a running pod's floating IP; a refused change keeps the old one", async () => {
    const live = podCall("live");
    expect((await runPlugin({ command: "ADD", ...live })).exitCode).toBe(0);
    expect(buoy("floatingip", "add", "default/live", "10.96.0.10").status).toBe(0);
    expect(await until("added IP answers", () => ping(client, "10.96.0.10", 1), 1500)).toBeLessThan(
      1500,
    );

    const refused = buoy("floatingip", "set", "default/live", "192.0.2.9");
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain("floating IP 192.0.2.9 is not within any configured IP pool");
    expect(ping(client, "10.96.0.10", 1)).toBe(true);

    expect(buoy("floatingip", "set", "default/live", "10.96.0.11").status).toBe(0);
    await until("changed IP answers", () => ping(client, "10.96.0.11", 1), 1500);
    expect(ping(client, "10.96.0.10", 1)).toBe(false);

    expect(buoy("floatingip", "remove", "default/live", "10.96.0.11").status).toBe(0);
    await until("binding withdrawn", () => nftElements("ip") === 0, 1500);
    expect(ping(client, "10.96.0.11", 1)).toBe(false);
    expect((await runPlugin({ command: "DEL", ...live })).exitCode).toBe(0);
  });

  it("opts a running pod in to egress from its floating IPs and out again", async () => {
    const pod = podCall("eg", '["10.96.0.12"]');
    expect((await runPlugin({ command: "ADD", ...pod })).exitCode).toBe(0);
    await until("bound", () => nftElements("ip") === 1, 1500);
    expect(nftElements("ip", "fip_egress")).toBe(0);
    const on = buoy("floatingip", "egress", "default/eg", "on");
    expect(on.status, on.stderr).toBe(0);
    expect(on.stdout).toContain("its own connections leave from its first floating IP");
    await until("egress on", () => nftElements("ip", "fip_egress") === 1, 1500);
    // The gauges are set once the reconcile that wrote the kernel is done.
    await until("egress counted", async () =>
      (await http("/metrics")).body.includes('buoy_floating_ip_egress{family="ipv4"} 1'),
    );
    const wrong = buoy("floatingip", "egress", "default/eg", "yes");
    expect(wrong.status).toBe(2);
    expect(wrong.stderr).toContain("egress is on or off, got 'yes'");
    expect(buoy("floatingip", "egress", "default/eg", "off").status).toBe(0);
    await until("egress off", () => nftElements("ip", "fip_egress") === 0, 1500);
    expect(nftElements("ip")).toBe(1);
    expect((await runPlugin({ command: "DEL", ...pod })).exitCode).toBe(0);
    await until("unbound", () => nftElements("ip") === 0, 1500);
  });

  it("has a pod leave from a floating IP whose claim is marked egress (a FloatingIP's spec.egress)", async () => {
    const pod = podCall("egm", '["10.96.0.13"]');
    expect((await runPlugin({ command: "ADD", ...pod })).exitCode).toBe(0);
    await until("bound", () => nftElements("ip") === 1, 1500);
    expect(nftElements("ip", "fip_egress")).toBe(0);
    const mark = async (egress: boolean) => {
      const key = keys.claim("10.96.0.13");
      const entry = await etcd.store.kv.get(key);
      const claim = JSON.parse(String(entry?.value)) as Record<string, unknown>;
      if (egress) claim.egress = true;
      else delete claim.egress;
      await etcd.store.kv.txn([], [{ put: key, value: JSON.stringify(claim) }]);
    };
    await mark(true);
    await until("egress on", () => nftElements("ip", "fip_egress") === 1, 1500);
    await mark(false);
    await until("egress off", () => nftElements("ip", "fip_egress") === 0, 1500);
    expect(nftElements("ip")).toBe(1);
    expect((await runPlugin({ command: "DEL", ...pod })).exitCode).toBe(0);
    await until("unbound", () => nftElements("ip") === 0, 1500);
  });

  it("moves a floating IP to another pod while a UDP flow runs: its next datagrams reach the new pod", async () => {
    const [a, b] = [podCall("mva"), podCall("mvb")];
    for (const pod of [a, b])
      expect((await runPlugin({ command: "ADD", ...pod })).exitCode).toBe(0);
    expect(buoy("floatingip", "set", "default/mva", "10.96.0.20").status).toBe(0);
    await until("10.96.0.20 answers", () => ping(client, "10.96.0.20", 1), 1500);

    const received = { a: `/tmp/${prefix}-udp-a`, b: `/tmp/${prefix}-udp-b` };
    const receivers = [
      startIn(a.ns, ["socat", "-u", "UDP-RECV:5000", `OPEN:${received.a},creat,append`]),
      startIn(b.ns, ["socat", "-u", "UDP-RECV:5000", `OPEN:${received.b},creat,append`]),
    ];
    // One flow: a fixed source port, a datagram every 10 ms.
    const sender = spawn(
      "ip",
      ["netns", "exec", client, "socat", "-u", "-", "UDP-SENDTO:10.96.0.20:5000,sourceport=40000"],
      {
        stdio: ["pipe", "ignore", "ignore"],
      },
    );
    const count = (file: string) =>
      sh(["sh", "-c", `cat ${file} 2>/dev/null | wc -l`]).stdout.trim();
    try {
      let n = 0;
      const ticker = setInterval(() => sender.stdin?.write(`${n++}\n`), 10);
      try {
        await until("datagrams reach pod a", () => Number(count(received.a)) > 20, 3000);
        const moved = buoy("floatingip", "move", "10.96.0.20", "--to", "default/mvb");
        expect(moved.status, moved.stderr).toBe(0);
        expect(moved.stdout).toContain("pod default/mvb holds 10.96.0.20");
        const took = await until(
          "the same flow reaches pod b",
          () => Number(count(received.b)) > 20,
          3000,
        );
        expect(took).toBeLessThan(2000);
        const atA = Number(count(received.a));
        await sleep(300);
        expect(Number(count(received.a))).toBe(atA);
      } finally {
        clearInterval(ticker);
      }
    } finally {
      sender.kill("SIGKILL");
      for (const receiver of receivers) receiver.stop();
    }
    const syncedLines =
      agent?.log.filter((line) => line.includes('"agent.synced"') && line.includes("10.96.0.20")) ??
      [];
    expect(syncedLines.some((line) => line.includes('"conntrackFlushed":["10.96.0.20"]'))).toBe(
      true,
    );
    for (const pod of [a, b])
      expect((await runPlugin({ command: "DEL", ...pod })).exitCode).toBe(0);
  });

  it("moves a floating IP a pod leaves from while its UDP flow runs: its next datagrams leave from its own address", async () => {
    const [a, b] = [podCall("ega", '["10.96.0.21"]'), podCall("egb")];
    const added = await runPlugin({ command: "ADD", ...a });
    expect(added.exitCode).toBe(0);
    const ownA = String((added.output.ips as { address: string }[])[0]?.address).split("/")[0];
    expect((await runPlugin({ command: "ADD", ...b })).exitCode).toBe(0);
    expect(buoy("floatingip", "egress", "default/ega", "on").status).toBe(0);
    await until("egress on", () => nftElements("ip", "fip_egress") === 1, 1500);

    // The client notes each datagram's source address.
    const sources = `/tmp/${prefix}-egress-sources`;
    const receiver = startIn(client, [
      "/usr/bin/python3",
      "-c",
      "import socket,sys\n" +
        "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n" +
        "s.bind(('192.168.125.2',6000))\n" +
        "f=open(sys.argv[1],'a',buffering=1)\n" +
        "while True:\n  d,p=s.recvfrom(100)\n  f.write(p[0]+'\\n')\n",
      sources,
    ]);
    // One flow from pod A: a fixed source port, a datagram every 10 ms.
    const sender = spawn(
      "ip",
      ["netns", "exec", a.ns, "socat", "-u", "-", "UDP-SENDTO:192.168.125.2:6000,sourceport=41000"],
      { stdio: ["pipe", "ignore", "ignore"] },
    );
    const seen = () =>
      sh(["sh", "-c", `cat ${sources} 2>/dev/null`])
        .stdout.trim()
        .split("\n");
    try {
      let n = 0;
      const ticker = setInterval(() => sender.stdin?.write(`${n++}\n`), 10);
      try {
        await until("the flow arrives from 10.96.0.21", () => seen().at(-1) === "10.96.0.21", 3000);
        const moved = buoy("floatingip", "move", "10.96.0.21", "--to", "default/egb");
        expect(moved.status, moved.stderr).toBe(0);
        // Without the reply-direction flush the flow would keep leaving from
        // the floating IP, whose answers now go to pod B.
        await until("the same flow from pod A's own address", () => seen().at(-1) === ownA, 3000);
        const count = seen().length;
        await sleep(300);
        expect(seen().slice(count)).not.toContain("10.96.0.21");
      } finally {
        clearInterval(ticker);
      }
    } finally {
      sender.kill("SIGKILL");
      receiver.stop();
    }
    for (const pod of [a, b])
      expect((await runPlugin({ command: "DEL", ...pod })).exitCode).toBe(0);
  });
});
