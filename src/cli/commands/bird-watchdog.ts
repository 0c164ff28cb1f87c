// `buoy bird-watchdog`: runs beside BIRD and withdraws the node's floating
// IPs from it the moment the agent's connection closes (ADR 0009).
import type { Command } from "commander";
import type { Session } from "./session.js";

interface WatchdogCliOptions {
  listen: string;
  birdConfig: string;
  birdSocket: string;
  birdc: string;
}

/** Adds `bird-watchdog` to the program. */
export function addBirdWatchdogCommand(program: Command, session: Session): void {
  program
    .command("bird-watchdog")
    .summary("Run beside BIRD: withdraw the floating IPs when the agent dies")
    .description(
      "Run beside BIRD: hold the node agent's connection and, when it closes (the\n" +
        "agent died), load the agent's config without floating IPs (<config>.fenced)",
    )
    .option("--listen <path>", "unix socket the agent connects to", "/run/bird/buoy-agent.sock")
    .option("--bird-config <path>", "the config the agent writes", "/etc/bird/bird.conf")
    .option("--bird-socket <path>", "BIRD's control socket", "/run/bird/bird.ctl")
    .option("--birdc <path>", "the birdc command", "birdc")
    .action(async (options: WatchdogCliOptions) => {
      const [{ runBirdWatchdog }, log] = await Promise.all([
        import("../../dataplane/shell/bird-watchdog.js"),
        import("../../log/logger.js"),
      ]);
      const controller = new AbortController();
      session.request.onShutdown?.(() => controller.abort());
      const logger = log.createStreamLogger((line) => session.request.stdout.write(line), "info");
      await runBirdWatchdog(
        {
          listenPath: options.listen,
          birdSocket: options.birdSocket,
          configPath: options.birdConfig,
          birdc: options.birdc,
          logger,
          onListening: () =>
            logger.log("info", "bird.watchdog", { state: "listening", path: options.listen }),
        },
        controller.signal,
      );
    });
}
