// A hostile tenant on a real node (issue 13 item 11): buoy installed by its
// manifests (CRDs, RBAC, calico-config, the buoy-node DaemonSet and the
// admission webhook) on a real kubelet and containerd, a victim pod in
// namespace `<prefix>-a` holding a floating IP, and a tenant who is a user
// with its own static token and kubeconfig, allowed to edit pods in its own
// namespace `<prefix>-b` and nothing else. Every attack is run with the
// tenant's kubectl; each fails, nothing of it is left, and a ping to the
// victim's floating IP runs through all of them without a gap.
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, runPrefix, sleep, SYSTEM_CNI_DIR } from "../support/harness.js";
import { applyManifests, daemonSetFor, waitForBuoyCrds } from "../support/buoy-install.js";
import {
  busyboxPod,
  pointBuoyAtApiServer,
  startKubeNode,
  TEST_POOLS,
  type KubeNode,
} from "../support/kube-node.js";
import { grantTenant } from "../support/tenant.js";

const prefix = runPrefix();
const FLOATING = "cni.projectcalico.org/floatingIPs";
const IMAGE = join(ROOT, "dist/buoy-image.tar");
const VICTIM_NS = `${prefix}-a`;
const TENANT_NS = `${prefix}-b`;
const TENANT = `${prefix}-tenant`;
const VICTIM_FIP = "10.96.0.10";
const work = join(tmpdir(), `${prefix}-tenant-cni`);
let node: KubeNode;
let tenantKubeconfig: string;
let victimIp: string;
const stoppers: (() => void)[] = [];

// The node tests' pools, and one that only namespaces of team a may use.
const POOLS = `${TEST_POOLS}---
apiVersion: buoy.dev/v1
kind: IPPool
metadata: { name: a-only }
spec: { cidr: 10.96.1.0/24, disabled: true, namespaceSelector: "team == 'a'" }
`;

beforeAll(async () => {
  if (!existsSync(IMAGE)) throw new Error(`${IMAGE} missing: run npm run image`);
  const cniBin = join(work, "bin");
  const cniConf = join(work, "net.d");
  mkdirSync(cniBin, { recursive: true });
  mkdirSync(cniConf, { recursive: true });
  for (const plugin of ["loopback", "portmap"]) {
    copyFileSync(join(SYSTEM_CNI_DIR, plugin), join(cniBin, plugin));
    spawnSync("chmod", ["755", join(cniBin, plugin)]);
  }
  node = await startKubeNode({
    cniBinDir: cniBin,
    cniConfDir: cniConf,
    serviceAccountAdmission: true,
    users: [{ name: TENANT }],
    apiserverArgs: ["--enable-aggregator-routing=true"],
  });
  const imported = node.ctr("images", "import", "--snapshotter", "native", IMAGE);
  expect(imported.ok, imported.out).toBe(true);
  applyManifests(node.kube, ["crds.yaml", "rbac.yaml", "calico-config.yaml"]);
  await waitForBuoyCrds(node.kube);
  // No kube-proxy: buoy's pods reach the API server directly.
  must(pointBuoyAtApiServer(node));
  must(node.kubectlIn(daemonSetFor(cniBin, cniConf), "apply", "-f", "-"));
  applyManifests(node.kube, ["webhook.yaml"]);
  for (const [name, team] of [
    [VICTIM_NS, "a"],
    [TENANT_NS, "b"],
  ] as const) {
    must(node.kubectl("create", "namespace", name));
    must(node.kubectl("label", "namespace", name, `team=${team}`));
  }
  // The tenant: its own token, pods (and reading events) in its namespace only.
  await grantTenant(node.kube, {
    user: TENANT,
    namespace: TENANT_NS,
    role: "tenant",
    rules: [
      {
        apiGroups: [""],
        resources: ["pods"],
        verbs: ["get", "list", "watch", "create", "update", "patch", "delete"],
      },
      { apiGroups: [""], resources: ["events"], verbs: ["get", "list"] },
    ],
  });
  tenantKubeconfig = node.kube.writeKubeconfig(join(work, "tenant.kubeconfig"), {
    token: node.kube.tokens[TENANT] ?? "",
  });
}, 300_000);

afterAll(async () => {
  for (const stop of stoppers) stop();
  await node?.stop();
  rmSync(work, { recursive: true, force: true });
}, 120_000);

function must(result: { ok: boolean; out: string }): string {
  expect(result.ok, result.out).toBe(true);
  return result.out;
}

async function until(what: string, check: () => boolean, ms = 120_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (check()) return;
    await sleep(500);
  }
  const pods = node.kubectl("get", "pods", "-A", "-o", "wide").out;
  const events = node.kubectl("get", "events", "-A").out.split("\n").slice(-25).join("\n");
  const agent = node.kubectl(
    "logs",
    "-n",
    "kube-system",
    "-l",
    "k8s-app=buoy-node",
    "-c",
    "buoy-agent",
    "--tail=20",
  ).out;
  throw new Error(`timed out waiting for ${what}\n${pods}\n${events}\n${agent}`);
}

const ping = (ip: string) => spawnSync("ping", ["-c", "1", "-W", "1", ip]).status === 0;

/** kubectl as the tenant, `input` on stdin when given. */
const tenant = (input: string | undefined, ...args: string[]) =>
  node.kubectlAs(tenantKubeconfig, input, "-n", TENANT_NS, ...args);

const tenantPod = (name: string, annotations: Record<string, string> = {}, labels = {}) =>
  JSON.stringify(busyboxPod(name, { namespace: TENANT_NS, annotations, labels }));

const phase = (namespace: string, pod: string) =>
  node.kubectl("get", "pod", "-n", namespace, pod, "-o", "jsonpath={.status.phase}").stdout;

const claimHolder = (ip: string) =>
  node.kubectl("get", "fip", ip, "-o", "jsonpath={.spec.namespace}/{.spec.pod}").stdout;

/** Every floating IP claimed in the cluster. */
const claimedIps = () =>
  node
    .kubectl("get", "fip", "-o", "jsonpath={.items[*].spec.ip}")
    .stdout.split(" ")
    .filter((ip) => ip !== "");

/** Waits for the tenant's pod to fail sandbox creation with `message`; it stays Pending. */
async function expectSandboxRefused(pod: string, message: string) {
  await until(`${pod}'s sandbox refused: ${message}`, () =>
    node.kubectl("describe", "pod", "-n", TENANT_NS, pod).out.includes(message),
  );
  expect(phase(TENANT_NS, pod)).toBe("Pending");
}

describe("a tenant who may edit pods in its own namespace only", () => {
  let pinger: ReturnType<typeof spawn> | undefined;
  let pingOutput = "";

  it("the victim's pod in another namespace runs, and its floating IP answers", async () => {
    await until("the buoy-node pod ready", () =>
      node
        .kubectl(
          "get",
          "pods",
          "-n",
          "kube-system",
          "-l",
          "k8s-app=buoy-node",
          "-o",
          'jsonpath={.items[*].status.conditions[?(@.type=="Ready")].status}',
        )
        .stdout.includes("True"),
    );
    await node.waitReady(60_000);
    // Pools are written through the webhook (failurePolicy Fail): wait until it is up.
    await until(
      "the webhook admitting the pools",
      () => node.kubectlIn(POOLS, "apply", "-f", "-").ok,
    );
    must(
      node.kubectlIn(
        JSON.stringify(
          busyboxPod("web", {
            namespace: VICTIM_NS,
            annotations: { [FLOATING]: `["${VICTIM_FIP}"]` },
          }),
        ),
        "apply",
        "-f",
        "-",
      ),
    );
    await until("web Running", () => phase(VICTIM_NS, "web") === "Running");
    await until(`${VICTIM_FIP} answers`, () => ping(VICTIM_FIP), 30_000);
    victimIp = node.kubectl(
      "get",
      "pod",
      "-n",
      VICTIM_NS,
      "web",
      "-o",
      "jsonpath={.status.podIP}",
    ).stdout;
    expect(victimIp).toMatch(/^10\.244\./);
    // From here on, the victim's floating IP is pinged at 10 Hz until the last attack.
    pinger = spawn("ping", ["-i", "0.1", "-W", "1", VICTIM_FIP], {
      stdio: ["ignore", "pipe", "ignore"],
    });
    stoppers.push(() => pinger?.exitCode === null && pinger.kill("SIGKILL"));
    pinger.stdout?.on("data", (chunk: Buffer) => (pingOutput += chunk.toString()));
  }, 240_000);

  it("has no access to buoy's objects or pools", () => {
    for (const args of [
      ["get", "fip"],
      ["get", "ippools.buoy.dev"],
      ["delete", "fip", VICTIM_FIP],
      ["get", "pods", "-n", VICTIM_NS],
    ]) {
      const result = tenant(undefined, ...args);
      expect(result.ok, args.join(" ")).toBe(false);
      expect(result.out).toContain("Forbidden");
    }
    const pool = tenant(
      JSON.stringify({
        apiVersion: "buoy.dev/v1",
        kind: "IPPool",
        metadata: { name: "mine" },
        spec: { cidr: "10.96.0.0/25" },
      }),
      "apply",
      "-f",
      "-",
    );
    expect(pool.ok).toBe(false);
    expect(pool.out).toContain("forbidden");
  });

  it("asking for the victim's floating IP: the pod does not start, and the victim is not named", async () => {
    must(tenant(tenantPod("thief", { [FLOATING]: `["${VICTIM_FIP}"]` }), "apply", "-f", "-"));
    await expectSandboxRefused(
      "thief",
      `floating IP ${VICTIM_FIP} is already held by a pod in another namespace`,
    );
    expect(node.kubectl("describe", "pod", "-n", TENANT_NS, "thief").out).not.toContain("web");
    expect(claimHolder(VICTIM_FIP)).toBe(`${VICTIM_NS}/web`);
    must(tenant(undefined, "delete", "pod", "thief", "--wait=true", "--timeout=60s"));
  }, 180_000);

  it("a floating IP of a pool its namespace may not use, outside every pool, or 17 of them: refused by the webhook at create", () => {
    const cases: [Record<string, string>, string][] = [
      [
        { [FLOATING]: '["10.96.1.5"]' },
        `floating IP 10.96.1.5 is in pool a-only, which namespace ${TENANT_NS} may not use`,
      ],
      [
        { [FLOATING]: '["192.0.2.9"]' },
        "floating IP 192.0.2.9 is not within any configured IP pool",
      ],
      [
        {
          [FLOATING]: JSON.stringify(Array.from({ length: 17 }, (_, i) => `10.96.0.${100 + i}`)),
        },
        "pod asks for 17 floating IPs; at most 16",
      ],
      [{ [FLOATING]: '["127.0.0.1"]' }, "invalid floating IP '127.0.0.1'"],
    ];
    for (const [annotations, message] of cases) {
      const applied = tenant(tenantPod("denied", annotations), "apply", "-f", "-");
      expect(applied.ok, message).toBe(false);
      expect(applied.out).toContain('admission webhook "pods.buoy.dev" denied the request');
      expect(applied.out).toContain(message);
      expect(tenant(undefined, "get", "pod", "denied").ok).toBe(false);
    }
  });

  it("buoy's own label on its pod does not skip the pods webhook", () => {
    const applied = tenant(
      tenantPod("sneaky", { [FLOATING]: '["10.96.1.6"]' }, { "k8s-app": "buoy-webhook" }),
      "apply",
      "-f",
      "-",
    );
    expect(applied.ok).toBe(false);
    expect(applied.out).toContain(
      `floating IP 10.96.1.6 is in pool a-only, which namespace ${TENANT_NS} may not use`,
    );
    expect(claimedIps()).not.toContain("10.96.1.6");
  });

  it("its own running pod: forged podIP annotations and a live grab of the victim's IP change no binding", async () => {
    must(tenant(tenantPod("own", { [FLOATING]: '["10.96.0.20"]' }), "apply", "-f", "-"));
    await until("own Running", () => phase(TENANT_NS, "own") === "Running");
    await until("10.96.0.20 answers", () => ping("10.96.0.20"), 30_000);
    const ownIp = node.kubectl(
      "get",
      "pod",
      "-n",
      TENANT_NS,
      "own",
      "-o",
      "jsonpath={.status.podIP}",
    ).stdout;
    // Calico's annotations, forged to the victim's address, then the victim's floating IP asked for.
    must(
      tenant(
        undefined,
        "annotate",
        "--overwrite",
        "pod",
        "own",
        `cni.projectcalico.org/podIP=${victimIp}/32`,
        `cni.projectcalico.org/podIPs=${victimIp}/32`,
      ),
    );
    must(
      tenant(undefined, "annotate", "--overwrite", "pod", "own", `${FLOATING}=["${VICTIM_FIP}"]`),
    );
    await until("the refusal in the tenant's events", () =>
      tenant(undefined, "get", "events", "-o", "jsonpath={.items[*].message}").stdout.includes(
        `floating IP ${VICTIM_FIP} is already held by a pod in another namespace`,
      ),
    );
    await until("the forged podIP noted as ignored", () =>
      tenant(undefined, "get", "events", "-o", "jsonpath={.items[*].reason}").stdout.includes(
        "PodAnnotationIgnored",
      ),
    );
    expect(claimHolder(VICTIM_FIP)).toBe(`${VICTIM_NS}/web`);
    expect(node.kubectl("get", "fip", VICTIM_FIP, "-o", "jsonpath={.spec.internalIP}").stdout).toBe(
      victimIp,
    );
    // The tenant's own floating IP still goes to its own pod, not the forged address.
    expect(
      node.kubectl("get", "fip", "10.96.0.20", "-o", "jsonpath={.spec.internalIP}").stdout,
    ).toBe(ownIp);
    expect(ping("10.96.0.20")).toBe(true);
  }, 180_000);

  it("through every attack the victim's floating IP answered", async () => {
    expect(pinger).toBeDefined();
    pinger?.kill("SIGINT");
    await new Promise<void>((resolve) => pinger?.on("close", () => resolve()));
    const replies = [...pingOutput.matchAll(/icmp_seq=(\d+)/g)].map((match) => Number(match[1]));
    expect(replies.length).toBeGreaterThan(30);
    // No gap: every sequence number from the first reply to the last came back.
    const first = Math.min(...replies);
    const last = Math.max(...replies);
    expect(new Set(replies).size, `lost ${last - first + 1 - new Set(replies).size}`).toBe(
      last - first + 1,
    );
    expect(claimHolder(VICTIM_FIP)).toBe(`${VICTIM_NS}/web`);
  }, 30_000);
});
