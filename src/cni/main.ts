// The CNI executable: compiled by `bun build --compile` into dist/cni/buoy,
// installed also as calico, calico-ipam and buoy-ipam. No Node.js needed on
// the host; nothing here runs before main(). No top-level await: the executable
// is compiled to bytecode, which needs CommonJS.
import { readFileSync, writeSync } from "node:fs";
import { basename } from "node:path";
import { hostname } from "node:os";
import { LinuxPodNetwork } from "../dataplane/shell/linux-pod-network.js";
import { execPlugin } from "./delegate.js";
import { openDatastore } from "./open-datastore.js";
import { runCni, type CniRole } from "./plugin.js";

export async function main(): Promise<void> {
  const name = basename(process.argv0);
  const role: CniRole =
    name.endsWith("-ipam") || process.env.BUOY_CNI_ROLE === "ipam" ? "ipam" : "plugin";
  const stdin = process.env.CNI_COMMAND === "VERSION" ? readStdinIfAny() : readFileSync(0, "utf8");
  const response = await runCni(
    { role, env: process.env, stdin },
    {
      openDatastore,
      podNetwork: new LinuxPodNetwork(),
      execPlugin,
      hostname,
      now: () => new Date(),
    },
  );
  // writeSync, not process.stdout.write: bun builds its stream machinery on
  // first use, 6-9 ms of every call (a one-off profile, never committed; with
  // writeSync bench/cni.ts's VERSION p50 fell from ~21 ms to ~10 ms).
  writeAll(1, response.stdout);
  process.exitCode = response.exitCode;
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
