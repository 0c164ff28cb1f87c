// buoy installed by its own manifests on a real node (issue 6): the image
// from `npm run image` imported into the node's containerd, the CRDs, RBAC,
// calico-config and the buoy-node DaemonSet applied with kubectl, with the
// kubelet's CNI directories as the DaemonSet's host paths. The init
// container installs the plugin and the conflist, the agent runs as the
// DaemonSet's pod (host network: the node's namespace), and a pod applied
// with the seed's annotation gets its floating IP.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_LOG_FILE } from "../../src/cni/netconf.js";
import { addClientNetns, must, ROOT, runPrefix, sleep, startIn } from "../support/harness.js";
import { LAB_PROBE as PROBE, probe, PYTHON, startPinger } from "../support/lab-probe.js";
import { buoyDiagnostics, daemonSetFor, startNodeWithBuoy } from "../support/buoy-install.js";
import { busyboxPod, podNetns, TEST_POOLS, type KubeNode } from "../support/kube-node.js";

const prefix = runPrefix();
const FLOATING = "cni.projectcalico.org/floatingIPs";
const SEEN_LOG = join(tmpdir(), `${prefix}-probe-seen.log`);
// A client namespace routed to the node (its default route), as in the lab.
const CLIENT = {
  ns: `${prefix}-client`,
  ip: "192.168.125.2",
  nodeIp: "192.168.125.1",
  link: `bc${prefix.split("-").at(-1) ?? ""}`.slice(0, 12),
};
let node: KubeNode;
/** The plugin's log (the conflist names none: buoy's default), read from where this run began. */
const CNI_LOG = DEFAULT_LOG_FILE;
let cniLogStart = 0;
let cniBin: string;
let cniConf: string;
const stoppers: (() => void)[] = [];

/** The DaemonSet of manifests/`file`, its host paths this node's CNI dirs. */
const daemonSet = (file = "daemonset.yaml", name = "buoy-node") =>
  daemonSetFor(cniBin, cniConf, file, name);

beforeAll(async () => {
  // Read from here on: the plugin runs only once the DaemonSet installed it.
  cniLogStart = existsSync(CNI_LOG) ? statSync(CNI_LOG).size : 0;
  ({ node, cniBin, cniConf } = await startNodeWithBuoy(join(tmpdir(), `${prefix}-cni`)));
}, 300_000);

afterAll(async () => {
  for (const stop of stoppers) stop();
  await node?.stop();
}, 120_000);

async function until(what: string, check: () => boolean, ms = 120_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (check()) return;
    await sleep(500);
  }
  throw new Error(`timed out waiting for ${what}\n${buoyDiagnostics(node)}`);
}

const ping = (ip: string) => spawnSync("ping", ["-c", "1", "-W", "1", ip]).status === 0;

/**
 * Applies a pod asking for `floatingIPs` and waits for its sandbox creation
 * to fail with the plugin's `message` in its events; the pod stays Pending.
 */
async function expectSandboxRefused(pod: string, floatingIPs: string, message: string) {
  const applied = node.kubectlIn(
    JSON.stringify(busyboxPod(pod, { annotations: { [FLOATING]: floatingIPs } })),
    "apply",
    "-f",
    "-",
  );
  expect(applied.ok, applied.out).toBe(true);
  await until(`the sandbox failure: ${message}`, () =>
    node.kubectl("describe", "pod", pod).out.includes(message),
  );
  expect(node.kubectl("get", "pod", pod, "-o", "jsonpath={.status.phase}").stdout).toBe("Pending");
}

describe("buoy installed by its manifests", () => {
  it("the DaemonSet's pod becomes ready, and with its conflist the node", async () => {
    await until("the buoy-node pod ready", () => {
      const ready = node.kubectl(
        "get",
        "pods",
        "-n",
        "kube-system",
        "-l",
        "k8s-app=buoy-node",
        "-o",
        'jsonpath={.items[*].status.conditions[?(@.type=="Ready")].status}',
      );
      return ready.stdout === "True";
    });
    await node.waitReady(60_000);
    expect(existsSync(join(cniConf, "10-calico.conflist"))).toBe(true);
    expect(existsSync(join(cniBin, "calico"))).toBe(true);
  }, 180_000);

  it("a pod applied with the seed's annotation runs and its floating IP answers", async () => {
    const pools = node.kubectlIn(TEST_POOLS, "apply", "-f", "-");
    expect(pools.ok, pools.out).toBe(true);
    const pod = node.kubectlIn(
      JSON.stringify(busyboxPod("web", { annotations: { [FLOATING]: '["10.96.0.10"]' } })),
      "apply",
      "-f",
      "-",
    );
    expect(pod.ok, pod.out).toBe(true);
    await until(
      "web Running",
      () =>
        node.kubectl("get", "pod", "web", "-o", "jsonpath={.status.phase}").stdout === "Running",
    );
    await until("10.96.0.10 answers from the node", () => ping("10.96.0.10"), 30_000);
    const programmed = node.kubectl(
      "get",
      "fip",
      "10.96.0.10",
      "-o",
      "jsonpath={.status.programmed}",
    );
    expect(programmed.stdout).toBe("true");
    // Done by the DaemonSet's buoy-cni container, not by the executable itself.
    const added = readFileSync(CNI_LOG)
      .subarray(cniLogStart)
      .toString("utf8")
      .split("\n")
      .filter((line) => line.includes('"event":"cni.add"') && line.includes('"pod":"default/web"'));
    expect(added.length).toBeGreaterThan(0);
    expect(
      added.every((line) => line.includes('"via":"agent"')),
      added.join("\n"),
    ).toBe(true);
  }, 180_000);

  it("kubectl annotate --overwrite moves the floating IP live; an invalid value is an Event, the binding stays", async () => {
    const annotate = (value: string) =>
      node.kubectl("annotate", "--overwrite", "pod", "web", `${FLOATING}=${value}`);
    expect(annotate('["10.96.0.11"]').ok).toBe(true);
    await until(
      "10.96.0.11 answers, 10.96.0.10 no longer",
      () => ping("10.96.0.11") && !ping("10.96.0.10"),
      30_000,
    );
    expect(annotate("not-json").ok).toBe(true);
    await until("the refusal in the pod's events", () =>
      node.kubectl("describe", "pod", "web").out.includes("FloatingIPRefused"),
    );
    expect(node.kubectl("describe", "pod", "web").out).toContain(
      "failed to parse 'not-json' as JSON",
    );
    expect(ping("10.96.0.11")).toBe(true);
  }, 120_000);

  it("a second pod asking for a held floating IP does not start, naming the holder; it starts once the holder is gone", async () => {
    await expectSandboxRefused(
      "rival",
      '["10.96.0.11"]',
      "floating IP 10.96.0.11 is already held by pod default/web",
    );
    expect(node.kubectl("delete", "pod", "web", "--wait=true", "--timeout=60s").ok).toBe(true);
    await until(
      "rival Running on its next try",
      () =>
        node.kubectl("get", "pod", "rival", "-o", "jsonpath={.status.phase}").stdout === "Running",
      120_000,
    );
    await until("10.96.0.11 answers from the rival", () => ping("10.96.0.11"), 30_000);
    const holder = node.kubectl("get", "fip", "10.96.0.11", "-o", "jsonpath={.spec.pod}");
    expect(holder.stdout).toBe("rival");
  }, 180_000);

  it("50 pods created and deleted leak nothing: no allocation, claim, interface or rule", async () => {
    const count = () => ({
      allocations:
        node
          .kubectl("get", "ipamblocks.buoy.dev", "-o", "jsonpath={.items[*].spec.allocations}")
          .stdout.split(/"handle"/).length - 1,
      claims: node.kubectl("get", "fip", "-o", "name").stdout.split("\n").filter(Boolean).length,
      interfaces: spawnSync("ip", ["-o", "link", "show"], { encoding: "utf8" })
        .stdout.split("\n")
        .filter((line) => / cali[0-9a-f]+@/.test(line)).length,
      rules: spawnSync("nft", ["list", "ruleset"], { encoding: "utf8" }).stdout.split("\n").length,
    });
    const before = count();
    const pods = Array.from({ length: 50 }, (_, i) =>
      busyboxPod(`loop-${i}`, { labels: { loop: "yes" } }),
    );
    const created = node.kubectlIn(
      JSON.stringify({ apiVersion: "v1", kind: "List", items: pods }),
      "apply",
      "-f",
      "-",
    );
    expect(created.ok, created.out).toBe(true);
    await until(
      "50 pods Running",
      () =>
        node
          .kubectl("get", "pods", "-l", "loop=yes", "-o", "jsonpath={.items[*].status.phase}")
          .stdout.split(" ")
          .filter((phase) => phase === "Running").length === 50,
      300_000,
    );
    expect(count().interfaces).toBe(before.interfaces + 50);
    const deleted = node.kubectl(
      "delete",
      "pods",
      "-l",
      "loop=yes",
      "--wait=true",
      "--timeout=300s",
    );
    expect(deleted.ok, deleted.out).toBe(true);
    await until(
      "every loop pod's interface gone",
      () => count().interfaces === before.interfaces,
      120_000,
    );
    expect(count()).toEqual(before);
  }, 600_000);
});

async function runPod(name: string, annotations?: Record<string, string>): Promise<string> {
  const pod = busyboxPod(name, annotations ? { annotations } : {});
  const applied = node.kubectlIn(JSON.stringify(pod), "apply", "-f", "-");
  expect(applied.ok, applied.out).toBe(true);
  await until(
    `${name} Running`,
    () => node.kubectl("get", "pod", name, "-o", "jsonpath={.status.phase}").stdout === "Running",
  );
  return node.kubectl("get", "pod", name, "-o", "jsonpath={.status.podIP}").stdout;
}

/** The handle of buoy's IPv4 table: a new table (flushed and made again) gets a new one. */
function tableHandle(): string {
  const listing = must(["nft", "-a", "list", "table", "ip", "buoy"]);
  return /# handle (\d+)/.exec(listing)?.[1] ?? "";
}

describe("traffic, the agent's restart, the feature switch and uninstalling", () => {
  const fip = "10.96.0.20";
  let serverIp: string;
  let peerIp: string;
  let peerNetns: string;

  beforeAll(async () => {
    addClientNetns(CLIENT.ns, {
      nodeIfname: CLIENT.link,
      node: [`${CLIENT.nodeIp}/24`],
      client: [`${CLIENT.ip}/24`],
    });
    serverIp = await runPod("server", { [FLOATING]: `["${fip}"]` });
    peerIp = await runPod("peer");
    peerNetns = podNetns(node, "peer");
    const ready = join(tmpdir(), `${prefix}-server-ready`);
    const responder = startIn(podNetns(node, "server"), [
      PYTHON,
      PROBE,
      "serve",
      "server",
      ready,
      SEEN_LOG,
    ]);
    stoppers.push(() => responder.stop());
    await until("the responder in the server pod", () => existsSync(ready), 10_000);
    await until(`${fip} answers from the node`, () => ping(fip), 30_000);
  }, 240_000);

  for (const protocol of ["icmp", "tcp", "udp", "raw253", "raw47"]) {
    it(`${protocol} reaches the pod's floating IP from a client routed to the node and from another pod, answered from it`, () => {
      for (const [from, source] of [
        [CLIENT.ns, CLIENT.ip],
        [peerNetns, peerIp],
      ] as const) {
        const answer = probe(from, protocol, fip, SEEN_LOG);
        expect(answer.ok, answer.output).toBe(true);
        expect(answer.replyFrom, answer.output).toBe(fip);
        expect(answer.answer?.pod, answer.output).toBe("server");
        expect(answer.answer?.peer, answer.output).toBe(source);
        if (protocol !== "udp") expect(answer.answer?.local, answer.output).toBe(serverIp);
      }
    });
  }

  it("kubectl annotate buoy.dev/floating-ip-egress=true: the pod's own connections reach the client from its floating IP", async () => {
    const ready = join(tmpdir(), `${prefix}-client-ready`);
    const responder = startIn(CLIENT.ns, [PYTHON, PROBE, "serve", "client", ready, SEEN_LOG]);
    stoppers.push(() => responder.stop());
    const serverNetns = podNetns(node, "server");
    const egress = (value: string) =>
      node.kubectl(
        "annotate",
        "--overwrite",
        "pod",
        "server",
        `buoy.dev/floating-ip-egress=${value}`,
      );
    const source = (protocol: string) =>
      probe(serverNetns, protocol, CLIENT.ip, SEEN_LOG).answer?.peer;
    try {
      await until("the client's responder", () => existsSync(ready), 10_000);
      expect(source("tcp")).toBe(serverIp);
      expect(egress("true").ok).toBe(true);
      await until("tcp from the floating IP", () => source("tcp") === fip, 10_000);
      for (const protocol of ["icmp", "udp"]) expect(source(protocol), protocol).toBe(fip);
      expect(egress("false").ok).toBe(true);
      await until("tcp from the pod's own address again", () => source("tcp") === serverIp, 10_000);
    } finally {
      responder.stop();
    }
  }, 60_000);

  it("deleting the agent's pod under a 100 Hz ping loses no ping; the replacement takes over without flushing", async () => {
    const agentPod = () =>
      node.kubectl(
        "get",
        "pods",
        "-n",
        "kube-system",
        "-l",
        "k8s-app=buoy-node",
        "-o",
        "jsonpath={.items[*].metadata.name}",
      ).stdout;
    const before = agentPod();
    const handle = tableHandle();
    expect(handle).not.toBe("");
    const pinger = startPinger(CLIENT.ns, fip, 60, 10);
    stoppers.push(() => pinger.stop());
    await sleep(2000);
    const deleted = node.kubectl("delete", "pod", "-n", "kube-system", before, "--wait=false");
    expect(deleted.ok, deleted.out).toBe(true);
    await until(
      "a new buoy-node pod ready",
      () => {
        const now = agentPod();
        return (
          now !== "" &&
          now !== before &&
          !now.includes(" ") &&
          node.kubectl(
            "get",
            "pod",
            "-n",
            "kube-system",
            now,
            "-o",
            'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
          ).stdout === "True"
        );
      },
      55_000,
    );
    const report = await pinger.done;
    expect(report.sent).toBeGreaterThan(5500);
    expect(report.lost, JSON.stringify(report)).toBe(0);
    // The same table, never flushed, and no conntrack entry dropped.
    expect(tableHandle()).toBe(handle);
    const logs = node.kubectl("logs", "-n", "kube-system", agentPod(), "-c", "buoy-agent").out;
    expect(logs).not.toMatch(/"replacedTables":\["ipv/);
    expect(logs).not.toMatch(/"conntrackFlushed":\["/);
    expect(probe(CLIENT.ns, "tcp", fip, SEEN_LOG).ok).toBe(true);
  }, 120_000);

  it("with the feature switched off in calico-config, a pod with the annotation is refused in Calico's words", async () => {
    const data = (
      JSON.parse(
        node.kubectl("get", "configmap", "-n", "kube-system", "calico-config", "-o", "json").stdout,
      ) as { data: Record<string, string> }
    ).data;
    const conflist = data.cni_network_config ?? "";
    expect(conflist).toMatch(/"floating_ips": true/);
    const withConflist = (text: string) =>
      JSON.stringify({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "calico-config", namespace: "kube-system" },
        data: { ...data, cni_network_config: text },
      });
    const off = conflist.replace(/"floating_ips": true/, '"floating_ips": false');
    const applied = node.kubectlIn(withConflist(off), "apply", "-f", "-");
    expect(applied.ok, applied.out).toBe(true);
    const rollout = ["-n", "kube-system", "daemonset/buoy-node"];
    expect(node.kubectl("rollout", "restart", ...rollout).ok).toBe(true);
    const status = node.kubectl("rollout", "status", ...rollout, "--timeout=180s");
    expect(status.ok, status.out).toBe(true);
    expect(readFileSync(join(cniConf, "10-calico.conflist"), "utf8")).toMatch(
      /"floating_ips": false/,
    );
    await expectSandboxRefused(
      "off",
      '["10.96.0.30"]',
      "requested feature is not enabled: floating_ips",
    );
    expect(node.kubectl("get", "fip", "10.96.0.30").ok).toBe(false);
    expect(node.kubectl("delete", "pod", "off", "--wait=true", "--timeout=60s").ok).toBe(true);
    // Switched back on: the agent programs the floating IP it kept its claim for.
    const restored = node.kubectlIn(withConflist(conflist), "apply", "-f", "-");
    expect(restored.ok, restored.out).toBe(true);
    expect(node.kubectl("rollout", "restart", ...rollout).ok).toBe(true);
    const again = node.kubectl("rollout", "status", ...rollout, "--timeout=180s");
    expect(again.ok, again.out).toBe(true);
    await until(`${fip} answers again`, () => ping(fip), 30_000);
  }, 400_000);

  it("uninstalling leaves the node without buoy's tables, routes, conflist and executables; the CRDs and claims stay", async () => {
    expect(must(["nft", "list", "tables"])).toContain("table ip buoy");
    expect(must(["ip", "-4", "route", "show", "proto", "202"])).toContain(fip);
    const kube = (...args: string[]) => {
      const result = node.kubectl(...args);
      expect(result.ok, `kubectl ${args.join(" ")}: ${result.out}`).toBe(true);
      return result.stdout;
    };
    kube("-n", "kube-system", "delete", "daemonset", "buoy-node");
    kube(
      "-n",
      "kube-system",
      "wait",
      "--for=delete",
      "pod",
      "-l",
      "k8s-app=buoy-node",
      "--timeout=120s",
    );
    const applied = node.kubectlIn(
      daemonSet("uninstall.yaml", "buoy-uninstall"),
      "apply",
      "-f",
      "-",
    );
    expect(applied.ok, applied.out).toBe(true);
    kube("-n", "kube-system", "rollout", "status", "daemonset/buoy-uninstall", "--timeout=120s");
    const logs = kube(
      "-n",
      "kube-system",
      "logs",
      "-l",
      "k8s-app=buoy-uninstall",
      "-c",
      "remove-dataplane",
    );
    expect(logs).toContain("removed nftables table ip buoy");
    expect(logs).toContain(`${fip}/32 dev cali`);
    expect(must(["nft", "list", "tables"])).not.toContain("buoy");
    expect(must(["ip", "-4", "route", "show", "proto", "202"])).toBe("");
    expect(must(["ip", "-6", "route", "show", "proto", "202"])).toBe("");
    for (const file of ["10-calico.conflist", "calico-kubeconfig"]) {
      expect(existsSync(join(cniConf, file)), file).toBe(false);
    }
    for (const file of ["calico", "calico-ipam", "buoy", "buoy-ipam"]) {
      expect(existsSync(join(cniBin, file)), file).toBe(false);
    }
    // The floating IP no longer answers: nothing translates it any more.
    expect(ping(fip)).toBe(false);
    kube("-n", "kube-system", "delete", "daemonset", "buoy-uninstall");
    for (const file of ["rbac.yaml", "calico-config.yaml"]) {
      kube("delete", "-f", join(ROOT, "manifests", file));
    }
    // What stays, as docs/install.md says: the CRDs and their objects.
    expect(kube("get", "fip", fip, "-o", "jsonpath={.spec.pod}")).toBe("server");
    expect(kube("get", "ippools.buoy.dev", "-o", "name")).toContain("floating");
  }, 300_000);
});
