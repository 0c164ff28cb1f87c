// buoy enforces no NetworkPolicy (docs/security.md). The agent on the
// kubernetes datastore, run with the buoy-node service account's token (the
// manifests' RBAC and nothing more) against a real kube-apiserver v1.20.2,
// says so when the cluster has any: one warning when the first appears, and
// buoy_network_policies_present 1 while any exist.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runPrefix, sh, sleep, startAgent, type AgentProcess } from "../support/harness.js";
import { startKubeApiserver, type KubeApiserver } from "../support/kube.js";
import { applyManifests, waitForBuoyCrds } from "../support/buoy-install.js";

const NODE = "node-1";
const prefix = runPrefix();
const namespace = `${prefix}-policies`;
const POLICIES = `/apis/networking.k8s.io/v1/namespaces/${namespace}/networkpolicies`;

let kube: KubeApiserver;
let work: string;
let agent: AgentProcess;

beforeAll(async () => {
  kube = await startKubeApiserver();
  work = mkdtempSync(join(tmpdir(), `${prefix}-agent-policy-`));
  applyManifests(kube, ["crds.yaml", "rbac.yaml"]);
  await waitForBuoyCrds(kube);
  await kube.admin.json("POST", "/api/v1/nodes", { metadata: { name: NODE } });
  await kube.admin.json("POST", "/api/v1/namespaces", { metadata: { name: namespace } });
  const token = await kube.serviceAccountToken("kube-system", "buoy-node");
  const kubeconfig = kube.writeKubeconfig(join(work, "buoy-node.kubeconfig"), { token });
  agent = await startAgent({ env: { DATASTORE_TYPE: "kubernetes", KUBECONFIG: kubeconfig } }, [
    "--node",
    NODE,
    "--floating-ips",
    "on",
    "--resync",
    "1",
  ]);
}, 180_000);

afterAll(async () => {
  await agent?.stop();
  sh(["nft", "delete", "table", "ip", "buoy"]);
  sh(["nft", "delete", "table", "ip6", "buoy"]);
  await kube?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function gauge(): Promise<string | undefined> {
  const text = await (await fetch(`http://${agent.address}/metrics`)).text();
  return /^buoy_network_policies_present (\d)$/m.exec(text)?.[1];
}

async function until(what: string, check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}; agent log:\n${agent.log.slice(-20).join("\n")}`);
}

const policyLines = () => agent.log.filter((line) => line.includes('"agent.networkpolicy"'));

describe("the agent and NetworkPolicy, which buoy does not enforce", () => {
  it("reports none while the cluster has none, without a warning", async () => {
    await until("the gauge at 0", async () => (await gauge()) === "0");
    await sleep(1500); // a resync or two
    expect(policyLines()).toEqual([]);
  });

  it("warns once when a NetworkPolicy appears, and sets buoy_network_policies_present", async () => {
    await kube.admin.json("POST", POLICIES, {
      metadata: { name: "deny-all" },
      spec: { podSelector: {}, policyTypes: ["Ingress"] },
    });
    await until("the gauge at 1", async () => (await gauge()) === "1");
    await sleep(2500); // two more resyncs: no second warning
    const lines = policyLines().map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toEqual([
      expect.objectContaining({ level: "warn", event: "agent.networkpolicy", present: true }),
    ]);
    expect(String(lines[0]?.reason)).toMatch(/buoy enforces none/);
  });

  it("sets the gauge back to 0 once the last one is gone", async () => {
    await kube.admin.request("DELETE", `${POLICIES}/deny-all`);
    await until("the gauge at 0", async () => (await gauge()) === "0");
    expect(policyLines().at(-1)).toContain('"present":false');
  });
});
