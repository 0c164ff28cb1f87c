// `buoy agent --routing direct` on the kubernetes datastore: node addresses
// from the Kubernetes Nodes' InternalIP, blocks from the IPAMBlocks the
// plugin wrote, and floating IPs hosted elsewhere from the other nodes'
// status Leases, which stop counting when they are not renewed. One agent
// (node-1) runs; node-2 is a Node object, a pod set up by the real plugin with
// node-2's name, and a Lease written here as its agent would.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  addNetns,
  CNI_DIR,
  deleteNetns,
  execConflist,
  must,
  runPrefix,
  sh,
  sleep,
  startAgent,
  type AgentProcess,
  type Conflist,
} from "../support/harness.js";
import { startKubeApiserver, type KubeApiserver } from "../support/kube.js";
import {
  applyManifests,
  installCniFromConfigMap,
  waitForBuoyCrds,
  createKubePools,
} from "../support/buoy-install.js";

const prefix = runPrefix();
const namespace = `${prefix}-pods`;
// Interface names have 15 characters at most: the run's random tail only.
const uplink = `bk${prefix.split("-").at(-1) ?? ""}u`;

let kube: KubeApiserver;
let work: string;
let agent: AgentProcess;
let node2Pod: string;
const netnses: string[] = [];

beforeAll(async () => {
  kube = await startKubeApiserver();
  work = mkdtempSync(join(tmpdir(), `${prefix}-routing-kube-`));
  applyManifests(kube, ["crds.yaml", "rbac.yaml", "calico-config.yaml"]);
  await waitForBuoyCrds(kube);
  const conflistPath = await installCniFromConfigMap(kube, work, "node-1", join(CNI_DIR, "buoy"));
  const conflist = JSON.parse(readFileSync(conflistPath, "utf8")) as Conflist;
  // The network between the nodes: node-1 is this namespace, at .1.
  must(["ip", "link", "add", uplink, "type", "veth", "peer", "name", `${uplink.slice(0, -1)}p`]);
  must(["ip", "address", "add", "192.168.77.1/24", "dev", uplink]);
  must(["ip", "link", "set", uplink, "up"]);
  must(["ip", "link", "set", `${uplink.slice(0, -1)}p`, "up"]);
  await createKubePools(kube, {
    pods: { cidr: "10.244.0.0/16" },
    floating: { cidr: "10.96.0.0/24", disabled: true },
  });
  for (const [name, address] of [
    ["node-1", "192.168.77.1"],
    ["node-2", "192.168.77.2"],
  ]) {
    await kube.admin.json("POST", "/api/v1/nodes", {
      metadata: { name },
      status: { addresses: [{ type: "InternalIP", address }] },
    });
  }
  await kube.admin.json("POST", "/api/v1/namespaces", { metadata: { name: namespace } });
  // A pod on node-2, by the plugin run with node-2's name: node-2's block.
  await kube.admin.json("POST", `/api/v1/namespaces/${namespace}/pods`, {
    metadata: { name: "far" },
    spec: { nodeName: "node-2", containers: [{ name: "c", image: "busybox" }] },
  });
  const netns = `${prefix}-far`;
  netnses.push(netns);
  const onNode2: Conflist = {
    ...conflist,
    plugins: conflist.plugins.map((plugin, i) =>
      i === 0 ? { ...plugin, nodename: "node-2" } : plugin,
    ),
  };
  const added = await execConflist(onNode2, "ADD", {
    containerID: "far-1",
    netns: addNetns(netns),
    pod: { namespace, name: "far" },
  });
  expect(added.exitCode, added.raw).toBe(0);
  node2Pod = String((added.output.ips as { address: string }[])[0]?.address).split("/")[0] ?? "";

  const token = await kube.serviceAccountToken("kube-system", "buoy-node");
  const kubeconfig = kube.writeKubeconfig(join(work, "buoy-node.kubeconfig"), { token });
  agent = await startAgent({ env: { DATASTORE_TYPE: "kubernetes", KUBECONFIG: kubeconfig } }, [
    ...["--node", "node-1", "--routing", "direct", "--cni-conf", conflistPath],
    ...["--resync", "1", "--status-ttl", "3"],
    ...["--claim-gc-grace", "2"],
  ]);
}, 180_000);

afterAll(async () => {
  await agent?.stop();
  for (const ns of netnses) deleteNetns(ns);
  sh(["ip", "link", "delete", uplink]);
  sh(["nft", "delete", "table", "ip", "buoy"]);
  sh(["nft", "delete", "table", "ip6", "buoy"]);
  await kube?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** buoy's routes (proto 202) in this namespace, as `dst via` or `dst dev`. */
function routes(): string[] {
  return sh(["ip", "-4", "route", "show", "proto", "202"])
    .stdout.split("\n")
    .map((line) => line.replace(/\s+(metric \d+|onlink)\s*/g, " ").trim())
    .filter(Boolean);
}

async function until(what: string, check: () => boolean, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (check()) return;
    await sleep(50);
  }
  throw new Error(
    `timed out waiting for ${what}; routes: ${routes().join(" | ")}; agent log:\n${agent.log.slice(-20).join("\n")}`,
  );
}

/** node-2's Lease annotation: it translates `ip` to its pod. */
function programmed(ip: string): string {
  return JSON.stringify([
    {
      ip,
      node: "node-2",
      internalIP: node2Pod,
      programmedSince: new Date().toISOString(),
      announced: "direct",
    },
  ]);
}

describe("direct routing on the kubernetes datastore", () => {
  it("routes node-2's block via node-2's InternalIP", async () => {
    const block = `${node2Pod.split(".").slice(0, 3).join(".")}.0/26`;
    await until(`${block} via node-2`, () =>
      routes().some((route) => route.startsWith(`${block} via 192.168.77.2 `)),
    );
  });

  it("routes a floating IP node-2's Lease reports, and stops when the Lease is not renewed", async () => {
    const now = new Date().toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
    await kube.admin.json("POST", "/apis/coordination.k8s.io/v1/namespaces/buoy-system/leases", {
      metadata: {
        name: "buoy-node.node-2",
        labels: { "buoy.dev/floating-ip-status": "true" },
        annotations: {
          "buoy.dev/programmed": JSON.stringify([
            {
              ip: "10.96.0.50",
              node: "node-2",
              internalIP: node2Pod,
              programmedSince: new Date().toISOString(),
              announced: "direct",
            },
          ]),
        },
      },
      spec: { holderIdentity: "node-2", leaseDurationSeconds: 3, renewTime: now },
    });
    await until("10.96.0.50 via node-2", () =>
      routes().some((route) => route.startsWith("10.96.0.50 via 192.168.77.2 ")),
    );
    // node-2's agent is dead: nobody renews its Lease.
    await until(
      "10.96.0.50 withdrawn after the Lease lapsed",
      () => !routes().some((route) => route.startsWith("10.96.0.50 ")),
      10_000,
    );
    expect(routes().some((route) => route.includes("via 192.168.77.2"))).toBe(true);
  });

  it("keeps routing to node-2 through an API server outage longer than the Lease duration", async () => {
    // node-2's agent, alive: renews its Lease every second.
    const path = "/apis/coordination.k8s.io/v1/namespaces/buoy-system/leases/buoy-node.node-2";
    const annotation = programmed("10.96.0.51");
    let renewing = true;
    const renew = (async () => {
      while (renewing) {
        await kube.admin
          .request(
            "PATCH",
            path,
            {
              metadata: { annotations: { "buoy.dev/programmed": annotation } },
              spec: { renewTime: new Date().toISOString().replace(/\.(\d{3})Z$/, ".$1000Z") },
            },
            { contentType: "application/merge-patch+json" },
          )
          .catch(() => undefined);
        await sleep(1000);
      }
    })();
    await until("10.96.0.51 via node-2", () =>
      routes().some((route) => route.startsWith("10.96.0.51 via 192.168.77.2 ")),
    );
    // Down for well over the 3 s Lease duration (it drains watches first).
    const restarting = kube.restartApiserver(5000);
    let withdrawn = false;
    while (!(await Promise.race([restarting.then(() => true), sleep(200).then(() => false)]))) {
      if (!routes().some((route) => route.startsWith("10.96.0.51 "))) withdrawn = true;
    }
    expect(withdrawn).toBe(false);
    await sleep(4000); // renewals resume; the agent reconnects
    expect(routes().some((route) => route.startsWith("10.96.0.51 via 192.168.77.2 "))).toBe(true);
    renewing = false;
    await renew;
  }, 60_000);

  it("node-2 leaves the cluster: its pod's address is released, its block deleted and no longer routed", async () => {
    const block = `${node2Pod.split(".").slice(0, 3).join(".")}.0/26`;
    type Blocks = { items: { spec: { cidr: string; allocations: Record<string, unknown> } }[] };
    const blocks = async () =>
      (await kube.admin.json<Blocks>("GET", "/apis/buoy.dev/v1/ipamblocks")).items;
    expect((await blocks()).find((b) => b.spec.cidr === block)?.spec.allocations).toHaveProperty(
      node2Pod,
    );
    const node1Blocks = (await blocks()).filter((b) => b.spec.cidr !== block);
    await kube.admin.json("DELETE", "/api/v1/nodes/node-2");
    const deadline = Date.now() + 20_000;
    while ((await blocks()).some((b) => b.spec.cidr === block) && Date.now() < deadline) {
      await sleep(200);
    }
    expect((await blocks()).map((b) => b.spec.cidr)).not.toContain(block);
    // node-1's own blocks are untouched.
    expect((await blocks()).filter((b) => b.spec.cidr !== block)).toEqual(node1Blocks);
    await until(
      `${block} no longer routed`,
      () => !routes().some((r) => r.startsWith(`${block} `)),
    );
    // The collector logs after its last write returns: the line may trail the route.
    const gcLine = () =>
      agent.log.find((line) => line.includes('"agent.gc"') && line.includes(block));
    await until(`the agent.gc line for ${block}`, () => gcLine() !== undefined);
    const gc = gcLine();
    expect(gc).toContain('"departedNode":"node-2"');
    expect(gc).toContain(node2Pod);
  }, 60_000);
});
