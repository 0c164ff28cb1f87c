// The resident CNI server's unix socket (ADR 0013). Only root may connect:
// the socket sits in a directory the server's user owns and no one else may
// enter, checked at start. One JSON line in, one out; what is not a request,
// or arrives while too many are in flight, gets a fallback and nothing is
// done for it.
import { chmodSync, lstatSync, mkdirSync, unlinkSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { dirname } from "node:path";
import {
  MAX_REQUEST_BYTES,
  decodeRequest,
  encodeReply,
  type ForwardReply,
  type ForwardRequest,
} from "./agent-wire.js";
import type { Logger } from "../log/logger.js";

export type ServeRequest = (request: ForwardRequest) => Promise<ForwardReply>;

/** More requests than this at once are left to the executables (each a process of its own then). */
export const MAX_IN_FLIGHT = 32;

export class CniSocketError extends Error {
  override readonly name = "CniSocketError";
}

export interface CniSocket {
  /** Stops accepting, waits for the requests in flight, removes the socket. */
  close(): Promise<void>;
}

export async function listenCniSocket(
  path: string,
  serve: ServeRequest,
  logger: Logger,
  maxInFlight = MAX_IN_FLIGHT,
): Promise<CniSocket> {
  prepareDirectory(dirname(path));
  removeStaleSocket(path);
  const inFlight = new Set<Promise<void>>();
  // Half-open: a client that shuts down its side after the request still gets the answer.
  const server: Server = createServer({ allowHalfOpen: true }, (socket) => {
    const handled = handle(socket, serve, logger, () => inFlight.size > maxInFlight).finally(() =>
      inFlight.delete(handled),
    );
    inFlight.add(handled);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (error) =>
      reject(new CniSocketError(`cannot listen on ${path}: ${error.message}`)),
    );
    server.listen(path, () => resolve());
  });
  chmodSync(path, 0o600);
  logger.log("info", "cni.server", { path, state: "listening" });
  return {
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.allSettled([...inFlight]);
      try {
        unlinkSync(path);
      } catch {
        // Already gone (server.close removes it on some platforms).
      }
    },
  };
}

function prepareDirectory(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stat = lstatSync(dir);
  const uid = process.getuid?.() ?? 0;
  if (!stat.isDirectory()) throw new CniSocketError(`--cni-socket: ${dir} is not a directory`);
  if (stat.uid !== uid || (stat.mode & 0o077) !== 0) {
    throw new CniSocketError(
      `--cni-socket: ${dir} must belong to uid ${uid} and be closed to others ` +
        `(it is uid ${stat.uid}, mode ${(stat.mode & 0o777).toString(8)}): ` +
        `anyone who can connect can have pods' networks set up`,
    );
  }
}

function removeStaleSocket(path: string): void {
  let stat;
  try {
    stat = lstatSync(path);
  } catch {
    return;
  }
  if (!stat.isSocket()) throw new CniSocketError(`--cni-socket: ${path} exists and is no socket`);
  unlinkSync(path);
}

async function handle(
  socket: Socket,
  serve: ServeRequest,
  logger: Logger,
  busy: () => boolean,
): Promise<void> {
  socket.on("error", () => socket.destroy());
  const read = await readLine(socket);
  if (read === undefined) return;
  let reply: ForwardReply;
  const request =
    "tooLong" in read ? { problem: "the request is too long" } : decodeRequest(read.line);
  if ("problem" in request) {
    reply = { kind: "fallback", reason: request.problem };
  } else if (busy()) {
    reply = { kind: "fallback", reason: `more than ${MAX_IN_FLIGHT} requests in flight` };
  } else {
    const started = performance.now();
    try {
      reply = await serve(request);
    } catch (error) {
      // serveCni turns every CNI failure into a result; this is a bug's way out.
      logger.log("error", "cni.server", { error: (error as Error).message });
      reply = {
        kind: "done",
        stdout:
          JSON.stringify({ cniVersion: "0.4.0", code: 999, msg: (error as Error).message }) + "\n",
        exitCode: 1,
      };
    }
    logger.log("debug", "cni.server", {
      command: request.env.CNI_COMMAND,
      containerID: request.env.CNI_CONTAINERID,
      reply: reply.kind,
      ...(reply.kind === "fallback" ? { reason: reply.reason } : { exitCode: reply.exitCode }),
      ms: Math.round((performance.now() - started) * 10) / 10,
    });
  }
  if (!socket.destroyed) socket.end(encodeReply(reply));
  // An unread rest (an oversized request) must not keep the connection open.
  socket.resume();
}

/** A request must arrive whole within this long of connecting. */
const READ_TIMEOUT_MS = 10_000;

/** The first line; undefined when the peer left or stalled first; stops reading past the size bound. */
function readLine(socket: Socket): Promise<{ line: string } | { tooLong: true } | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(() => {
      socket.destroy();
      finish(undefined);
    }, READ_TIMEOUT_MS);
    const finish = (read: { line: string } | { tooLong: true } | undefined) => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("close", onClose);
      socket.pause();
      resolve(read);
    };
    const onData = (chunk: Buffer) => {
      const end = chunk.indexOf(0x0a);
      if (end >= 0) {
        chunks.push(chunk.subarray(0, end));
        return finish({ line: Buffer.concat(chunks).toString("utf8") });
      }
      chunks.push(chunk);
      size += chunk.length;
      if (size > MAX_REQUEST_BYTES) finish({ tooLong: true });
    };
    const onClose = () => finish(undefined);
    socket.on("data", onData);
    socket.on("close", onClose);
  });
}
