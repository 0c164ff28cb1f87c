// The BIRD side of fencing a dead agent (ADR 0009): runs next to BIRD, holds
// a unix-socket connection from the node's agent, and the moment the last
// one closes (a SIGKILLed process's sockets are closed by the kernel at
// once) loads the config without floating IPs that the agent wrote beside
// its own (`<config>.fenced`). The agent, back, reconfigures with its own.
import { existsSync } from "node:fs";
import { chmod, rm } from "node:fs/promises";
import { createServer, type Socket } from "node:net";
import { runCommand } from "../../exec/command.js";
import type { Logger } from "../../log/logger.js";

export interface BirdWatchdogOptions {
  /** Unix socket the agent connects to. */
  listenPath: string;
  /** BIRD's control socket. */
  birdSocket: string;
  /** The agent's BIRD config; its floating-less twin is `<configPath>.fenced`. */
  configPath: string;
  birdc?: string;
  logger: Logger;
  /** Called once listening. */
  onListening?: () => void;
}

export async function runBirdWatchdog(options: BirdWatchdogOptions, signal: AbortSignal) {
  const { logger } = options;
  const birdc = options.birdc ?? "birdc";
  const fencedPath = `${options.configPath}.fenced`;
  if (/["\n]/.test(fencedPath))
    throw new Error(`BIRD config path ${fencedPath} has a quote or line break`);
  const agents = new Set<Socket>();
  const fence = async () => {
    const started = Date.now();
    if (!existsSync(fencedPath)) {
      logger.log("info", "bird.fenced", {
        skipped: `no ${fencedPath}: nothing announced by an agent yet`,
      });
      return;
    }
    // BIRD may be starting (its socket not there yet): tried for 10 s while no agent is back.
    for (let attempt = 0; attempt < 20 && agents.size === 0 && !signal.aborted; attempt++) {
      try {
        await runCommand([birdc, "-s", options.birdSocket, "configure", `"${fencedPath}"`], {
          timeoutMs: 5000,
        });
        logger.log("warn", "bird.fenced", {
          reason: "no agent connected; floating IPs withdrawn",
          withdrawnInMs: Date.now() - started,
        });
        // An agent that connected while this ran may have configured BIRD
        // before it: dropped, it reconnects and configures again.
        for (const socket of agents) socket.destroy();
        return;
      } catch (error) {
        if (attempt === 0) logger.log("error", "bird.fenced", { error: (error as Error).message });
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  };
  await rm(options.listenPath, { force: true });
  const server = createServer((socket) => {
    agents.add(socket);
    logger.log("info", "bird.agent", { state: "connected", agents: agents.size });
    socket.on("data", () => {});
    socket.on("error", () => {});
    socket.on("close", () => {
      agents.delete(socket);
      logger.log("warn", "bird.agent", { state: "disconnected", agents: agents.size });
      if (agents.size === 0 && !signal.aborted) void fence();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.listenPath, () => resolve());
  });
  // Whoever connects keeps BIRD's announcements up: the agent (root) only,
  // whatever the umask left.
  await chmod(options.listenPath, 0o600);
  options.onListening?.();
  // Started (or restarted) with no agent yet: whatever BIRD loaded is not
  // known to be backed by a live agent. A live one reconnects within 500 ms
  // and configures again.
  if (agents.size === 0) void fence();
  await new Promise<void>((resolve) =>
    signal.addEventListener("abort", () => resolve(), { once: true }),
  );
  for (const socket of agents) socket.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}
