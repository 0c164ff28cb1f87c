// The executable's side of ADR 0013: hand the request to the resident agent
// over its unix socket and wait for the answer. Bun.connect in the compiled
// executable (node:net costs its start-up), node:net under Node (tests).
import {
  decodeReply,
  encodeRequest,
  type ForwardReply,
  type ForwardRequest,
} from "./agent-wire.js";

/** The agent took the request and did not answer: it may have done part of it. */
export class AgentLostError extends Error {
  override readonly name = "AgentLostError";
}

/** How long the executable waits for an accepted request (the runtime's own timeout is longer). */
export const FORWARD_TIMEOUT_MS = 120_000;

interface BunSocket {
  write(data: Uint8Array): number;
  end(): void;
}

interface BunConnect {
  connect(options: {
    unix: string;
    socket: {
      open(socket: BunSocket): void;
      data(socket: BunSocket, chunk: Uint8Array): void;
      close(socket: BunSocket): void;
      drain(socket: BunSocket): void;
      error(socket: BunSocket, error: Error): void;
      connectError?(socket: BunSocket, error: Error): void;
    };
  }): Promise<BunSocket>;
}

/**
 * The agent's reply, or undefined when no agent took the request (nothing
 * listens at `path`, or it answered a fallback): the executable then does
 * the work itself. Throws AgentLostError once the request was sent and no
 * complete reply came.
 */
export async function forwardToAgent(
  path: string,
  request: ForwardRequest,
  timeoutMs = FORWARD_TIMEOUT_MS,
): Promise<Extract<ForwardReply, { kind: "done" }> | undefined> {
  const exchanged = await exchange(path, encodeRequest(request), timeoutMs);
  if (exchanged === undefined) return undefined;
  let reply: ForwardReply;
  try {
    reply = decodeReply(exchanged);
  } catch (error) {
    throw new AgentLostError(`buoy agent at ${path}: ${(error as Error).message}`);
  }
  return reply.kind === "done" ? reply : undefined;
}

/**
 * Whether a server answers at `path` within `timeoutMs`: any line back (a
 * non-request gets a fallback reply) means its loop runs. For a liveness probe.
 */
export async function serverAnswers(path: string, timeoutMs: number): Promise<boolean> {
  try {
    return (await exchange(path, "probe\n", timeoutMs)) !== undefined;
  } catch {
    return false;
  }
}

/** Sends `line`, returns the first line back; undefined when the connection never opened. */
function exchange(path: string, line: string, timeoutMs: number): Promise<string | undefined> {
  const bun = (globalThis as { Bun?: BunConnect }).Bun;
  return bun
    ? exchangeWithBun(bun, path, line, timeoutMs)
    : exchangeWithNode(path, line, timeoutMs);
}

function lineCollector(path: string, timeoutMs: number) {
  let settled = false;
  let opened = false;
  let buffer = "";
  const decoder = new TextDecoder();
  let resolve!: (value: string | undefined) => void;
  let reject!: (error: Error) => void;
  const done = new Promise<string | undefined>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const timer = setTimeout(
    () => finish(new AgentLostError(`buoy agent at ${path} did not answer within ${timeoutMs} ms`)),
    timeoutMs,
  );
  function finish(outcome: string | undefined | Error): void {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    if (outcome instanceof Error) reject(outcome);
    else resolve(outcome);
  }
  return {
    done,
    opened() {
      opened = true;
    },
    /** Returns true once a whole line has arrived. */
    data(chunk: Uint8Array): boolean {
      buffer += decoder.decode(chunk, { stream: true });
      const end = buffer.indexOf("\n");
      if (end < 0) return false;
      finish(buffer.slice(0, end));
      return true;
    },
    closed(error?: Error) {
      if (!opened) return finish(undefined);
      finish(
        new AgentLostError(
          `buoy agent at ${path} closed the connection before answering` +
            (error ? ` (${error.message})` : ""),
        ),
      );
    },
  };
}

async function exchangeWithBun(
  bun: BunConnect,
  path: string,
  line: string,
  timeoutMs: number,
): Promise<string | undefined> {
  const collector = lineCollector(path, timeoutMs);
  // Bun's write takes what the socket buffer holds now: the rest goes on drain.
  let unsent = new TextEncoder().encode(line);
  const send = (socket: BunSocket) => {
    if (unsent.length > 0) unsent = unsent.subarray(Math.max(0, socket.write(unsent)));
  };
  bun
    .connect({
      unix: path,
      socket: {
        open(socket) {
          collector.opened();
          send(socket);
        },
        drain: send,
        data(socket, chunk) {
          if (collector.data(chunk)) socket.end();
        },
        close() {
          collector.closed();
        },
        error(_socket, error) {
          collector.closed(error);
        },
        connectError() {
          collector.closed();
        },
      },
    })
    .catch(() => collector.closed());
  return collector.done;
}

async function exchangeWithNode(
  path: string,
  line: string,
  timeoutMs: number,
): Promise<string | undefined> {
  const { connect } = await import("node:net");
  const collector = lineCollector(path, timeoutMs);
  const socket = connect(path);
  socket.once("connect", () => {
    collector.opened();
    socket.write(line);
  });
  socket.on("data", (chunk: Buffer) => {
    if (collector.data(chunk)) socket.end();
  });
  socket.on("error", (error) => collector.closed(error));
  socket.on("close", () => collector.closed());
  return collector.done.finally(() => socket.destroy());
}
