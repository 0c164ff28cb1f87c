// A real Kubernetes node for end-to-end tests (issue 6): the API server and
// controller manager of startKubeApiserver, plus kube-scheduler, containerd
// 1.6 and kubelet v1.20.2 (scripts/kube/build.sh with KUBELET=1), all in this run's network
// namespace, so that buoy's CNI plugin is called by a real kubelet and
// containerd. The node's address sits on a veth pair whose two ends are both
// in the namespace. Images are made here with scripts/image/oci-pack.py from
// Debian's static catatonit (the sandbox's pause process) and busybox.
//
// Runs only where the host's mount namespace is visible (cgroups, the pods'
// network namespace bind mounts): scripts/netns-run.sh with
// BUOY_NETNS_MOUNTS=host. The kubelet changes state outside the run that no
// flag redirects; startKubeNode records it in /tmp/PREFIX-node-host-state and
// stop() (or netns-run.sh's cleanup, if the test dies) puts it back:
//   - global sysctls it tunes (kernel.panic, kernel.panic_on_oops,
//     vm.overcommit_memory, ...);
//   - directories it or containerd create at fixed paths (/var/lib/kubelet,
//     /var/log/pods, /var/log/containers, /run/containerd, /var/lib/cni),
//     removed only if this run created them;
//   - the cgroup k8s.io it puts pods under, in each hierarchy.
// Only one node runs at a time on a machine (a lock), for those fixed paths.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, runPrefix, sleep } from "./harness.js";
import { KUBE_BIN, startKubeApiserver, type KubeApiserver } from "./kube.js";

export const NODE_NAME = "node-1";
const PAUSE_IMAGE = "localhost/pause:catatonit";
export const BUSYBOX_IMAGE = "localhost/busybox:1";

const TUNED_SYSCTLS = [
  "vm.overcommit_memory",
  "vm.panic_on_oom",
  "kernel.panic",
  "kernel.panic_on_oops",
  "kernel.keys.root_maxkeys",
  "kernel.keys.root_maxbytes",
];
const FIXED_PATHS = [
  "/var/lib/kubelet",
  "/var/log/pods",
  "/var/log/containers",
  "/run/containerd",
  "/var/lib/cni",
];
const LOCK = "/run/lock/buoy-kube-node.pid";

export interface KubeNodeOptions {
  /** The kubelet's CNI directories: containerd execs the plugins from here. */
  cniBinDir: string;
  cniConfDir: string;
  /** The node's address (InternalIP), on a veth inside the namespace. */
  nodeIp?: string;
  /** More kube-apiserver flags. */
  apiserverArgs?: string[];
  /** Mount service-account tokens in pods (the ServiceAccount admission plugin). */
  serviceAccountAdmission?: boolean;
  /** Users with a static token each (startKubeApiserver's `users`). */
  users?: { name: string; groups?: string[] }[];
  timeoutMs?: number;
}

export interface KubeNode {
  kube: KubeApiserver;
  nodeName: string;
  nodeIp: string;
  dir: string;
  /** kubectl as the admin; `ok`, the output, and stdout alone. */
  kubectl(...args: string[]): { ok: boolean; out: string; stdout: string };
  /** kubectl with `input` on stdin (`kubectl apply -f -`). */
  kubectlIn(input: string, ...args: string[]): { ok: boolean; out: string; stdout: string };
  /** kubectl with another kubeconfig (a tenant's), `input` on stdin when given. */
  kubectlAs(
    kubeconfig: string,
    input: string | undefined,
    ...args: string[]
  ): { ok: boolean; out: string; stdout: string };
  /** ctr in containerd's k8s.io namespace. */
  ctr(...args: string[]): { ok: boolean; out: string };
  /** Resolves when the node is Ready (it is not while its CNI conf dir is empty). */
  waitReady(timeoutMs?: number): Promise<void>;
  logs: { containerd: string; kubelet: string };
  stop(): Promise<void>;
}

function run(argv: string[], input?: string) {
  const result = spawnSync(argv[0] as string, argv.slice(1), {
    encoding: "utf8",
    ...(input === undefined ? {} : { input }),
    maxBuffer: 64 << 20,
  });
  return {
    ok: result.status === 0,
    out: `${result.stdout ?? ""}${result.stderr ?? ""}`.trim(),
    stdout: (result.stdout ?? "").trim(),
  };
}

function must(argv: string[]): string {
  const result = run(argv);
  if (!result.ok) throw new Error(`${argv.join(" ")}: ${result.out}`);
  return result.stdout;
}

/**
 * The host's state the kubelet and containerd change, as a file
 * scripts/kube/restore-host-state.sh restores from (stop() runs it, and
 * netns-run.sh's cleanup if the test died).
 */
function recordHostState(file: string): void {
  const lines: string[] = [];
  for (const name of TUNED_SYSCTLS) lines.push(`sysctl ${name} ${must(["sysctl", "-n", name])}`);
  for (const path of FIXED_PATHS) if (!existsSync(path)) lines.push(`created ${path}`);
  for (const entry of readdirSync("/sys/fs/cgroup", { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const path = join("/sys/fs/cgroup", entry.name, "k8s.io");
    if (!existsSync(path)) lines.push(`cgroup ${path}`);
  }
  if (!existsSync(join("/sys/fs/cgroup", "k8s.io")) && existsSync("/sys/fs/cgroup/cgroup.procs")) {
    lines.push("cgroup /sys/fs/cgroup/k8s.io");
  }
  for (const name of existsSync("/run/netns") ? readdirSync("/run/netns") : []) {
    if (name.startsWith("cni-")) lines.push(`netns ${name}`);
  }
  writeFileSync(file, lines.join("\n") + "\n");
}

function restoreHostState(file: string): void {
  run([join(ROOT, "scripts/kube/restore-host-state.sh"), file]);
}

/** Takes the machine's node lock (a PID file: the kubelet's fixed paths are shared). */
function takeLock(): void {
  if (existsSync(LOCK)) {
    const holder = Number(readFileSync(LOCK, "utf8").trim());
    if (holder > 0 && run(["kill", "-0", String(holder)]).ok) {
      throw new Error(`another kube node test (PID ${holder}) runs on this machine (${LOCK})`);
    }
  }
  writeFileSync(LOCK, `${process.pid}\n`);
}

/** An image of one static binary (and busybox's applets for the test image). */
function makeImage(dir: string, name: string, binary: string, dest: string, cmd: string[]) {
  const empty = join(dir, "empty.tar");
  if (!existsSync(empty)) must(["tar", "-cf", empty, "-T", "/dev/null"]);
  const out = join(dir, `${name.replace(/[/:]/g, "_")}.tar`);
  must([
    "python3",
    join(ROOT, "scripts/image/oci-pack.py"),
    "--base",
    empty,
    "--add",
    `${binary}:${dest}:755`,
    ...(dest === "/bin/busybox" ? ["--link", "bin/sh:/bin/busybox"] : []),
    "--name",
    name,
    "--cmd",
    JSON.stringify(cmd),
    "--out",
    out,
  ]);
  return out;
}

async function until(what: string, check: () => boolean, timeoutMs: number, log?: string) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (check()) return;
    await sleep(250);
  }
  const tail =
    log && existsSync(log) ? readFileSync(log, "utf8").split("\n").slice(-20).join("\n") : "";
  throw new Error(`timed out waiting for ${what}${tail ? `; last lines of ${log}:\n${tail}` : ""}`);
}

export async function startKubeNode(options: KubeNodeOptions): Promise<KubeNode> {
  const prefix = runPrefix();
  const timeoutMs = options.timeoutMs ?? 120_000;
  const nodeIp = options.nodeIp ?? "10.250.0.1";
  if (!existsSync("/sys/fs/cgroup") || readdirSync("/sys/fs/cgroup").length === 0) {
    throw new Error(
      "no cgroups under /sys/fs/cgroup: run with BUOY_NETNS_MOUNTS=host scripts/netns-run.sh",
    );
  }
  for (const binary of ["kubelet", "kube-scheduler", "kube-apiserver", "kube-controller-manager"]) {
    if (!existsSync(join(KUBE_BIN, binary))) {
      throw new Error(
        `${join(KUBE_BIN, binary)} missing: run KCM=1 KUBELET=1 scripts/kube/build.sh`,
      );
    }
  }
  takeLock();
  const dir = join(tmpdir(), `${prefix}-node`);
  mkdirSync(dir, { recursive: true });
  const hostState = join(tmpdir(), `${prefix}-node-host-state`);
  recordHostState(hostState);

  const children: ChildProcess[] = [];
  let kube: KubeApiserver | undefined;
  const link = `bn${prefix.split("-").at(-1) ?? ""}`.slice(0, 12);
  const stop = async () => {
    for (const child of children.splice(0).reverse()) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    }
    await kube?.stop();
    // The kubelet binds its root dir onto itself (and mounts volumes under it).
    const mounts = run(["findmnt", "-rn", "-o", "TARGET"]).stdout.split("\n");
    for (const target of mounts
      .filter((m) => m.startsWith(dir))
      .sort()
      .reverse()) {
      run(["umount", "-l", target]);
    }
    // Pods still running (their processes), their network namespaces, the
    // sysctls and paths: as they were.
    restoreHostState(hostState);
    run(["ip", "link", "delete", link]);
    run(["rm", "-f", LOCK]);
  };

  try {
    // The node's address: kubelet wants one on a non-loopback interface.
    run(["ip", "link", "delete", link]); // an earlier node of this run (another test file)
    must(["ip", "link", "add", link, "type", "veth", "peer", "name", `${link}p`]);
    must(["ip", "address", "add", `${nodeIp}/32`, "dev", link]);
    must(["ip", "link", "set", link, "up"]);
    must(["ip", "link", "set", `${link}p`, "up"]);

    const kubeDir = join(dir, "kube");
    kube = await startKubeApiserver({
      dir: kubeDir,
      controllerManager: true,
      ...(options.serviceAccountAdmission ? { serviceAccountAdmission: true } : {}),
      ...(options.users ? { users: options.users } : {}),
      apiserverArgs: [
        `--kubelet-client-certificate=${join(kubeDir, "pki", "admin.crt")}`,
        `--kubelet-client-key=${join(kubeDir, "pki", "admin.key")}`,
        "--kubelet-preferred-address-types=InternalIP,Hostname",
        ...(options.apiserverArgs ?? []),
      ],
    });

    // containerd, with the kubelet's CNI dirs and a sandbox image of our own.
    const containerdDir = join(dir, "containerd");
    mkdirSync(containerdDir, { recursive: true });
    const socket = join(containerdDir, "containerd.sock");
    const runc = must(["sh", "-c", "command -v runc"]);
    writeFileSync(
      join(containerdDir, "config.toml"),
      `version = 2
root = "${join(containerdDir, "root")}"
state = "${join(containerdDir, "state")}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "${socket}"
[ttrpc]
  address = "${socket}.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "${join(containerdDir, "opt")}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "${runc}"
        Root = "${join(containerdDir, "runc")}"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${options.cniBinDir}"
    conf_dir = "${options.cniConfDir}"
    max_conf_num = 1
`,
    );
    // containerd hands its own environment to every CNI plugin: a clean one.
    const cleanEnv = {
      PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      HOME: "/root",
      LANG: "C.UTF-8",
    };
    const containerdLog = join(dir, "containerd.log");
    const spawnLogged = (argv: string[], logFile: string) => {
      const fd = openSync(logFile, "a");
      try {
        const child = spawn(argv[0] as string, argv.slice(1), {
          env: cleanEnv,
          stdio: ["ignore", fd, fd],
          cwd: "/",
        });
        children.push(child);
        return child;
      } finally {
        closeSync(fd);
      }
    };
    spawnLogged(["containerd", "--config", join(containerdDir, "config.toml")], containerdLog);
    const ctr = (...args: string[]) => run(["ctr", "-a", socket, "-n", "k8s.io", ...args]);
    await until(
      "containerd",
      () => run(["ctr", "-a", socket, "version"]).ok,
      timeoutMs,
      containerdLog,
    );

    const images = join(dir, "images");
    mkdirSync(images, { recursive: true });
    const catatonit = must(["sh", "-c", "command -v catatonit"]);
    const busybox = must(["sh", "-c", "command -v busybox"]);
    for (const archive of [
      makeImage(images, PAUSE_IMAGE, catatonit, "/catatonit", ["/catatonit", "-P"]),
      makeImage(images, BUSYBOX_IMAGE, busybox, "/bin/busybox", ["/bin/busybox", "sleep", "3600"]),
    ]) {
      const imported = ctr("images", "import", "--snapshotter", "native", archive);
      if (!imported.ok) throw new Error(`ctr import ${archive}: ${imported.out}`);
    }

    // The scheduler: DaemonSet pods are placed by it (pods with spec.nodeName are not).
    const schedulerLog = join(dir, "kube-scheduler.log");
    const schedulerPort = must([
      "python3",
      "-c",
      "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])",
    ]);
    spawnLogged(
      [
        join(KUBE_BIN, "kube-scheduler"),
        `--kubeconfig=${kube.kubeconfig}`,
        `--authentication-kubeconfig=${kube.kubeconfig}`,
        `--authorization-kubeconfig=${kube.kubeconfig}`,
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        `--secure-port=${schedulerPort}`,
        "--port=0",
        "--logtostderr=true",
        "--v=1",
      ],
      schedulerLog,
    );

    // The kubelet, as the admin (no TLS bootstrap), on the node's address.
    const kubeletDir = join(dir, "kubelet");
    mkdirSync(join(kubeletDir, "volume-plugins"), { recursive: true });
    const kubeletLog = join(dir, "kubelet.log");
    const maxOpenFiles = must(["sh", "-c", "ulimit -Hn"]).replace("unlimited", "1000000");
    spawnLogged(
      [
        join(KUBE_BIN, "kubelet"),
        `--kubeconfig=${kube.kubeconfig}`,
        "--register-node=true",
        `--hostname-override=${NODE_NAME}`,
        `--node-ip=${nodeIp}`,
        "--container-runtime=remote",
        `--container-runtime-endpoint=unix://${socket}`,
        `--image-service-endpoint=unix://${socket}`,
        "--runtime-request-timeout=5m",
        `--pod-infra-container-image=${PAUSE_IMAGE}`,
        "--cgroup-driver=cgroupfs",
        "--cgroups-per-qos=false",
        "--enforce-node-allocatable=",
        "--fail-swap-on=false",
        `--root-dir=${kubeletDir}`,
        `--cert-dir=${join(kubeletDir, "pki")}`,
        `--volume-plugin-dir=${join(kubeletDir, "volume-plugins")}`,
        "--address=0.0.0.0",
        "--port=10250",
        "--read-only-port=0",
        "--healthz-bind-address=127.0.0.1",
        "--healthz-port=10248",
        "--anonymous-auth=false",
        `--client-ca-file=${join(kubeDir, "pki", "ca.crt")}`,
        "--authorization-mode=AlwaysAllow",
        "--oom-score-adj=0",
        `--max-open-files=${maxOpenFiles}`,
        "--node-status-update-frequency=2s",
        "--logtostderr=true",
        "--v=2",
      ],
      kubeletLog,
    );
    const kubectlBase = [join(KUBE_BIN, "kubectl"), "--kubeconfig", kube.kubeconfig];
    const kubectl = (...args: string[]) => run([...kubectlBase, ...args]);
    const kubectlIn = (input: string, ...args: string[]) => run([...kubectlBase, ...args], input);
    const kubectlAs = (kubeconfig: string, input: string | undefined, ...args: string[]) =>
      run([join(KUBE_BIN, "kubectl"), "--kubeconfig", kubeconfig, ...args], input);
    const waitReady = (ms = timeoutMs) =>
      until(
        `node ${NODE_NAME} Ready`,
        () =>
          kubectl(
            "get",
            "node",
            NODE_NAME,
            "-o",
            'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
          ).stdout === "True",
        ms,
        kubeletLog,
      );
    // Registered: the kubelet has its Node object (Ready comes with a CNI config).
    await until(
      `node ${NODE_NAME} registered`,
      () => kubectl("get", "node", NODE_NAME).ok,
      timeoutMs,
      kubeletLog,
    );
    return {
      waitReady,
      kube,
      nodeName: NODE_NAME,
      nodeIp,
      dir,
      kubectl,
      kubectlIn,
      kubectlAs,
      ctr,
      logs: { containerd: containerdLog, kubelet: kubeletLog },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** A pod of the test image on the node, sleeping; `annotations` and `labels` as given. */
export function busyboxPod(
  name: string,
  options: {
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
    namespace?: string;
  } = {},
): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: options.namespace ?? "default",
      ...(options.annotations ? { annotations: options.annotations } : {}),
      ...(options.labels ? { labels: options.labels } : {}),
    },
    spec: {
      nodeName: NODE_NAME,
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
  };
}

/** The node tests' pools: pod addresses, and a disabled pool for floating IPs. */
export const TEST_POOLS = `apiVersion: buoy.dev/v1
kind: IPPool
metadata: { name: pods }
spec: { cidr: 10.244.0.0/16 }
---
apiVersion: buoy.dev/v1
kind: IPPool
metadata: { name: floating }
spec: { cidr: 10.96.0.0/24, disabled: true }
`;

/**
 * Points buoy's pods at the API server directly, as Calico's manifests allow
 * where no kube-proxy runs (the ConfigMap buoy's DaemonSet and webhook read).
 */
export function pointBuoyAtApiServer(node: KubeNode): { ok: boolean; out: string } {
  const server = new URL(node.kube.server);
  return node.kubectlIn(
    JSON.stringify({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "kubernetes-services-endpoint", namespace: "kube-system" },
      data: { KUBERNETES_SERVICE_HOST: server.hostname, KUBERNETES_SERVICE_PORT: server.port },
    }),
    "apply",
    "-f",
    "-",
  );
}

/** The network namespace containerd made for a pod (/run/netns/cni-*), found by the pod's IP. */
export function podNetns(node: KubeNode, pod: string, namespace = "default"): string {
  const ip = node.kubectl(
    "get",
    "pod",
    "-n",
    namespace,
    pod,
    "-o",
    "jsonpath={.status.podIP}",
  ).stdout;
  const names = must(["ip", "netns", "list"])
    .split("\n")
    .map((line) => line.split(" ")[0] ?? "")
    .filter((name) => name.startsWith("cni-"));
  const found = names.find((name) =>
    must(["ip", "-n", name, "-4", "-o", "address", "show"]).includes(` inet ${ip}/`),
  );
  if (!found) throw new Error(`no network namespace holds ${namespace}/${pod}'s address ${ip}`);
  return found;
}
