// ADD, CHECK and DEL with the real plugin binary, the real kernel and etcd, in
// every CNI version: the pod gets its interface, addresses and routes, pods
// reach each other through the node, and DEL removes it all.
import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SUPPORTED_VERSIONS, compareVersions } from "../../src/cni/versions.js";
import {
  addNetns,
  createPool,
  deleteNetns,
  etcdPluginConf,
  hostInterfaces,
  must,
  ping,
  runPlugin,
  runPrefix,
  sh,
  sleep,
  startEtcd,
  type Etcd,
} from "../support/harness.js";

let etcd: Etcd;
const prefix = runPrefix();
const made: string[] = [];

beforeAll(async () => {
  etcd = await startEtcd();
  await createPool(etcd.store, "pods", { cidr: "10.244.0.0/16" });
  await createPool(etcd.store, "pods6", { cidr: "fd00:244::/64" });
  await createPool(etcd.store, "floating", { cidr: "10.96.0.0/24", disabled: true });
});
afterAll(async () => {
  for (const ns of made) deleteNetns(ns);
  await etcd?.stop();
});

function conf(version: string, dualStack: boolean, extra: Record<string, unknown> = {}) {
  return etcdPluginConf(etcd, {
    cniVersion: version,
    mtu: 1400,
    ipam: { type: "calico-ipam", assign_ipv4: "true", assign_ipv6: dualStack ? "true" : "false" },
    ...extra,
  });
}

function pod(name: string) {
  const ns = `${prefix}-${name}`;
  made.push(ns);
  return {
    ns,
    path: addNetns(ns),
    containerID: `${name}-${Math.random().toString(16).slice(2, 10)}`,
  };
}

function ipsOf(output: Record<string, unknown>): string[] {
  if (Array.isArray(output.ips))
    return (output.ips as { address: string }[]).map((ip) => ip.address.split("/")[0]!);
  return ["ip4", "ip6"]
    .map((key) => (output[key] as { ip?: string } | undefined)?.ip)
    .filter((ip): ip is string => !!ip)
    .map((ip) => ip.split("/")[0]!);
}

for (const version of SUPPORTED_VERSIONS) {
  for (const dualStack of [false, true]) {
    const label = `${version} ${dualStack ? "dual-stack" : "IPv4"}`;
    describe(`CNI ${label}`, () => {
      it(`ADD wires two pods that reach each other; CHECK passes; DEL removes everything (${label})`, async () => {
        const a = pod(`a${version.replaceAll(".", "")}${dualStack ? "d" : ""}`);
        const b = pod(`b${version.replaceAll(".", "")}${dualStack ? "d" : ""}`);
        const results = [];
        for (const p of [a, b]) {
          const added = await runPlugin({
            command: "ADD",
            conf: conf(version, dualStack),
            containerID: p.containerID,
            netns: p.path,
            pod: { namespace: "default", name: p.ns },
          });
          expect(added.exitCode, added.raw).toBe(0);
          expect(added.output.cniVersion).toBe(version);
          results.push(added.output);
        }
        const [ipsA, ipsB] = results.map(ipsOf) as [string[], string[]];
        expect(ipsA).toHaveLength(dualStack ? 2 : 1);

        const link = JSON.parse(
          must(["ip", "-n", a.ns, "-json", "address", "show", "dev", "eth0"]),
        )[0];
        expect(link.mtu).toBe(1400);
        const addresses = link.addr_info.map((info: { local: string }) => info.local);
        for (const ip of ipsA) expect(addresses).toContain(ip);
        expect(must(["ip", "-n", a.ns, "route", "show", "default"])).toContain(
          "via 169.254.1.1 dev eth0",
        );
        if (dualStack)
          expect(must(["ip", "-n", a.ns, "-6", "route", "show", "default"])).toContain(
            "via fe80::1 dev eth0",
          );

        for (const ip of ipsB) expect(ping(a.ns, ip), `ping ${ip} from pod a`).toBe(true);

        if (compareVersions(version, "0.4.0") >= 0) {
          const checked = await runPlugin({
            command: "CHECK",
            conf: conf(version, dualStack, { prevResult: results[0] }),
            containerID: a.containerID,
            netns: a.path,
            pod: { namespace: "default", name: a.ns },
          });
          expect(checked.exitCode, checked.raw).toBe(0);
          sh(["ip", "-n", a.ns, "address", "del", `${ipsA[0]}/32`, "dev", "eth0"]);
          const broken = await runPlugin({
            command: "CHECK",
            conf: conf(version, dualStack, { prevResult: results[0] }),
            containerID: a.containerID,
            netns: a.path,
            pod: { namespace: "default", name: a.ns },
          });
          expect(broken.exitCode).not.toBe(0);
          expect(String(broken.output.msg)).toContain(`address ${ipsA[0]} is missing on eth0`);
        }

        for (const p of [a, b]) {
          for (let i = 0; i < 2; i++) {
            const deleted = await runPlugin({
              command: "DEL",
              conf: conf(version, dualStack),
              containerID: p.containerID,
              netns: p.path,
              pod: { namespace: "default", name: p.ns },
            });
            expect(deleted.exitCode, deleted.raw).toBe(0);
          }
        }
        expect(hostInterfaces()).toEqual([]);
        expect(sh(["ip", "-n", a.ns, "link", "show", "eth0"]).status).not.toBe(0);
        const blocks = await etcd.store.listBlocks();
        expect(blocks.flatMap((block) => Object.keys(block.value.allocations))).toEqual([]);
        expect(await etcd.store.listEndpoints()).toEqual([]);
      });
    });
  }
}

describe("namespaces given as /proc/PID/ns/net", () => {
  it("ADD and DEL work with a process's namespace path", async () => {
    // unshare execs sleep in a new network namespace: the PID holds it, and is ours to kill.
    const holder = spawn("unshare", ["--net", "sleep", "300"], { stdio: "ignore" });
    await sleep(100);
    try {
      const path = `/proc/${holder.pid}/ns/net`;
      const call = {
        conf: conf("1.0.0", false),
        containerID: "procns1",
        netns: path,
        pod: { namespace: "default", name: "procns" },
      };
      const added = await runPlugin({ command: "ADD", ...call });
      expect(added.exitCode, added.raw).toBe(0);
      const inside = must([
        "nsenter",
        `--net=${path}`,
        "ip",
        "-json",
        "address",
        "show",
        "dev",
        "eth0",
      ]);
      expect(inside).toContain(ipsOf(added.output)[0]);
      expect((await runPlugin({ command: "DEL", ...call })).exitCode).toBe(0);
      expect(sh(["nsenter", `--net=${path}`, "ip", "link", "show", "eth0"]).status).not.toBe(0);
    } finally {
      holder.kill("SIGKILL");
    }
  });
});
