// A FloatingIP failing over on a real node (issue 15 item 6): buoy installed
// by its manifests as daemonset.test.ts does, plus manifests/controller.yaml
// as it is (its pods from the image of `npm run image`, on the host network,
// as user 65534 with a read-only root). A Deployment of two busybox replicas
// in a namespace of the test and a FloatingIP selecting them: the controller
// gives the address to one replica, the node's agent translates it. Under a
// 100 Hz ping from a client namespace routed to the node, `kubectl delete
// pod` of the holder: the claim moves in place to the other replica, the
// kernel translates to it, and the ping's longest gap is the interruption.
import { readFileSync, readdirSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ipObjectName } from "../../src/kube/names.js";
import { addClientNetns, readNftMap, runPrefix, sleep, startIn } from "../support/harness.js";
import { applyManifests, buoyDiagnostics, startNodeWithBuoy } from "../support/buoy-install.js";
import { BUSYBOX_IMAGE, podNetns, TEST_POOLS, type KubeNode } from "../support/kube-node.js";
import { LAB_PROBE, probe, PYTHON, startPinger } from "../support/lab-probe.js";

const prefix = runPrefix();
const NAMESPACE = "failover";
const ADDRESS = "10.96.0.40";
const SEEN_LOG = join(tmpdir(), `${prefix}-fo-probe-seen.log`);
// A client namespace routed to the node, on a subnet of its own (daemonset.test.ts
// has 192.168.125.0/24 when both files run in one run).
const CLIENT = {
  ns: `${prefix}-foclient`,
  ip: "192.168.126.2",
  nodeIp: "192.168.126.1",
  link: `bf${prefix.split("-").at(-1) ?? ""}`.slice(0, 12),
};
let node: KubeNode;
const stoppers: (() => void)[] = [];

beforeAll(async () => {
  ({ node } = await startNodeWithBuoy(join(tmpdir(), `${prefix}-fo-cni`)));
  applyManifests(node.kube, ["controller.yaml"]);
  addClientNetns(CLIENT.ns, {
    nodeIfname: CLIENT.link,
    node: [`${CLIENT.nodeIp}/24`],
    client: [`${CLIENT.ip}/24`],
  });
}, 300_000);

afterAll(async () => {
  for (const stop of stoppers) stop();
  await node?.stop();
}, 120_000);

async function until(what: string, check: () => boolean, ms = 120_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (check()) return;
    await sleep(250);
  }
  const claim = node.kubectl("get", "fip", ADDRESS, "-o", "yaml").out;
  const fip = node.kubectl("get", "vip", "-n", NAMESPACE, "-o", "yaml").out;
  const diagnostics = buoyDiagnostics(node, [
    { selector: "k8s-app=buoy-controller", container: "controller" },
  ]);
  throw new Error(`timed out waiting for ${what}\n${diagnostics}\n${claim}\n${fip}`);
}

interface PodView {
  name: string;
  ip: string;
  phase: string;
  ready: boolean;
  deleting: boolean;
  unschedulable: boolean;
}

function pods(namespace: string, selector: string): PodView[] {
  const listed = node.kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json");
  if (!listed.ok) return [];
  const items = (
    JSON.parse(listed.stdout) as {
      items: {
        metadata: { name: string; deletionTimestamp?: string };
        status: {
          phase?: string;
          podIP?: string;
          conditions?: { type: string; status: string; reason?: string }[];
        };
      }[];
    }
  ).items;
  return items.map((pod) => {
    const condition = (type: string) => pod.status.conditions?.find((c) => c.type === type);
    return {
      name: pod.metadata.name,
      ip: pod.status.podIP ?? "",
      phase: pod.status.phase ?? "",
      ready: condition("Ready")?.status === "True",
      deleting: pod.metadata.deletionTimestamp !== undefined,
      unschedulable: condition("PodScheduled")?.reason === "Unschedulable",
    };
  });
}

interface ClaimView {
  pod: string;
  namespace: string;
  floatingIP: string;
  uid: string;
}

function claim(): ClaimView | undefined {
  const got = node.kubectl("get", "fip", ipObjectName(ADDRESS) ?? ADDRESS, "-o", "json");
  if (!got.ok) return undefined;
  const object = JSON.parse(got.stdout) as {
    metadata: { uid: string };
    spec: { pod: string; namespace: string; floatingIP?: string };
  };
  return {
    pod: object.spec.pod,
    namespace: object.spec.namespace,
    floatingIP: object.spec.floatingIP ?? "",
    uid: object.metadata.uid,
  };
}

/** What the node's kernel translates the address to (nft map fip_dnat in table ip buoy). */
const translated = () => readNftMap("fip_dnat").get(ADDRESS);

/** The user IDs (real, effective) of the processes whose command line has all of `words`. */
function uidsOf(words: string[]): string[] {
  const found: string[] = [];
  for (const pid of readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      if (!words.every((word) => argv.includes(word))) continue;
      const uid = /^Uid:\s+(\d+)\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      if (uid) found.push(`${uid[1]} ${uid[2]}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

describe("a FloatingIP on a real node, moved by buoy controller when its holder is deleted", () => {
  it("the controller's Deployment runs from the image: one replica acts, the other stays Pending (one node)", async () => {
    await until("the buoy-node pod ready", () =>
      pods("kube-system", "k8s-app=buoy-node").some((pod) => pod.ready),
    );
    await node.waitReady(60_000);
    await until("one controller replica Ready, the other unschedulable", () => {
      const replicas = pods("kube-system", "k8s-app=buoy-controller");
      return (
        replicas.length === 2 &&
        replicas.filter((pod) => pod.ready).length === 1 &&
        replicas.filter((pod) => pod.phase === "Pending" && pod.unschedulable).length === 1
      );
    });
    const acting = pods("kube-system", "k8s-app=buoy-controller").find((pod) => pod.ready);
    await until("the Ready replica acting", () =>
      node
        .kubectl("logs", "-n", "kube-system", acting?.name ?? "", "-c", "controller")
        .stdout.includes('"state":"acting"'),
    );
    // As the manifest says: user and group 65534, whatever the image's default.
    expect(uidsOf(["controller", "--lease=kube-system/buoy-controller"])).toEqual(["65534 65534"]);
    const lease = node.kubectl(
      "get",
      "lease",
      "-n",
      "kube-system",
      "buoy-controller",
      "-o",
      "jsonpath={.spec.holderIdentity}",
    );
    expect(lease.stdout).toMatch(new RegExp(`^${acting?.name ?? "?"}_\\d+$`));
  }, 300_000);

  it("a FloatingIP selecting a Deployment's two replicas goes to one, and the node translates it", async () => {
    const pools = node.kubectlIn(TEST_POOLS, "apply", "-f", "-");
    expect(pools.ok, pools.out).toBe(true);
    expect(node.kubectl("create", "namespace", NAMESPACE).ok).toBe(true);
    const deployment = {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "web", namespace: NAMESPACE },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: "web" } },
        template: {
          metadata: { labels: { app: "web" } },
          spec: {
            terminationGracePeriodSeconds: 1,
            containers: [
              {
                name: "c",
                image: BUSYBOX_IMAGE,
                imagePullPolicy: "Never",
                command: ["/bin/busybox", "sleep", "3600"],
              },
            ],
          },
        },
      },
    };
    const applied = node.kubectlIn(JSON.stringify(deployment), "apply", "-f", "-");
    expect(applied.ok, applied.out).toBe(true);
    await until(
      "two web replicas Ready",
      () => pods(NAMESPACE, "app=web").filter((pod) => pod.ready && pod.ip !== "").length === 2,
    );
    const floatingIp = {
      apiVersion: "buoy.dev/v1",
      kind: "FloatingIP",
      metadata: { name: "vip", namespace: NAMESPACE },
      spec: { address: ADDRESS, podSelector: { matchLabels: { app: "web" } } },
    };
    const created = node.kubectlIn(JSON.stringify(floatingIp), "apply", "-f", "-");
    expect(created.ok, created.out).toBe(true);
    const replicas = pods(NAMESPACE, "app=web");
    await until("the claim naming one replica", () =>
      replicas.some((pod) => pod.name === claim()?.pod),
    );
    expect(claim()).toMatchObject({ namespace: NAMESPACE, floatingIP: `${NAMESPACE}/vip` });
    const holder = replicas.find((pod) => pod.name === claim()?.pod);
    await until(
      "the kernel translating it to the holder",
      () => translated() === holder?.ip,
      30_000,
    );
    await until(
      "the FloatingIP's status: Programmed",
      () =>
        node.kubectl(
          "get",
          "vip",
          "-n",
          NAMESPACE,
          "vip",
          "-o",
          'jsonpath={.status.holder.pod} {.status.conditions[?(@.type=="Programmed")].status}',
        ).stdout === `${holder?.name} True`,
      30_000,
    );
    // Each replica answers TCP with its name (the lab's responder, in its network namespace).
    for (const pod of replicas) {
      const ready = join(tmpdir(), `${prefix}-fo-${pod.name}-ready`);
      const responder = startIn(podNetns(node, pod.name, NAMESPACE), [
        PYTHON,
        LAB_PROBE,
        "serve",
        pod.name,
        ready,
        SEEN_LOG,
      ]);
      stoppers.push(() => responder.stop());
      await until(`the responder in ${pod.name}`, () => existsSync(ready), 10_000);
    }
    await until(
      `${ADDRESS} answering ping from the client`,
      () => probe(CLIENT.ns, "icmp", ADDRESS, SEEN_LOG).ok,
      30_000,
    );
    const answer = probe(CLIENT.ns, "tcp", ADDRESS, SEEN_LOG);
    expect(answer.answer?.pod, answer.output).toBe(holder?.name);
    expect(answer.replyFrom, answer.output).toBe(ADDRESS);
  }, 300_000);

  it("kubectl delete pod of the holder under a 100 Hz ping: the other replica answers at the address, after a short interruption", async () => {
    const before = claim();
    const replicas = pods(NAMESPACE, "app=web");
    const holder = replicas.find((pod) => pod.name === before?.pod);
    const other = replicas.find((pod) => pod.name !== before?.pod);
    expect(holder && other, JSON.stringify(replicas)).toBeTruthy();
    if (!holder || !other || !before) return;
    const pinger = startPinger(CLIENT.ns, ADDRESS, 20, 10);
    stoppers.push(() => pinger.stop());
    await sleep(3000);
    const began = Date.now();
    const deleted = node.kubectl("delete", "pod", "-n", NAMESPACE, holder.name, "--wait=false");
    expect(deleted.ok, deleted.out).toBe(true);
    await until(`the claim naming ${other.name}`, () => claim()?.pod === other.name, 10_000);
    const moved = Date.now() - began;
    await until(`the kernel translating to ${other.name}`, () => translated() === other.ip, 10_000);
    const kernel = Date.now() - began;
    const report = await pinger.done;
    console.log(
      `holder ${holder.name} deleted: claim moved to ${other.name} after ${moved} ms, ` +
        `kernel after ${kernel} ms (polled); ping at ${report.intervalMs} ms: ` +
        `longest gap ${report.longestGapMs} ms, ${report.lost} of ${report.sent} lost ` +
        `(${report.lostRanges.join(", ") || "none"})`,
    );
    // Moved in place: the same claim, so the old pod's DEL cannot take it away.
    expect(claim()).toMatchObject({ pod: other.name, uid: before.uid });
    expect(translated()).toBe(other.ip);
    // The longest gap also counts up to the end: a ping that never came back fails here.
    expect(report.sent).toBeGreaterThan(1500);
    expect(report.longestGapMs, JSON.stringify(report)).toBeLessThan(5000);
    const answer = probe(CLIENT.ns, "tcp", ADDRESS, SEEN_LOG);
    expect(answer.answer?.pod, answer.output).toBe(other.name);
    expect(answer.replyFrom, answer.output).toBe(ADDRESS);
    // The Deployment's replacement stands by: the holder keeps it (sticky).
    await until(
      "the replacement replica Ready",
      () => pods(NAMESPACE, "app=web").filter((pod) => pod.ready && !pod.deleting).length === 2,
      60_000,
    );
    expect(claim()?.pod).toBe(other.name);
  }, 180_000);
});
