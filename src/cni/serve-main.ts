// `buoy serve --socket PATH`: the CNI executable as a resident server
// (ADR 0013), started and watched by `buoy agent --cni-socket`. It runs
// under bun, as the executable does, because bun starts the `ip` processes
// and makes the datastore requests of an ADD in about half Node's time
// (measured: spawn 1.1 against 2.0-2.6 ms, an etcd read 0.3 against 0.9 ms).
// It stops on SIGTERM, after the requests in flight, and with
// `--with-parent` also when its stdin closes (the agent that started it died).
import { existsSync, readlinkSync } from "node:fs";
import { LinuxPodNetwork } from "../dataplane/shell/linux-pod-network.js";
import { createStreamLogger, parseLogLevel } from "../log/logger.js";
import { execPlugin } from "./delegate.js";
import { residentDatastores } from "./open-datastore.js";
import { serverAnswers } from "./forward.js";
import { serveCni } from "./serve.js";
import { listenCniSocket } from "./socket-server.js";

export const SERVE_USAGE =
  "usage: buoy serve --socket PATH [--log-level LEVEL] [--with-parent]\n" +
  "       buoy serve --socket PATH --probe   (exit 0 when the server there answers within 2 s)";

const PROBE_TIMEOUT_MS = 2000;

/** Runs until told to stop; resolves with the process's exit code. */
export async function serveMain(args: readonly string[]): Promise<number> {
  const options = parseServeArgs(args);
  if ("problem" in options) {
    process.stderr.write(`buoy serve: ${options.problem}\n${SERVE_USAGE}\n`);
    return 2;
  }
  if (options.probe) {
    if (await serverAnswers(options.socket, PROBE_TIMEOUT_MS)) return 0;
    process.stderr.write(
      `buoy serve: no answer at ${options.socket} within ${PROBE_TIMEOUT_MS} ms\n`,
    );
    return 1;
  }
  const logger = createStreamLogger(
    (line) => process.stdout.write(line),
    parseLogLevel(options.logLevel),
  );
  const view = { netns: readlinkSync("/proc/self/ns/net"), exists: existsSync };
  // Kept across requests, with the watch cache a served ADD reads (ADR 0013).
  const datastores = residentDatastores(logger);
  const deps = {
    openDatastore: datastores.open,
    podNetwork: new LinuxPodNetwork(),
    execPlugin,
    now: () => new Date(),
  };
  let server;
  try {
    server = await listenCniSocket(
      options.socket,
      (request) => serveCni(request, view, deps),
      logger,
    );
  } catch (error) {
    datastores.stop();
    process.stderr.write(`buoy serve: ${(error as Error).message}\n`);
    return 1;
  }
  await new Promise<void>((resolve) => {
    process.once("SIGTERM", () => resolve());
    process.once("SIGINT", () => resolve());
    if (options.withParent) {
      process.stdin.on("end", () => resolve());
      process.stdin.on("close", () => resolve());
      process.stdin.resume();
    }
  });
  // Reading stdin keeps the process alive: let go of it.
  if (options.withParent) process.stdin.destroy();
  await server.close();
  datastores.stop();
  logger.log("info", "cni.server", { path: options.socket, state: "stopped" });
  return 0;
}

export function parseServeArgs(
  args: readonly string[],
): { socket: string; logLevel: string; withParent: boolean; probe: boolean } | { problem: string } {
  let socket: string | undefined;
  let logLevel = "info";
  let withParent = false;
  let probe = false;
  // --flag value and --flag=value alike.
  const words = args.flatMap((arg) => {
    const equals = arg.indexOf("=");
    return arg.startsWith("--") && equals > 0
      ? [arg.slice(0, equals), arg.slice(equals + 1)]
      : [arg];
  });
  for (let i = 0; i < words.length; i += 2) {
    const [flag, value] = [words[i], words[i + 1]];
    if (flag === "--with-parent" || flag === "--probe") {
      if (flag === "--probe") probe = true;
      else withParent = true;
      i -= 1;
      continue;
    }
    if (value === undefined) return { problem: `${flag} needs a value` };
    if (flag === "--socket") socket = value;
    else if (flag === "--log-level") logLevel = value;
    else return { problem: `unknown argument ${flag}` };
  }
  if (socket === undefined) return { problem: "--socket is required" };
  if (!socket.startsWith("/"))
    return { problem: `--socket must be an absolute path, got ${socket}` };
  return { socket, logLevel, withParent, probe };
}
