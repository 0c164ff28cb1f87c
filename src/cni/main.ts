// The CNI executable: compiled by `bun build --compile` into dist/cni/buoy,
// installed also as calico, calico-ipam and buoy-ipam. No Node.js needed on
// the host; nothing here runs before main(). No top-level await: the executable
// is compiled to bytecode, which needs CommonJS.
//
// When the conflist names the resident agent's socket (`agent_socket`), the
// request goes there first and the plugin's modules are never loaded: the
// call costs little more than bun's start (ADR 0013). When no agent takes
// it, the executable does the work itself.
import { readFileSync, readlinkSync, writeSync } from "node:fs";
import { agentSocketOf } from "./agent-wire.js";
import { AgentLostError, forwardToAgent } from "./forward.js";
import type { CniRequest, CniResponse, CniRole } from "./plugin.js";
import { CniCode } from "./errors.js";
import { LATEST_VERSION, configVersion, isSupportedVersion } from "./versions.js";

export async function main(): Promise<void> {
  // Plugins are called with no arguments (CNI spec); `serve` is the agent's.
  if (process.argv[2] === "serve") {
    process.exitCode = await (await import("./serve-main.js")).serveMain(process.argv.slice(3));
    return;
  }
  const name = process.argv0.slice(process.argv0.lastIndexOf("/") + 1);
  const role: CniRole =
    name.endsWith("-ipam") || process.env.BUOY_CNI_ROLE === "ipam" ? "ipam" : "plugin";
  const stdin = process.env.CNI_COMMAND === "VERSION" ? readStdinIfAny() : readFileSync(0, "utf8");
  const request: CniRequest = { role, env: process.env, stdin };
  const response =
    (await viaAgent(request)) ?? (await (await import("./run-locally.js")).runLocally(request));
  // writeSync, not process.stdout.write: bun builds its stream machinery on
  // first use, 6-9 ms of every call (a one-off profile, never committed; with
  // writeSync bench/cni.ts's VERSION p50 fell from ~21 ms to ~10 ms).
  writeAll(1, response.stdout);
  process.exitCode = response.exitCode;
}

/** The agent's answer, or undefined when the executable must do the work. */
async function viaAgent(request: CniRequest): Promise<CniResponse | undefined> {
  if (request.env.CNI_COMMAND === "VERSION") return undefined;
  const path = agentSocketOf(request.stdin);
  if (path === undefined) return undefined;
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(request.env)) if (value !== undefined) env[key] = value;
  try {
    return await forwardToAgent(path, {
      role: request.role,
      env,
      stdin: request.stdin,
      netns: readlinkSync("/proc/self/ns/net"),
      // uname's nodename, as node:os would give it (not loaded for this alone).
      hostname: readFileSync("/proc/sys/kernel/hostname", "utf8").trim(),
    });
  } catch (error) {
    if (!(error instanceof AgentLostError)) throw error;
    // Part of the work may be done: the runtime's retry (after its DEL) sorts it out.
    const version = configVersion(request.stdin);
    const body = {
      cniVersion: version && isSupportedVersion(version) ? version : LATEST_VERSION,
      code: CniCode.tryAgainLater,
      msg: error.message,
    };
    return { stdout: JSON.stringify(body) + "\n", exitCode: 1 };
  }
}

function writeAll(fd: number, text: string): void {
  const bytes = Buffer.from(text, "utf8");
  for (let offset = 0; offset < bytes.length;) {
    try {
      offset += writeSync(fd, bytes, offset);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EAGAIN") throw error;
    }
  }
}

function readStdinIfAny(): string {
  try {
    return readFileSync(0, "utf8");
  } catch {
    return "";
  }
}

void main();
