// `buoy agent --cni-socket`: the agent starts the CNI executable as a
// resident server (`buoy serve`, ADR 0013) and keeps it running. The child's
// stdin stays open and it exits when that closes, so it never outlives the
// agent; its log lines join the agent's. A child that cannot listen stops the
// agent at start with the child's reason; one that dies later is restarted,
// and until then every CNI call is done by the executable itself.
import { startStream, type Stream } from "../exec/command.js";
import type { Logger, LogLevel } from "../log/logger.js";

export interface CniServerOptions {
  /** The CNI executable (dist/cni/buoy; /opt/buoy/cni/buoy in the image). */
  binary: string;
  socket: string;
  logLevel: string;
}

export class CniServerError extends Error {
  override readonly name = "CniServerError";
}

const RESTART_MS = 1000;
const LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

/**
 * Starts the server and resolves once it listens (or rejects with why it
 * cannot); `stopped` settles after `signal` aborts and the child has exited.
 */
export async function startCniServer(
  options: CniServerOptions,
  logger: Logger,
  signal: AbortSignal,
): Promise<{ stopped: Promise<void> }> {
  let child = await launch(options, logger);
  const stopped = (async () => {
    while (!signal.aborted) {
      const detail = await Promise.race([
        child.exited,
        new Promise<undefined>((resolve) =>
          signal.addEventListener("abort", () => resolve(undefined), { once: true }),
        ),
      ]);
      if (signal.aborted) break;
      logger.log("warn", "agent.cni-server", { state: "exited", detail, restartInMs: RESTART_MS });
      await new Promise((resolve) => setTimeout(resolve, RESTART_MS));
      if (signal.aborted) break;
      try {
        child = await launch(options, logger);
      } catch (error) {
        logger.log("error", "agent.cni-server", {
          state: "failed",
          error: (error as Error).message,
        });
      }
    }
    await child.stream.stop();
  })();
  return { stopped };
}

interface Child {
  stream: Stream;
  /** Resolves with what the child said when it exits on its own. */
  exited: Promise<string>;
}

async function launch(options: CniServerOptions, logger: Logger): Promise<Child> {
  let listening: () => void = () => {};
  let exit: (detail: string) => void = () => {};
  const exited = new Promise<string>((resolve) => (exit = resolve));
  const ready = new Promise<void>((resolve) => (listening = resolve));
  const stream = await startStream(
    [
      options.binary,
      "serve",
      "--socket",
      options.socket,
      "--log-level",
      options.logLevel,
      "--with-parent",
    ],
    {
      holdStdin: true,
      // The child logs in the agent's format: its events are passed on as they are.
      onLine(line) {
        let parsed: Record<string, unknown>;
        try {
          parsed = JSON.parse(line) as Record<string, unknown>;
        } catch {
          return;
        }
        const fields = Object.fromEntries(
          Object.entries(parsed).filter(([key]) => !["time", "level", "event"].includes(key)),
        );
        const level = LEVELS.find((name) => name === parsed.level) ?? "info";
        logger.log(level, "cni.server", fields);
        if (fields.state === "listening") listening();
      },
      onExit: (detail) => exit(detail),
    },
  );
  const outcome = await Promise.race([ready.then(() => "listening" as const), exited]);
  if (outcome !== "listening") {
    throw new CniServerError(outcome.replace(/^.*?: buoy serve: /, ""));
  }
  return { stream, exited };
}
