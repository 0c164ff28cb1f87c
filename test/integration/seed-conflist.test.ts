// The seed page's cni_network_config, rendered as the installer renders it,
// run plugin by plugin as libcni does: buoy first, Debian's portmap chained
// after it. A port mapping really forwards from a client outside the node, and
// a conflist naming host-local gets it by CNI delegation.
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  addNetns,
  createPool,
  deleteNetns,
  etcdPluginConf,
  execConflist,
  hostInterfaces,
  must,
  renderSeedConflist,
  runPlugin,
  runPrefix,
  sh,
  sleep,
  startEtcd,
  startIn,
  tcpRequest,
  type Conflist,
  type Etcd,
} from "../support/harness.js";

let etcd: Etcd;
const prefix = runPrefix();
const client = `${prefix}-client`;
const namespaces: string[] = [client];

beforeAll(async () => {
  etcd = await startEtcd();
  await createPool(etcd.store, "pods", { cidr: "10.244.0.0/16" });
  await createPool(etcd.store, "floating", { cidr: "10.96.0.0/24", disabled: true });
  // A client outside the node: a veth from the node (this namespace) to it.
  addNetns(client);
  must(["ip", "link", "add", "bclient0", "type", "veth", "peer", "name", "eth0", "netns", client]);
  must(["ip", "address", "add", "192.168.123.1/24", "dev", "bclient0"]);
  must(["ip", "link", "set", "bclient0", "up"]);
  must(["ip", "-n", client, "address", "add", "192.168.123.2/24", "dev", "eth0"]);
  must(["ip", "-n", client, "link", "set", "eth0", "up"]);
  must(["ip", "-n", client, "route", "add", "default", "via", "192.168.123.1"]);
});
afterAll(async () => {
  sh(["ip", "link", "del", "bclient0"]);
  for (const ns of namespaces) deleteNetns(ns);
  await etcd?.stop();
});

/** The seed conflist with its placeholders rendered and, until the kubernetes datastore exists, etcd. */
function seedConflist(): Conflist {
  const conflist = renderSeedConflist({
    KUBERNETES_NODE_NAME: "node-1",
    CNI_MTU: "1440",
    KUBECONFIG_FILEPATH: "/etc/cni/net.d/calico-kubeconfig",
  });
  const calico = conflist.plugins[0]!;
  calico.datastore_type = "etcdv3";
  calico.etcd_endpoints = etcd.endpoint;
  calico.log_file_path = `/tmp/${prefix}-cni.log`;
  // containerd passes pod annotations only to plugins that declare this capability.
  calico.capabilities = { "io.kubernetes.cri.pod-annotations": true };
  return conflist;
}

describe("the seed's conflist", () => {
  it("renders to buoy + portmap, gives the pod its floating IP, and its port mapping forwards", async () => {
    const conflist = seedConflist();
    expect(conflist.plugins.map((plugin) => plugin.type)).toEqual(["calico", "portmap"]);
    const ns = `${prefix}-web`;
    namespaces.push(ns);
    const call = {
      containerID: "seedweb1",
      netns: addNetns(ns),
      pod: { namespace: "default", name: "web" },
    };
    const runtimeConfig = {
      portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }],
      "io.kubernetes.cri.pod-annotations": { "cni.projectcalico.org/floatingIPs": '["10.96.0.1"]' },
    };
    const added = await execConflist(conflist, "ADD", call, runtimeConfig);
    expect(added.exitCode, added.raw).toBe(0);
    expect(added.output.cniVersion).toBe("0.3.0");
    const podIp = (added.output.ips as { address: string }[])[0]!.address.split("/")[0]!;
    const [endpoint] = await etcd.store.listEndpoints("node-1");
    expect(endpoint?.value.ipNATs).toEqual([{ internalIP: podIp, externalIP: "10.96.0.1" }]);

    const server = startIn(ns, [
      "socat",
      "TCP-LISTEN:80,fork,reuseaddr",
      "SYSTEM:echo hello-from-web",
    ]);
    try {
      let answer = "";
      for (let attempt = 0; attempt < 20 && !answer.includes("hello-from-web"); attempt++) {
        await sleep(100);
        answer = tcpRequest(client, "192.168.123.1", 8080);
      }
      expect(answer).toContain("hello-from-web");
    } finally {
      server.stop();
    }

    const deleted = await execConflist(conflist, "DEL", call, runtimeConfig);
    expect(deleted.exitCode, deleted.raw).toBe(0);
    expect(hostInterfaces()).toEqual([]);
    expect(await etcd.store.listClaims()).toEqual([]);
    expect(must(["iptables-save", "-t", "nat"])).not.toContain("8080");
  });
});

describe("IPAM delegation", () => {
  it("execs host-local from CNI_PATH for ADD and passes DEL on", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), `${prefix}-hostlocal-`));
    try {
      const ns = `${prefix}-hl`;
      namespaces.push(ns);
      const conf = etcdPluginConf(etcd, {
        name: "hl-net",
        ipam: { type: "host-local", ranges: [[{ subnet: "10.77.0.0/24" }]], dataDir },
      });
      const call = {
        conf,
        containerID: "hl1",
        netns: addNetns(ns),
        pod: { namespace: "default", name: "hl" },
      };
      const added = await runPlugin({ command: "ADD", ...call });
      expect(added.exitCode, added.raw).toBe(0);
      expect((added.output.ips as { address: string }[])[0]!.address).toMatch(
        /^10\.77\.0\.\d+\/32$/,
      );
      expect(readdirSync(join(dataDir, "hl-net")).some((file) => file.startsWith("10.77.0."))).toBe(
        true,
      );
      expect((await runPlugin({ command: "DEL", ...call })).exitCode).toBe(0);
      expect(readdirSync(join(dataDir, "hl-net")).some((file) => file.startsWith("10.77.0."))).toBe(
        false,
      );
      expect(hostInterfaces()).toEqual([]);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it("passes STATUS and GC on to host-local, whose own answer is the result", async () => {
    const conf = etcdPluginConf(etcd, {
      name: "hl-net",
      cniVersion: "1.1.0",
      ipam: { type: "host-local", ranges: [[{ subnet: "10.77.0.0/24" }]] },
      "cni.dev/valid-attachments": [],
    });
    // Debian's host-local (1.1.1) predates both commands: it asks for what ADD needs.
    for (const command of ["STATUS", "GC"] as const) {
      const outcome = await runPlugin({ command, conf, containerID: "", netns: "" });
      expect(outcome.exitCode, outcome.raw).not.toBe(0);
      expect(outcome.output).toMatchObject({ code: 3, msg: "host-local: missing containerID" });
    }
    // buoy's own IPAM answers in-process.
    const own = etcdPluginConf(etcd, { cniVersion: "1.1.0", ipam: { type: "calico-ipam" } });
    const answered = await runPlugin({ command: "STATUS", conf: own, containerID: "", netns: "" });
    expect(answered.exitCode, answered.raw).toBe(0);
  });

  it("reports a missing IPAM plugin clearly and leaves nothing", async () => {
    const ns = `${prefix}-noipam`;
    namespaces.push(ns);
    const conf = etcdPluginConf(etcd, { ipam: { type: "no-such-ipam" } });
    const outcome = await runPlugin({
      command: "ADD",
      conf,
      containerID: "x1",
      netns: addNetns(ns),
    });
    expect(outcome.output).toMatchObject({ code: 7 });
    expect(String(outcome.output.msg)).toContain('failed to find plugin "no-such-ipam" in path');
    expect(hostInterfaces()).toEqual([]);
  });
});
