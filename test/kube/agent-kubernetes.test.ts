// `buoy agent` on the kubernetes datastore, against a real kube-apiserver
// v1.20.2, with the buoy-node service account's token (the manifests' RBAC
// and nothing more) and the real kernel of this run's namespace: pods set up
// by the real plugin are programmed, annotation edits on running pods take
// effect live (or are refused with an Event, the previous binding kept), a
// force-deleted pod's claim is collected and withdrawn, and a restart of the
// API server is ridden out without losing or duplicating a binding.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  addNetns,
  CNI_DIR,
  deleteNetns,
  execConflist,
  ROOT,
  runPrefix,
  sh,
  sleep,
  startAgent,
  type AgentProcess,
  type Conflist,
  readNftMap,
  waitFor,
} from "../support/harness.js";
import {
  KUBE_BIN,
  startKubeApiserver,
  type KubeApiserver,
  type KubeObject,
} from "../support/kube.js";
import {
  applyManifests,
  installCniFromConfigMap,
  waitForBuoyCrds,
  createKubePools,
} from "../support/buoy-install.js";

const NODE = "node-1";
const FLOATING = "cni.projectcalico.org/floatingIPs";
const BUOY = "/apis/buoy.dev/v1";
const prefix = runPrefix();
const namespace = `${prefix}-pods`;

let kube: KubeApiserver;
let work: string;
let conflist: Conflist;
let conflistPath: string;
let agent: AgentProcess;
let startOurAgent: () => Promise<AgentProcess>;
const netnses: string[] = [];

type Claim = KubeObject & { spec: Record<string, string>; status?: Record<string, unknown> };

beforeAll(async () => {
  kube = await startKubeApiserver();
  work = mkdtempSync(join(tmpdir(), `${prefix}-agent-kube-`));
  applyManifests(kube, ["crds.yaml", "rbac.yaml", "calico-config.yaml"]);
  await waitForBuoyCrds(kube);
  conflistPath = await installCniFromConfigMap(kube, work, NODE, join(CNI_DIR, "buoy"));
  conflist = JSON.parse(readFileSync(conflistPath, "utf8")) as Conflist;
  await createKubePools(kube, {
    pods: { cidr: "10.244.0.0/16" },
    floating: { cidr: "10.96.0.0/24", disabled: true },
    // The test's namespace has no labels: not one this pool selects.
    "floating-team-a": { cidr: "10.96.5.0/24", disabled: true, namespaceSelector: "team == 'a'" },
  });
  await kube.admin.json("POST", "/api/v1/nodes", { metadata: { name: NODE } });
  await kube.admin.json("POST", "/api/v1/namespaces", { metadata: { name: namespace } });
  // The agent runs as the DaemonSet's service account would.
  const token = await kube.serviceAccountToken("kube-system", "buoy-node");
  const kubeconfig = kube.writeKubeconfig(join(work, "buoy-node.kubeconfig"), { token });
  startOurAgent = () =>
    startAgent({ env: { DATASTORE_TYPE: "kubernetes", KUBECONFIG: kubeconfig } }, [
      "--node",
      NODE,
      "--cni-conf",
      conflistPath,
      "--resync",
      "1",
      "--status-ttl",
      "5",
      "--claim-gc-grace",
      "1",
      "--log-level",
      "debug",
    ]);
  agent = await startOurAgent();
}, 180_000);

afterAll(async () => {
  await agent?.stop();
  for (const ns of netnses) deleteNetns(ns);
  sh(["nft", "delete", "table", "ip", "buoy"]);
  sh(["nft", "delete", "table", "ip6", "buoy"]);
  await kube?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/**
 * floating IP -> pod address, as the kernel translates now (fip_egress:
 * pod address -> the floating IP it leaves from).
 */
const translations = (name = "fip_dnat"): Map<string, string> => readNftMap(name);

const until = (what: string, check: () => boolean | Promise<boolean>, ms = 10_000) =>
  waitFor(what, check, ms, () => `agent log:\n${agent.log.slice(-30).join("\n")}`);

async function addPod(name: string, annotation?: string) {
  await kube.admin.json("POST", `/api/v1/namespaces/${namespace}/pods`, {
    metadata: {
      name,
      ...(annotation === undefined ? {} : { annotations: { [FLOATING]: annotation } }),
    },
    spec: { nodeName: NODE, containers: [{ name: "c", image: "busybox" }] },
  });
  const netns = `${prefix}-${name}`;
  netnses.push(netns);
  const call = {
    containerID: `${name}-${Math.random().toString(16).slice(2, 10)}`,
    netns: addNetns(netns),
    pod: { namespace, name },
  };
  const added = await execConflist(conflist, "ADD", call);
  expect(added.exitCode, added.raw).toBe(0);
  const address = String((added.output.ips as { address: string }[])[0]?.address).split("/")[0];
  return { call, address: address ?? "" };
}

async function annotate(name: string, value: string) {
  await kube.admin.json(
    "PATCH",
    `/api/v1/namespaces/${namespace}/pods/${name}`,
    { metadata: { annotations: { [FLOATING]: value } } },
    "application/merge-patch+json",
  );
}

async function claims(): Promise<Claim[]> {
  return (await kube.admin.json<{ items: Claim[] }>("GET", `${BUOY}/floatingipclaims`)).items;
}

async function events(pod: string) {
  const list = await kube.admin.json<{
    items: { reason: string; message: string; type: string; involvedObject: { name: string } }[];
  }>("GET", `/api/v1/namespaces/${namespace}/events`);
  return list.items.filter((event) => event.involvedObject.name === pod);
}

describe("the agent on the kubernetes datastore", () => {
  let web: { address: string };
  let rival: { address: string };

  it("programs a pod set up by the plugin, and reports it in the claim's status and its Lease", async () => {
    web = await addPod("web", '["10.96.0.10"]');
    await until("10.96.0.10 translated", () => translations().get("10.96.0.10") === web.address);
    await until("the claim's status", async () => {
      const [claim] = await claims();
      return claim?.status?.programmed === true;
    });
    // The generation programmed: the API server's, which only spec changes bump.
    const [claim] = await claims();
    expect(claim?.metadata?.generation).toBeGreaterThan(0);
    expect(claim?.status?.observedGeneration).toBe(claim?.metadata?.generation);
    const lease = await kube.admin.json<KubeObject & { spec: Record<string, unknown> }>(
      "GET",
      `/apis/coordination.k8s.io/v1/namespaces/buoy-system/leases/buoy-node.${NODE}`,
    );
    expect(lease.spec.holderIdentity).toBe(NODE);
    expect(JSON.parse(lease.metadata?.annotations?.["buoy.dev/programmed"] ?? "[]")).toEqual([
      expect.objectContaining({ ip: "10.96.0.10", node: NODE, internalIP: web.address }),
    ]);
    const ready = await fetch(`http://${agent.address}/readyz`);
    expect(ready.status).toBe(200);

    // `buoy get` reads the same from the API server.
    const get = (...args: string[]) =>
      spawnSync("node", [join(ROOT, "dist/buoy"), "get", ...args], {
        encoding: "utf8",
        env: { ...process.env, DATASTORE_TYPE: "kubernetes", KUBECONFIG: kube.kubeconfig },
      });
    const fips = get("floatingips", "-o", "wide");
    expect(fips.status, fips.stderr).toBe(0);
    const row = fips.stdout.split("\n").find((line) => line.startsWith("10.96.0.10 "));
    expect(row?.split(/\s+/)).toEqual(
      expect.arrayContaining([`${namespace}/web`, NODE, web.address, "yes"]),
    );
    const endpoints = get("workloadendpoints", "-o", "wide");
    expect(endpoints.status, endpoints.stderr).toBe(0);
    const endpoint = endpoints.stdout.split("\n").find((line) => line.includes(`${namespace}`));
    expect(endpoint?.split(/\s+/)).toEqual(
      expect.arrayContaining([NODE, `${web.address}/32`, `10.96.0.10->${web.address}`]),
    );
    // The same through kubectl, its plugin the self-contained executable (no Node.js on the PATH).
    const plugin = spawnSync(
      join(KUBE_BIN, "kubectl"),
      ["buoy", "get", "floatingips", "-o", "wide"],
      {
        encoding: "utf8",
        env: { PATH: `${join(ROOT, "dist/bin")}:/nonexistent`, KUBECONFIG: kube.kubeconfig },
      },
    );
    expect(plugin.status, plugin.stderr).toBe(0);
    expect(plugin.stdout).toBe(fips.stdout);
    const ipam = spawnSync(join(KUBE_BIN, "kubectl"), ["buoy", "ipam", "show", "-o", "json"], {
      encoding: "utf8",
      env: { PATH: `${join(ROOT, "dist/bin")}:/nonexistent`, KUBECONFIG: kube.kubeconfig },
    });
    expect(ipam.status, ipam.stderr).toBe(0);
    const pools = JSON.parse(ipam.stdout) as {
      pool: string;
      floatingIps: number;
      podAddresses: number;
    }[];
    expect(pools.find((pool) => pool.pool === "floating")?.floatingIps).toBeGreaterThanOrEqual(1);
    expect(pools.find((pool) => pool.pool === "pods")?.podAddresses).toBeGreaterThanOrEqual(1);
  });

  it("an annotation edit on the running pod moves, adds and removes floating IPs live", async () => {
    const edited = Date.now();
    await annotate("web", '["10.96.0.11"]');
    await until("10.96.0.11 instead of .10", () => {
      const now = translations();
      return now.get("10.96.0.11") === web.address && !now.has("10.96.0.10");
    });
    // The bound: the node is reprogrammed within a second of the edit.
    expect(Date.now() - edited).toBeLessThan(1000);
    expect((await claims()).map((claim) => claim.spec.ip)).toEqual(["10.96.0.11"]);
    await annotate("web", '["10.96.0.11", "10.96.0.12"]');
    await until("10.96.0.12 added", () => translations().get("10.96.0.12") === web.address);
    await annotate("web", '["10.96.0.12"]');
    await until("10.96.0.11 removed", () => !translations().has("10.96.0.11"));
    expect((await claims()).map((claim) => claim.spec.ip)).toEqual(["10.96.0.12"]);
    expect((await events("web")).map((event) => event.reason)).toContain("FloatingIPsChanged");
  });

  it("an invalid edit gets a Warning Event and leaves the previous binding working", async () => {
    await annotate("web", "10.96.0.13");
    await until("the refusal Event", async () =>
      (await events("web")).some(
        (event) =>
          event.type === "Warning" &&
          event.reason === "FloatingIPRefused" &&
          event.message.startsWith("failed to parse '10.96.0.13' as JSON"),
      ),
    );
    await sleep(1500); // a resync or two
    expect(translations().get("10.96.0.12")).toBe(web.address);
    expect((await claims()).map((claim) => claim.spec.ip)).toEqual(["10.96.0.12"]);
    await annotate("web", '["10.96.0.12"]');
  });

  it("a live edit asking for a floating IP from a pool the namespace may not use is refused with an Event", async () => {
    await annotate("web", '["10.96.0.12", "10.96.5.1"]');
    const message = `floating IP 10.96.5.1 is in pool floating-team-a, which namespace ${namespace} may not use`;
    await until("the refusal Event", async () =>
      (await events("web")).some(
        (event) =>
          event.type === "Warning" &&
          event.reason === "FloatingIPRefused" &&
          event.message === message,
      ),
    );
    await sleep(1500); // a resync or two
    expect(translations().get("10.96.0.12")).toBe(web.address);
    expect(translations().has("10.96.5.1")).toBe(false);
    expect((await claims()).map((claim) => claim.spec.ip)).toEqual(["10.96.0.12"]);
    await annotate("web", '["10.96.0.12"]');
  });

  it("edits over the bound, of a never-floating address or too long are refused, echoed truncated", async () => {
    const many = JSON.stringify(Array.from({ length: 17 }, (_, i) => `10.96.0.${i + 20}`));
    const refusals: { value: string; message: string }[] = [
      { value: many, message: "pod asks for 17 floating IPs; at most 16" },
      { value: '["127.0.0.1"]', message: "invalid floating IP '127.0.0.1': loopback address" },
      {
        value: "x".repeat(3000),
        message: `failed to parse '${"x".repeat(64)}…(truncated, 3000 characters)' as JSON: `,
      },
      {
        value: `["10.96.0.12"${" ".repeat(4096)}]`,
        message: "annotation cni.projectcalico.org/floatingIPs is 4110 bytes; at most 4096",
      },
    ];
    for (const { value, message } of refusals) {
      await annotate("web", value);
      await until(`the refusal Event '${message}'`, async () =>
        (await events("web")).some(
          (event) => event.reason === "FloatingIPRefused" && event.message.startsWith(message),
        ),
      );
    }
    expect(agent.log.some((line) => line.includes("x".repeat(65)))).toBe(false);
    expect(translations().get("10.96.0.12")).toBe(web.address);
    expect((await claims()).map((claim) => claim.spec.ip)).toEqual(["10.96.0.12"]);
    await annotate("web", '["10.96.0.12"]');
  });

  it("egress switched on and off with the pod's annotation, live, without replacing the table", async () => {
    const handle = () =>
      /# handle (\d+)/.exec(sh(["nft", "-a", "list", "table", "ip", "buoy"]).stdout)?.[1];
    const before = handle();
    const logFrom = agent.log.length;
    const egress = async (value: string) =>
      kube.admin.json(
        "PATCH",
        `/api/v1/namespaces/${namespace}/pods/web`,
        { metadata: { annotations: { "buoy.dev/floating-ip-egress": value } } },
        "application/merge-patch+json",
      );
    await egress("true");
    await until(
      "web leaves from 10.96.0.12",
      () => translations("fip_egress").get(web.address) === "10.96.0.12",
    );
    await egress("yes"); // not a value: egress off, the inbound binding stays
    await until("egress off", () => translations("fip_egress").size === 0);
    await until("the refusal Event", async () =>
      (await events("web")).some(
        (event) =>
          event.type === "Warning" &&
          event.message === `invalid buoy.dev/floating-ip-egress 'yes': expected "true" or "false"`,
      ),
    );
    expect(translations().get("10.96.0.12")).toBe(web.address);
    await egress("true");
    await until(
      "egress on again",
      () => translations("fip_egress").get(web.address) === "10.96.0.12",
    );
    await egress("false");
    await until("egress off again", () => translations("fip_egress").size === 0);
    expect(handle()).toBe(before);
    expect(agent.log.slice(logFrom).join("\n")).not.toMatch(/"replacedTables":\["ipv4"/);
  });

  it("a second pod's edit asking for a held floating IP gets an Event naming the holder", async () => {
    rival = await addPod("rival");
    await annotate("rival", '["10.96.0.12"]');
    await until("the Event naming the holder", async () =>
      (await events("rival")).some(
        (event) =>
          event.reason === "FloatingIPRefused" &&
          event.message === `floating IP 10.96.0.12 is already held by pod ${namespace}/web`,
      ),
    );
    expect(translations().get("10.96.0.12")).toBe(web.address);
    expect(translations().size).toBe(1);
    expect(rival.address).not.toBe(web.address);
  });

  it("a restarted agent reports a standing refusal again on the same Event, counting up", async () => {
    const refusals = async () =>
      (
        await kube.admin.json<{
          items: { reason: string; count?: number; involvedObject: { name: string } }[];
        }>("GET", `/api/v1/namespaces/${namespace}/events`)
      ).items.filter(
        (event) => event.involvedObject.name === "rival" && event.reason === "FloatingIPRefused",
      );
    expect((await refusals()).map((event) => event.count)).toEqual([1]);
    await agent.stop();
    agent = await startOurAgent();
    await until("the refusal counted again", async () =>
      (await refusals()).some((event) => event.count === 2),
    );
    expect(await refusals()).toHaveLength(1);
    expect(translations().get("10.96.0.12")).toBe(web.address);
  });

  it("a sandbox torn down and set up again: no claim is made for the old one, the new one gets the IP", async () => {
    const first = await addPod("phoenix", '["10.96.0.20"]');
    await until("10.96.0.20 translated", () => translations().get("10.96.0.20") === first.address);
    // The kubelet replaces the sandbox (its pause container died): DEL, then ADD.
    expect((await execConflist(conflist, "DEL", first.call)).exitCode).toBe(0);
    await until("10.96.0.20 withdrawn", () => !translations().has("10.96.0.20"));
    await sleep(1500); // passes of the agent's live-edit controller
    expect((await claims()).filter((claim) => claim.spec.pod === "phoenix")).toEqual([]);
    const again = { ...first.call, containerID: `${first.call.containerID}-2` };
    const added = await execConflist(conflist, "ADD", again);
    expect(added.exitCode, added.raw).toBe(0);
    const held = (await claims()).filter((claim) => claim.spec.pod === "phoenix");
    expect(held.map((claim) => claim.spec.containerID)).toEqual([again.containerID]);
    expect((await execConflist(conflist, "DEL", again)).exitCode).toBe(0);
    // The new sandbox's binding may have been programmed meanwhile: gone
    // again before the next test takes its snapshot of the bindings.
    await until("10.96.0.20 withdrawn again", () => !translations().has("10.96.0.20"));
  });

  it("rides out an API server restart: bindings kept while it is down, no loss or duplicate after", async () => {
    const before = [...translations()];
    const restarting = kube.restartApiserver(2000);
    // (kube-apiserver drains its watches for up to 10 s before it exits.)
    await until(
      "/readyz 503 while the API server is down",
      async () => {
        const ready = await fetch(`http://${agent.address}/readyz`);
        return ready.status === 503 && (await ready.text()).includes("watch not established");
      },
      30_000,
    );
    expect([...translations()]).toEqual(before);
    await restarting;
    await until("/readyz again after the restart", async () => {
      const ready = await fetch(`http://${agent.address}/readyz`);
      return ready.status === 200;
    });
    expect([...translations()]).toEqual(before);
    expect(agent.log.join("\n")).toMatch(/"agent.watch".*"lost"/);
    // The restarted server's watch cache starts at its current revision: the
    // caches' older resource versions are 410 Gone, and they relist.
    expect(agent.log.join("\n")).toMatch(/"agent.watch".*"state":"relisted"/);
    // Still live after the restart: an edit takes effect. And the rival's
    // refused request stands: once web lets 10.96.0.12 go, the rival gets it.
    await annotate("web", '["10.96.0.14"]');
    await until("10.96.0.14 to web, 10.96.0.12 to the rival", () => {
      const now = translations();
      return (
        now.get("10.96.0.14") === web.address &&
        now.get("10.96.0.12") === rival.address &&
        now.size === 2
      );
    });
    const held = (await claims()).map((claim) => `${claim.spec.ip}=${claim.spec.pod}`);
    expect(held.sort()).toEqual(["10.96.0.12=rival", "10.96.0.14=web"]);
  });

  it("a force-deleted pod's claim is collected, and the node withdraws the binding", async () => {
    await kube.admin.json("DELETE", `/api/v1/namespaces/${namespace}/pods/web`, {
      gracePeriodSeconds: 0,
    });
    await until(
      "the claim collected",
      async () => !(await claims()).some((claim) => claim.spec.pod === "web"),
    );
    await until("10.96.0.14 withdrawn", () => !translations().has("10.96.0.14"));
    await until("the collector's log line", () =>
      /"agent.gc".*"released":"10.96.0.14"/.test(agent.log.join("\n")),
    );
  });
  it("buoy floatingip adds, moves, refuses and removes through the pods' annotations", async () => {
    const a = await addPod("cli-a");
    const b = await addPod("cli-b");
    // No DATASTORE_TYPE: a kubeconfig and no etcd endpoints choose kubernetes, as calicoctl does.
    const env: NodeJS.ProcessEnv = { ...process.env, KUBECONFIG: kube.kubeconfig };
    delete env.DATASTORE_TYPE;
    delete env.ETCD_ENDPOINTS;
    const fip = (...args: string[]) => {
      const run = spawnSync(
        "node",
        [join(ROOT, "dist/buoy"), "floatingip", "--cni-conf", conflistPath, ...args],
        { encoding: "utf8", env },
      );
      return { status: run.status, stdout: run.stdout, stderr: run.stderr };
    };
    const pod = (name: string) => `${namespace}/${name}`;
    const annotationOf = async (name: string) =>
      (await kube.admin.json<KubeObject>("GET", `/api/v1/namespaces/${namespace}/pods/${name}`))
        .metadata?.annotations ?? {};

    expect(fip("add", pod("cli-a"), "10.96.0.40")).toMatchObject({
      status: 0,
      stdout: `pod ${pod("cli-a")} holds 10.96.0.40 -> ${a.address}\n`,
    });
    expect(translations().get("10.96.0.40")).toBe(a.address);

    const moved = fip("move", "10.96.0.40", "--to", pod("cli-b"));
    expect(moved, moved.stderr).toMatchObject({
      status: 0,
      stdout: `pod ${pod("cli-b")} holds 10.96.0.40 -> ${b.address}\n`,
    });
    await until("10.96.0.40 on cli-b", () => translations().get("10.96.0.40") === b.address);
    expect((await annotationOf("cli-a"))[FLOATING]).toBeUndefined();
    expect((await annotationOf("cli-b"))[FLOATING]).toBe('["10.96.0.40"]');

    // ADD's checks and words, before anything is written.
    expect(fip("add", pod("cli-a"), "10.96.0.40")).toMatchObject({
      status: 1,
      stderr: `error: floating IP 10.96.0.40 is already held by pod ${pod("cli-b")}\n`,
    });
    const otherTeam = fip("add", pod("cli-a"), "10.96.5.3");
    expect(otherTeam.status).toBe(1);
    expect(otherTeam.stderr).toContain(`namespace ${namespace}`);
    expect(fip("add", pod("cli-a"), b.address).stderr).toBe(
      `error: floating IP ${b.address} is the address of pod ${pod("cli-b")}\n`,
    );
    expect((await annotationOf("cli-a"))[FLOATING]).toBeUndefined();

    expect(fip("egress", pod("cli-b"), "on")).toMatchObject({
      status: 0,
      stdout:
        `pod ${pod("cli-b")} holds 10.96.0.40 -> ${b.address}\n` +
        "asked: its own connections leave from its first floating IP of each family\n",
    });
    expect((await annotationOf("cli-b"))["buoy.dev/floating-ip-egress"]).toBe("true");
    await until(
      "cli-b leaves from 10.96.0.40",
      () => translations("fip_egress").get(b.address) === "10.96.0.40",
    );

    expect(fip("remove", pod("cli-b"), "10.96.0.40")).toMatchObject({
      status: 0,
      stdout: `pod ${pod("cli-b")} holds no floating IPs\n`,
    });
    await until("10.96.0.40 withdrawn", () => !translations().has("10.96.0.40"));
    expect((await claims()).some((claim) => claim.spec.ip === "10.96.0.40")).toBe(false);
  });
});
