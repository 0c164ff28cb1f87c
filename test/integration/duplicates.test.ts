// One bad record never freezes a node (issue 13): records in etcd that ask
// for one nftables map key or one kernel route twice, next to real pods made
// by the real plugin. nft refuses a whole transaction for one duplicate key,
// so without the planners' checks nothing new would be programmed; with
// them the later item is skipped, logged and counted, and traffic to every
// other floating IP flows, through the real kernel.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keys } from "../../src/etcd/store.js";
import {
  addNetns,
  createPool,
  deleteNetns,
  etcdPluginConf,
  must,
  ping,
  runPlugin,
  runPrefix,
  sh,
  sleep,
  startAgent,
  startEtcd,
  startIn,
  tcpRequest,
  type AgentProcess,
  type Etcd,
} from "../support/harness.js";

const prefix = runPrefix();
const client = `${prefix}-dupc`;
const namespaces = [client];
const CLIENT_IP = "192.168.126.2";
let etcd: Etcd;
let agent: AgentProcess;

function podCall(name: string, annotations: Record<string, string>) {
  const ns = `${prefix}-${name}`;
  namespaces.push(ns);
  return {
    ns,
    conf: etcdPluginConf(etcd, {
      ipam: { type: "calico-ipam" },
      feature_control: { floating_ips: true },
      runtimeConfig: { "io.kubernetes.cri.pod-annotations": annotations },
    }),
    containerID: `ctr-${name}`,
    netns: addNetns(ns),
    pod: { namespace: "default", name },
  };
}

async function addPod(name: string, annotations: Record<string, string>) {
  const call = podCall(name, annotations);
  const added = await runPlugin({ command: "ADD", ...call });
  expect(added.exitCode, added.raw).toBe(0);
  const address = String((added.output.ips as { address: string }[])[0]?.address).split("/")[0];
  return { call, address: address ?? "" };
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 5000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}; agent log:\n${agent.log.slice(-20).join("\n")}`);
}

/** A map's elements as the kernel holds them, `key : value` each. */
function elements(map: string): string[] {
  const listing = sh(["nft", "-j", "list", "map", "ip", "buoy", map]);
  if (listing.status !== 0) return [];
  const parsed = JSON.parse(listing.stdout) as { nftables: { map?: { elem?: unknown[] } }[] };
  return parsed.nftables.flatMap((object) =>
    (object.map?.elem ?? []).map((elem) => {
      const [key, value] = elem as [unknown, unknown];
      return `${typeof key === "string" ? key : JSON.stringify(key)} : ${String(value)}`;
    }),
  );
}

async function metrics(): Promise<string> {
  return (await fetch(`http://${agent.address}/metrics`)).text();
}

const put = (key: string, value: unknown) => ({ put: key, value: JSON.stringify(value) });

beforeAll(async () => {
  etcd = await startEtcd();
  await createPool(etcd.store, "pods", { cidr: "10.244.0.0/16" });
  await createPool(etcd.store, "floating", { cidr: "10.96.0.0/24", disabled: true });
  addNetns(client);
  must(["ip", "link", "add", "bdup0", "type", "veth", "peer", "name", "eth0", "netns", client]);
  must(["ip", "address", "add", "192.168.126.1/24", "dev", "bdup0"]);
  must(["ip", "link", "set", "bdup0", "up"]);
  must(["ip", "-n", client, "address", "add", `${CLIENT_IP}/24`, "dev", "eth0"]);
  must(["ip", "-n", client, "link", "set", "eth0", "up"]);
  must(["ip", "-n", client, "route", "add", "default", "via", "192.168.126.1"]);
  agent = await startAgent(etcd, [
    "--node",
    "node-1",
    "--floating-ips",
    "on",
    "--routing",
    "direct",
    "--resync",
    "1",
    "--claim-gc-grace",
    "0",
  ]);
});

afterAll(async () => {
  await agent?.stop();
  sh(["ip", "link", "del", "bdup0"]);
  sh(["nft", "delete", "table", "ip", "buoy"]);
  sh(["nft", "delete", "table", "ip6", "buoy"]);
  sh(["ip", "route", "flush", "proto", "202"]);
  for (const ns of namespaces) deleteNetns(ns);
  await etcd?.stop();
});

describe("records that ask for one key twice", () => {
  it("are skipped and counted; every other floating IP is programmed and answers", async () => {
    // Pod one opts in to egress from 10.96.0.31.
    const one = await addPod("one", {
      "cni.projectcalico.org/floatingIPs": '["10.96.0.31"]',
      "buoy.dev/floating-ip-egress": "true",
    });
    await until("10.96.0.31 answers", () => ping(client, "10.96.0.31", 1));
    const stored = await etcd.store.kv.get(keys.endpoint("node-1", "ctr-one", "eth0"));
    const record = JSON.parse(stored?.value ?? "{}") as Record<string, unknown>;

    await etcd.store.kv.txn(
      [],
      [
        // A stale endpoint of a pod that had pod one's address, egress on
        // too, with a claimed floating IP: two fip_egress elements for one
        // pod address, one of which is skipped.
        put(keys.endpoint("node-1", "ctr-stale", "eth0"), {
          ...record,
          pod: "stale",
          containerID: "ctr-stale",
          ipNATs: [{ internalIP: one.address, externalIP: "10.96.0.33" }],
          egress: true,
        }),
        put(keys.claim("10.96.0.33"), {
          ip: "10.96.0.33",
          namespace: "default",
          pod: "stale",
          containerID: "ctr-stale",
          node: "node-1",
          internalIP: one.address,
          createdAt: "",
        }),
        // A second interface of pod one asking for its floating IP again (fip_dnat).
        put(keys.endpoint("node-1", "ctr-one", "net1"), {
          ...record,
          endpoint: "net1",
          ipNetworks: ["10.244.250.7/32"],
          ipNATs: [{ internalIP: "10.244.250.7", externalIP: "10.96.0.31" }],
        }),
        // One block affine to two other nodes: two routes to one destination.
        put(keys.node("node-2"), { name: "node-2", addresses: ["192.168.126.12"] }),
        put(keys.node("node-3"), { name: "node-3", addresses: ["192.168.126.13"] }),
        put(keys.affinity("node-3", "10.244.192.0/26"), {
          cidr: "10.244.192.0/26",
          node: "node-3",
        }),
        put(keys.affinity("node-2", "10.244.192.0/26"), {
          cidr: "10.244.192.0/26",
          node: "node-2",
        }),
      ],
    );

    // A pod added after the bad records: its floating IP is programmed all the same.
    const two = await addPod("two", { "cni.projectcalico.org/floatingIPs": '["10.96.0.32"]' });
    await until("10.96.0.32 answers", () => ping(client, "10.96.0.32", 1));
    await until("10.96.0.33 answers (pod one's address, no egress)", () =>
      ping(client, "10.96.0.33", 1),
    );
    expect(ping(client, "10.96.0.31", 1)).toBe(true);
    expect(elements("fip_dnat").sort()).toEqual([
      `10.96.0.31 : ${one.address}`,
      `10.96.0.32 : ${two.address}`,
      `10.96.0.33 : ${one.address}`,
    ]);
    // The first endpoint by name (default/one) keeps the egress key.
    expect(elements("fip_egress")).toEqual([`${one.address} : 10.96.0.31`]);
    const server = startIn(client, [
      "socat",
      `TCP-LISTEN:81,bind=${CLIENT_IP},fork,reuseaddr`,
      "SYSTEM:echo peer=$SOCAT_PEERADDR",
    ]);
    try {
      let answer = "";
      await until("pod one reaches the client", () => {
        answer = tcpRequest(one.call.ns, CLIENT_IP, 81, 1);
        return answer.includes("peer=");
      });
      expect(answer.trim()).toBe("peer=10.96.0.31");
    } finally {
      server.stop();
    }
    // One route to the block, via the first node by name, and it stays put.
    const blockRoutes = () =>
      must(["ip", "route", "show", "proto", "202"])
        .split("\n")
        .filter((line) => line.startsWith("10.244.192.0/26"));
    expect(blockRoutes()).toEqual([
      expect.stringMatching(/^10\.244\.192\.0\/26 via 192\.168\.126\.12 /),
    ]);

    let text = "";
    await until("the refusals counted", async () => {
      text = await metrics();
      return text.includes('buoy_floating_ip_refused{reason="duplicate route"} 1');
    });
    expect(text).toContain('buoy_floating_ip_refused{reason="duplicate egress source"} 1');
    expect(text).toContain('buoy_floating_ip_refused{reason="requested by another endpoint"} 1');
    expect(text).toContain("buoy_last_apply_failed 0");
    const refusals = agent.log.filter(
      (line) => line.includes('"agent.refused"') || line.includes('"agent.routing"'),
    );
    expect(refusals.filter((line) => line.includes("duplicate egress source"))).toHaveLength(1);
    expect(
      refusals.filter((line) => line.includes("10.244.192.0/26 via 192.168.126.13")),
    ).toHaveLength(1);

    // Resyncs read the kernel back: nothing left to change, nothing logged again.
    const synced = agent.log.filter((line) => line.includes('"agent.synced"')).length;
    await sleep(2500);
    expect(agent.log.filter((line) => line.includes('"agent.synced"')).length).toBe(synced);
    expect(blockRoutes()).toHaveLength(1);

    for (const pod of [one, two]) {
      expect((await runPlugin({ command: "DEL", ...pod.call })).exitCode).toBe(0);
    }
  });
});
