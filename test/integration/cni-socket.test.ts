// ADR 0013 on the real kernel and etcd: the CNI executable hands its work to
// the resident agent (dist/buoy agent --cni-socket) over a unix socket, falls
// back to doing it itself when no agent takes it, and nobody but root can
// talk to the agent.
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  addNetns,
  createPool,
  deleteNetns,
  etcdPluginConf,
  hostInterfaces,
  must,
  ROOT,
  runPlugin,
  runPrefix,
  sh,
  sleep,
  startAgent,
  startEtcd,
  type AgentProcess,
  type Etcd,
} from "../support/harness.js";

const prefix = runPrefix();
const socketDir = `/run/${prefix}-cni`;
const socket = `${socketDir}/agent.sock`;
const logFile = `/tmp/${prefix}-cni-socket.log`;
const namespaces: string[] = [];
let etcd: Etcd;
let agent: AgentProcess;

function conf(extra: Record<string, unknown> = {}) {
  return etcdPluginConf(etcd, {
    agent_socket: socket,
    log_file_path: logFile,
    feature_control: { floating_ips: true },
    ...extra,
  });
}

function pod(name: string, annotation?: string) {
  const ns = `${prefix}-${name}`;
  namespaces.push(ns);
  return {
    ns,
    containerID: `ctr-${name}`,
    netns: addNetns(ns),
    pod: { namespace: "default", name },
    annotation,
  };
}

type Pod = ReturnType<typeof pod>;

function call(command: "ADD" | "DEL", target: Pod, extra: Record<string, unknown> = {}) {
  const runtime = target.annotation
    ? {
        runtimeConfig: {
          "io.kubernetes.cri.pod-annotations": {
            "cni.projectcalico.org/floatingIPs": target.annotation,
          },
        },
      }
    : {};
  return runPlugin({
    command,
    conf: conf({ ...runtime, ...extra }),
    containerID: target.containerID,
    netns: target.netns,
    pod: target.pod,
  });
}

/** The CNI log's lines for one container, parsed. */
function logLines(containerID: string): Record<string, unknown>[] {
  if (!existsSync(logFile)) return [];
  return readFileSync(logFile, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((line) => line.containerID === containerID);
}

function servedByAgent(containerID: string, command: string): boolean {
  return logLines(containerID).some((line) => line.command === command && line.via === "agent");
}

function podAddresses(ns: string): string[] {
  const links = JSON.parse(must(["ip", "-n", ns, "-j", "address", "show", "eth0"])) as {
    addr_info: { local: string; scope: string }[];
  }[];
  return links.flatMap((link) =>
    link.addr_info.filter((a) => a.scope === "global").map((a) => a.local),
  );
}

/** Sends raw bytes to the agent's socket and returns what it answered. */
function rawExchange(bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const client = connect(socket);
    let answer = "";
    client.on("data", (chunk) => {
      answer += chunk.toString();
      if (answer.includes("\n")) {
        client.destroy();
        resolve(answer);
      }
    });
    // The agent may stop reading an oversized request and answer before it is all sent.
    client.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code !== "EPIPE" && error.code !== "ECONNRESET") reject(error);
    });
    client.on("close", () => resolve(answer));
    client.end(bytes);
  });
}

beforeAll(async () => {
  etcd = await startEtcd();
  await createPool(etcd.store, "pods", { cidr: "10.245.0.0/16" });
  await createPool(etcd.store, "floating", { cidr: "10.97.0.0/24", disabled: true });
  agent = await startAgent(etcd, [
    "--node",
    "node-1",
    "--floating-ips",
    "on",
    "--cni-socket",
    socket,
    "--log-level",
    "debug",
  ]);
});

afterAll(async () => {
  await agent?.stop();
  for (const ns of namespaces) deleteNetns(ns);
  await etcd?.stop();
  rmSync(socketDir, { recursive: true, force: true });
  rmSync(logFile, { force: true });
});

describe("the CNI executable and the resident agent", () => {
  it("ADD and DEL are done by the agent, with the same result as the executable's own", async () => {
    const viaAgent = pod("sa1", '["10.97.0.10"]');
    const added = await call("ADD", viaAgent);
    expect(added.exitCode, added.raw).toBe(0);
    expect(servedByAgent(viaAgent.containerID, "ADD")).toBe(true);
    expect(agent.log.join("")).toContain('"event":"cni.server"');

    const local = pod("sa2", '["10.97.0.11"]');
    const addedLocally = await call("ADD", local, { agent_socket: "" });
    expect(addedLocally.exitCode, addedLocally.raw).toBe(0);
    expect(servedByAgent(local.containerID, "ADD")).toBe(false);

    // Same shape; only the addresses and the interface's MAC differ.
    const shape = (output: Record<string, unknown>) =>
      JSON.stringify(output)
        .replace(/10\.245\.\d+\.\d+/g, "IP")
        .replace(/"mac":"[^"]*"/g, '"mac":"M"')
        .replace(/"name":"cali[^"]*"/g, '"name":"H"')
        .replace(/sa[12]/g, "POD");
    expect(shape(added.output)).toBe(shape(addedLocally.output));
    expect(podAddresses(viaAgent.ns)).toHaveLength(1);
    expect((await etcd.store.getClaim("10.97.0.10"))?.value.pod).toBe("sa1");

    const deleted = await call("DEL", viaAgent);
    expect(deleted.exitCode, deleted.raw).toBe(0);
    expect(servedByAgent(viaAgent.containerID, "DEL")).toBe(true);
    expect(await etcd.store.getClaim("10.97.0.10")).toBeUndefined();
    expect(sh(["ip", "-n", viaAgent.ns, "link", "show", "eth0"]).status).not.toBe(0);
    expect((await call("DEL", local)).exitCode).toBe(0);
  });

  it("a refused ADD through the agent gets the executable's exact error and leaves nothing", async () => {
    const refused = pod("sa3", '["192.0.2.1"]');
    const before = hostInterfaces();
    const answer = await call("ADD", refused);
    expect(answer.exitCode).toBe(1);
    expect(servedByAgent(refused.containerID, "ADD")).toBe(true);
    const alone = pod("sa4", '["192.0.2.1"]');
    const local = await call("ADD", alone, { agent_socket: "" });
    expect(answer.output.code).toBe(local.output.code);
    expect(answer.output.msg).toBe(local.output.msg);
    expect(hostInterfaces()).toEqual(before);
    expect(await etcd.store.getClaim("192.0.2.1")).toBeUndefined();
  });

  it("ten ADDs at once are all served, each with its own address", async () => {
    const pods = Array.from({ length: 10 }, (_, i) => pod(`sb${i}`));
    const answers = await Promise.all(pods.map((target) => call("ADD", target)));
    for (const answer of answers) expect(answer.exitCode, answer.raw).toBe(0);
    expect(pods.every((target) => servedByAgent(target.containerID, "ADD"))).toBe(true);
    const addresses = pods.flatMap((target) => podAddresses(target.ns));
    expect(new Set(addresses).size).toBe(10);
    const deletes = await Promise.all(pods.map((target) => call("DEL", target)));
    for (const answer of deletes) expect(answer.exitCode, answer.raw).toBe(0);
  });

  it("with no agent listening, the executable does the work itself", async () => {
    const target = pod("sc1");
    const answer = await call("ADD", target, { agent_socket: `${socketDir}/nobody.sock` });
    expect(answer.exitCode, answer.raw).toBe(0);
    expect(servedByAgent(target.containerID, "ADD")).toBe(false);
    expect(podAddresses(target.ns)).toHaveLength(1);
    expect((await call("DEL", target)).exitCode).toBe(0);
  });

  it("a DEL whose namespace is gone is left to the executable, which finishes it", async () => {
    const target = pod("sc2", '["10.97.0.12"]');
    expect((await call("ADD", target)).exitCode).toBe(0);
    deleteNetns(target.ns);
    const answer = await call("DEL", target);
    expect(answer.exitCode, answer.raw).toBe(0);
    expect(servedByAgent(target.containerID, "DEL")).toBe(false);
    expect(await etcd.store.getClaim("10.97.0.12")).toBeUndefined();
  });

  it("a non-root user on the node cannot reach the agent, which keeps serving", () => {
    const script = `require("net").connect(${JSON.stringify(socket)}).on("error", (e) => { console.log(e.code); process.exit(0); }).on("connect", () => { console.log("CONNECTED"); process.exit(0); });`;
    const attempt = spawnSync(
      "setpriv",
      ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, "-e", script],
      { encoding: "utf8" },
    );
    expect(attempt.stdout.trim()).toBe("EACCES");
  });

  it("buoy serve --probe says whether a server answers", () => {
    const probe = (path: string) =>
      sh([`${ROOT}/dist/cni/buoy`, "serve", `--socket=${path}`, "--probe"]);
    expect(probe(socket).status).toBe(0);
    const none = probe(`${socketDir}/nobody.sock`);
    expect(none.status).toBe(1);
    expect(none.stderr).toContain(
      `buoy serve: no answer at ${socketDir}/nobody.sock within 2000 ms`,
    );
  });

  it("garbage, an unknown wire version and an oversized request get a fallback and do nothing", async () => {
    const before = hostInterfaces();
    expect(JSON.parse(await rawExchange("not json\n"))).toEqual({
      kind: "fallback",
      reason: "the request is not JSON",
    });
    const future = JSON.parse(await rawExchange(JSON.stringify({ v: 2 }) + "\n")) as {
      kind: string;
    };
    expect(future.kind).toBe("fallback");
    const huge = await rawExchange("x".repeat(5 * 1024 * 1024));
    expect(JSON.parse(huge)).toEqual({ kind: "fallback", reason: "the request is too long" });
    expect(hostInterfaces()).toEqual(before);
    const after = pod("sd1");
    const answer = await call("ADD", after);
    expect(answer.exitCode, answer.raw).toBe(0);
    expect(servedByAgent(after.containerID, "ADD")).toBe(true);
    expect((await call("DEL", after)).exitCode).toBe(0);
  });

  it("an agent refuses to start on a socket directory others can enter", async () => {
    const open = `/run/${prefix}-cni-open`;
    mkdirSync(open, { recursive: true });
    chmodSync(open, 0o755);
    try {
      const run = sh([
        "node",
        `${ROOT}/dist/buoy`,
        "agent",
        "--node",
        "node-1",
        "--listen",
        "127.0.0.1:0",
        "--cni-socket",
        `${open}/agent.sock`,
      ]);
      expect(run.status).not.toBe(0);
      expect(run.stderr + run.stdout).toContain(
        `--cni-socket: ${open} must belong to uid 0 and be closed to others (it is uid 0, mode 755)`,
      );
      expect(existsSync(`${open}/agent.sock`)).toBe(false);
    } finally {
      rmSync(open, { recursive: true, force: true });
    }
  });
});

/** The agent's `buoy serve` child, by its parent's PID. */
function serverPid(parent: number): number | undefined {
  const out = sh(["ps", "-o", "pid=,args=", "--ppid", String(parent)]).stdout;
  const line = out.split("\n").find((entry) => entry.includes(" serve --socket "));
  return line ? Number(line.trim().split(/\s+/)[0]) : undefined;
}

async function until(check: () => boolean, ms = 5000): Promise<boolean> {
  for (const start = Date.now(); Date.now() - start < ms; await sleep(50)) if (check()) return true;
  return check();
}

describe("the server process", () => {
  it("is restarted when it dies, and ADDs go on meanwhile", async () => {
    const first = serverPid(agent.child.pid ?? -1);
    expect(first).toBeDefined();
    process.kill(first as number, "SIGKILL");
    const meanwhile = pod("se1");
    const answer = await call("ADD", meanwhile);
    expect(answer.exitCode, answer.raw).toBe(0);
    expect(
      await until(() => {
        const next = serverPid(agent.child.pid ?? -1);
        return next !== undefined && next !== first;
      }),
    ).toBe(true);
    expect(agent.log.join("")).toContain('"state":"exited"');
    expect(await until(() => existsSync(socket))).toBe(true);
    const after = pod("se2");
    const served = await call("ADD", after);
    expect(served.exitCode, served.raw).toBe(0);
    expect(servedByAgent(after.containerID, "ADD")).toBe(true);
    for (const target of [meanwhile, after]) expect((await call("DEL", target)).exitCode).toBe(0);
  });

  it("does not outlive an agent killed outright", async () => {
    const other = await startAgent(etcd, [
      "--node",
      "node-2",
      "--cni-socket",
      `${socketDir}/other.sock`,
    ]);
    const child = serverPid(other.child.pid ?? -1);
    expect(child).toBeDefined();
    await other.stop("SIGKILL");
    expect(await until(() => sh(["kill", "-0", String(child)]).status !== 0)).toBe(true);
  });
});

// The socket file is the agent's: it is gone once the agent stops.
describe("stopping", () => {
  it("removes the socket", async () => {
    expect(existsSync(socket)).toBe(true);
    await agent.stop();
    expect(existsSync(socket)).toBe(false);
  });
});
