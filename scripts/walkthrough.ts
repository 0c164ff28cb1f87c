// The README's main job until `buoy lab` exists: one floating IP's life, with
// the real plugin binary, the real CLI, etcd and the kernel, inside the
// throwaway node namespace that scripts/demo.sh makes.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  addNetns,
  deleteNetns,
  etcdPluginConf,
  hostInterfaces,
  ROOT,
  runPlugin,
  runPrefix,
  sh,
  startEtcd,
} from "../test/support/harness.js";

const prefix = runPrefix();
const bold = (text: string) => (process.stdout.isTTY ? `\x1b[1m${text}\x1b[0m` : text);
let stepNumber = 0;
const step = (title: string) => console.log(`\n${bold(`== ${++stepNumber}. ${title}`)}`);
const show = (label: string, text: string) =>
  console.log(`${label}\n${text.trimEnd().replace(/^/gm, "    ")}`);

const etcd = await startEtcd();
const namespaces: string[] = [];
const buoy = (...args: string[]) => {
  const result = sh(["node", join(ROOT, "dist/buoy"), "--etcd-endpoints", etcd.endpoint, ...args]);
  return (result.stdout + result.stderr).trimEnd();
};

try {
  step(`etcd is up at ${etcd.endpoint} (inside namespace ${prefix}-node)`);

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
  show(
    "$ buoy apply -f pools.yaml",
    sh(
      ["node", join(ROOT, "dist/buoy"), "--etcd-endpoints", etcd.endpoint, "apply", "-f", "-"],
      pools,
    ).stdout,
  );
  show("$ buoy get ippools -o wide", buoy("get", "ippools", "-o", "wide"));

  const conf = etcdPluginConf(etcd, {
    nodename: "demo-node",
    mtu: 1440,
    feature_control: { floating_ips: true },
  });
  const annotations = { "cni.projectcalico.org/floatingIPs": '["10.96.0.1"]' };
  const web = `${prefix}-web`;
  namespaces.push(web);
  const webCall = {
    conf: { ...conf, runtimeConfig: { "io.kubernetes.cri.pod-annotations": annotations } },
    containerID: "demo-web-1",
    netns: addNetns(web),
    pod: { namespace: "default", name: "web" },
  };

  step('ADD pod default/web with cni.projectcalico.org/floatingIPs: ["10.96.0.1"]');
  const added = await runPlugin({ command: "ADD", ...webCall });
  if (added.exitCode !== 0) throw new Error(`ADD failed: ${added.raw}`);
  show("CNI result:", JSON.stringify(added.output, null, 2));
  show(
    "inside the pod: ip address show eth0",
    sh(["ip", "-n", web, "-brief", "address", "show", "eth0"]).stdout,
  );
  show("inside the pod: ip route", sh(["ip", "-n", web, "route"]).stdout);
  show(
    "on the node: ip route show proto 201 (buoy's routes)",
    sh(["ip", "route", "show", "proto", "201"]).stdout,
  );
  show("$ buoy get endpoints -o wide", buoy("get", "endpoints", "-o", "wide"));
  show("$ buoy get floatingips -o wide", buoy("get", "floatingips", "-o", "wide"));
  const [endpoint] = await etcd.store.listEndpoints("demo-node");
  show(
    "the stored endpoint (its ipNATs are what the node agent will program):",
    JSON.stringify(endpoint?.value, null, 2),
  );

  step(
    "a second pod asks for the same floating IP: refused, naming the holder, nothing left behind",
  );
  const other = `${prefix}-other`;
  namespaces.push(other);
  const otherCall = {
    ...webCall,
    containerID: "demo-other-1",
    netns: addNetns(other),
    pod: { namespace: "default", name: "other" },
  };
  const refused = await runPlugin({ command: "ADD", ...otherCall });
  show(`exit code ${refused.exitCode}, CNI error:`, JSON.stringify(refused.output));
  show("$ buoy get endpoints", buoy("get", "endpoints"));

  step("DEL pod default/web");
  const deleted = await runPlugin({ command: "DEL", ...webCall });
  console.log(
    `    exit code ${deleted.exitCode}; DEL again (idempotent): exit code ${(await runPlugin({ command: "DEL", ...webCall })).exitCode}`,
  );

  step("everything is gone");
  show("$ buoy get floatingips", buoy("get", "floatingips"));
  show("$ buoy get endpoints", buoy("get", "endpoints"));
  const allocations = (await etcd.store.listBlocks()).flatMap((block) =>
    Object.keys(block.value.allocations),
  );
  console.log(
    `    allocated addresses: ${allocations.length}; host interfaces: ${hostInterfaces().length}; routes: ${sh(["ip", "route", "show", "proto", "201"]).stdout.trim() ? "some left" : "none"}`,
  );
  show(
    "the plugin's structured log (log_file_path; JSON lines, never stdout):",
    readFileSync(`/tmp/${prefix}-cni.log`, "utf8"),
  );
  console.log(`\n${bold("done")}: the node agent (next) turns the recorded ipNATs into NAT rules`);
} finally {
  for (const ns of namespaces) deleteNetns(ns);
  await etcd.stop();
}
