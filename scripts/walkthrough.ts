// The README's main job until `buoy lab` exists: one floating IP's life on one
// node, with the real plugin binary, CLI, node agent, etcd and kernel, inside
// the throwaway node namespace that scripts/demo.sh makes.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  addNetns,
  deleteNetns,
  etcdPluginConf,
  hostInterfaces,
  must,
  ping,
  ROOT,
  runPlugin,
  runPrefix,
  sh,
  sleep,
  startAgent,
  startEtcd,
  startIn,
  tcpRequest,
} from "../test/support/harness.js";

const prefix = runPrefix();
const bold = (text: string) => (process.stdout.isTTY ? `\x1b[1m${text}\x1b[0m` : text);
let stepNumber = 0;
const step = (title: string) => console.log(`\n${bold(`== ${++stepNumber}. ${title}`)}`);
const show = (label: string, text: string) =>
  console.log(`${label}\n${text.trimEnd().replace(/^/gm, "    ")}`);

const etcd = await startEtcd();
const client = `${prefix}-client`;
const namespaces: string[] = [client];
const cli = (args: string[], input?: string) => {
  const result = sh(
    ["node", join(ROOT, "dist/buoy"), "--etcd-endpoints", etcd.endpoint, ...args],
    input,
  );
  return (result.stdout + result.stderr).trimEnd();
};
const buoy = (...args: string[]) => cli(args);
const tcpFromClient = (ip: string) => tcpRequest(client, ip, 80).trim();
async function until(check: () => boolean, ms = 3000): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < ms) {
    if (check()) return Date.now() - start;
    await sleep(50);
  }
  throw new Error(`gave up after ${ms} ms`);
}

let agent: Awaited<ReturnType<typeof startAgent>> | undefined;
const servers: { stop(): void }[] = [];
try {
  step(`etcd is up at ${etcd.endpoint}, inside namespace ${prefix}-node (the node)`);

  step("create the IP pools: one for pod addresses, one (disabled) for floating IPs");
  const pools = `apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: pods
spec:
  cidr: 10.244.0.0/16
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: floating
spec:
  cidr: 10.96.0.0/24
  disabled: true
`;
  show("manifest (written for calicoctl):", pools);
  show("$ buoy apply -f pools.yaml", cli(["apply", "-f", "-"], pools));
  show("$ buoy get ippools -o wide", buoy("get", "ippools", "-o", "wide"));

  step("start the node agent; a client outside the node routes to it");
  agent = await startAgent(etcd, ["--node", "demo-node", "--floating-ips", "on", "--resync", "2"]);
  show(
    `$ buoy agent --node demo-node --floating-ips on   (serving ${agent.address})`,
    agent.log.slice(0, 2).join("\n"),
  );
  addNetns(client);
  must(["ip", "link", "add", "bdemo0", "type", "veth", "peer", "name", "eth0", "netns", client]);
  must(["ip", "address", "add", "192.168.100.1/24", "dev", "bdemo0"]);
  must(["ip", "link", "set", "bdemo0", "up"]);
  must(["ip", "-n", client, "address", "add", "192.168.100.2/24", "dev", "eth0"]);
  must(["ip", "-n", client, "link", "set", "eth0", "up"]);
  must(["ip", "-n", client, "route", "add", "default", "via", "192.168.100.1"]);
  console.log("    client 192.168.100.2 --- 192.168.100.1 node");

  const conf = etcdPluginConf(etcd, {
    nodename: "demo-node",
    mtu: 1440,
    feature_control: { floating_ips: true },
  });
  const pod = (name: string, annotation?: string) => {
    const ns = `${prefix}-${name}`;
    namespaces.push(ns);
    return {
      ns,
      conf: annotation
        ? {
            ...conf,
            runtimeConfig: {
              "io.kubernetes.cri.pod-annotations": {
                "cni.projectcalico.org/floatingIPs": annotation,
              },
            },
          }
        : conf,
      containerID: `demo-${name}-1`,
      netns: addNetns(ns),
      pod: { namespace: "default", name },
    };
  };

  step('ADD pod default/web with cni.projectcalico.org/floatingIPs: ["10.96.0.1"]');
  const web = pod("web", '["10.96.0.1"]');
  const added = await runPlugin({ command: "ADD", ...web });
  if (added.exitCode !== 0) throw new Error(`ADD failed: ${added.raw}`);
  show("CNI result:", JSON.stringify(added.output));
  show("$ buoy get floatingips -o wide", buoy("get", "floatingips", "-o", "wide"));
  servers.push(
    startIn(web.ns, [
      "socat",
      "TCP-LISTEN:80,fork,reuseaddr",
      "SYSTEM:echo web sees client $SOCAT_PEERADDR",
    ]),
  );

  step("traffic from the client to the floating IP");
  const took = await until(() => ping(client, "10.96.0.1", 1));
  console.log(`    ping 10.96.0.1: answered (${took} ms after ADD returned)`);
  await until(() => tcpFromClient("10.96.0.1").includes("web"));
  console.log(
    `    TCP 10.96.0.1:80 -> "${tcpFromClient("10.96.0.1")}"   (the client's own address, not NATed)`,
  );
  show(
    "on the node: nft list map ip buoy fip_dnat",
    sh(["nft", "list", "map", "ip", "buoy", "fip_dnat"]).stdout,
  );
  show(
    "on the node: ip route show proto 202 (floating-IP routes)",
    sh(["ip", "route", "show", "proto", "202"]).stdout,
  );

  step(
    "a second pod asks for the same floating IP: refused, naming the holder, nothing left behind",
  );
  const other = pod("other", '["10.96.0.1"]');
  const refused = await runPlugin({ command: "ADD", ...other });
  show(`exit code ${refused.exitCode}, CNI error:`, JSON.stringify(refused.output));

  step("move the floating IP, live, to pod default/api");
  const api = pod("api");
  if ((await runPlugin({ command: "ADD", ...api })).exitCode !== 0)
    throw new Error("ADD api failed");
  servers.push(
    startIn(api.ns, [
      "socat",
      "TCP-LISTEN:80,fork,reuseaddr",
      "SYSTEM:echo api sees client $SOCAT_PEERADDR",
    ]),
  );
  show(
    "$ buoy floatingip move 10.96.0.1 --to default/api",
    buoy("floatingip", "move", "10.96.0.1", "--to", "default/api"),
  );
  const moved = await until(() => tcpFromClient("10.96.0.1").includes("api"));
  console.log(
    `    TCP 10.96.0.1:80 -> "${tcpFromClient("10.96.0.1")}"   (${moved} ms after the move)`,
  );
  show("$ buoy get floatingips -o wide", buoy("get", "floatingips", "-o", "wide"));

  step("DEL both pods");
  for (const p of [web, api]) {
    const deleted = await runPlugin({ command: "DEL", ...p });
    console.log(`    DEL ${p.pod.name}: exit code ${deleted.exitCode}`);
  }
  await until(() => !ping(client, "10.96.0.1", 1));

  step("everything is gone");
  show("$ buoy get floatingips", buoy("get", "floatingips"));
  show("$ buoy get endpoints", buoy("get", "endpoints"));
  const allocations = (await etcd.store.listBlocks()).flatMap((block) =>
    Object.keys(block.value.allocations),
  );
  console.log(
    `    allocated addresses: ${allocations.length}; host interfaces: ${hostInterfaces().length}; ` +
      `buoy routes: ${sh(["ip", "route", "show", "proto", "202"]).stdout.trim() || "none"}; ` +
      `NAT map: ${sh(["nft", "list", "map", "ip", "buoy", "fip_dnat"]).stdout.includes(" : 10.") ? "not empty" : "empty"}`,
  );
  show(
    "the agent's log (JSON lines):",
    agent.log.filter((line) => line.includes('"agent.synced"')).join("\n"),
  );
  show(
    "the plugin's log (log_file_path):",
    readFileSync(`/tmp/${prefix}-cni.log`, "utf8").split("\n").slice(0, 4).join("\n"),
  );
  console.log(`\n${bold("done")}`);
} finally {
  for (const server of servers) server.stop();
  await agent?.stop();
  sh(["ip", "link", "del", "bdemo0"]);
  for (const ns of namespaces) deleteNetns(ns);
  await etcd.stop();
}
