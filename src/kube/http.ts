// Plain HTTPS calls to the Kubernetes API server with a kubeconfig's
// credentials: what the CNI executable uses instead of a client library
// (ADR 0001's start-up budget). node:https works under Node and in the bun
// executable alike. Answers of 400 and above become KubeApiError with the
// API's Status reason (NotFound, AlreadyExists, Conflict, Gone, ...); a server
// that cannot be reached becomes KubeUnavailableError.
import { request as httpsRequest } from "node:https";
import { request as httpRequest } from "node:http";
import type { KubeCredentials } from "./kubeconfig.js";

export class KubeApiError extends Error {
  override readonly name = "KubeApiError";
  constructor(
    readonly status: number,
    /** The Status object's reason: NotFound, AlreadyExists, Conflict, Forbidden, Gone, ... */
    readonly reason: string,
    message: string,
    /** The Status object's message alone (the API server's words, for a user). */
    readonly apiMessage = message,
  ) {
    super(message);
  }
}

export class KubeUnavailableError extends Error {
  override readonly name = "KubeUnavailableError";
}

export type PatchType = "merge" | "strategic" | "json";
const PATCH_CONTENT_TYPE: Record<PatchType, string> = {
  merge: "application/merge-patch+json",
  strategic: "application/strategic-merge-patch+json",
  json: "application/json-patch+json",
};

export interface KubeHttp {
  readonly server: string;
  get<T>(path: string): Promise<T>;
  create<T>(path: string, body: unknown): Promise<T>;
  replace<T>(path: string, body: unknown): Promise<T>;
  patch<T>(path: string, body: unknown, type?: PatchType): Promise<T>;
  /** `preconditions` (uid, resourceVersion) make the delete conditional, as the API allows. */
  delete(path: string, preconditions?: { uid?: string; resourceVersion?: string }): Promise<void>;
}

/** A long-running GET (a watch), its body handed on line by line. */
export interface KubeStream {
  /** Resolves when the server ends the answer; rejects as a call would (KubeApiError, KubeUnavailableError). */
  done: Promise<void>;
  abort(): void;
}

/** createKubeHttp()'s client, which can also stream (watches: kube-watch.ts). */
export interface KubeStreamingHttp extends KubeHttp {
  /** Outside the in-flight limit: a watch holds its request open. `idleMs`: no byte for this long fails it. */
  stream(path: string, onLine: (line: string) => void, idleMs: number): KubeStream;
}

/**
 * At most this many requests of one client at once, the rest queued: a pod's
 * 1,024 floating IPs must not become 2,048 concurrent GETs, which the API
 * server answers with 429 past its --max-requests-inflight.
 */
export const MAX_IN_FLIGHT = 16;

export function createKubeHttp(
  credentials: KubeCredentials,
  timeoutMs = 10_000,
  maxInFlight = MAX_IN_FLIGHT,
): KubeStreamingHttp {
  const base = new URL(credentials.server);
  const secure = base.protocol === "https:";
  const slots = inFlightLimit(maxInFlight);
  const call = <T>(method: string, path: string, body?: unknown, contentType?: string) =>
    slots.run(() => send<T>(method, path, body, contentType));
  const send = <T>(
    method: string,
    path: string,
    body?: unknown,
    contentType = "application/json",
  ) =>
    new Promise<T>((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const headers: Record<string, string> = {};
      if (payload !== undefined) {
        headers["content-type"] = contentType;
        headers["content-length"] = String(Buffer.byteLength(payload));
      }
      const options = requestOptions(method, path, headers, timeoutMs);
      const req = (secure ? httpsRequest : httpRequest)(options, (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("error", (error) => reject(unavailable(method, path, error)));
        response.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          const status = response.statusCode ?? 0;
          if (status >= 400) return reject(apiError(method, path, status, text));
          try {
            resolve((text === "" ? undefined : JSON.parse(text)) as T);
          } catch {
            reject(
              new KubeUnavailableError(
                `${method} ${path}: the API server answered ${status} with no JSON`,
              ),
            );
          }
        });
      });
      req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on("error", (error) => reject(unavailable(method, path, error)));
      req.end(payload);
    });
  const requestOptions = (
    method: string,
    path: string,
    headers: Record<string, string>,
    timeout: number,
  ) => ({
    method,
    host: base.hostname.replace(/^\[|\]$/g, ""),
    port: base.port || (secure ? 443 : 80),
    path: `${base.pathname.replace(/\/$/, "")}${path}`,
    headers: {
      accept: "application/json",
      ...headers,
      ...(credentials.token ? { authorization: `Bearer ${credentials.token}` } : {}),
    },
    timeout,
    ...(secure
      ? {
          ...(credentials.ca ? { ca: credentials.ca } : {}),
          ...(credentials.clientCert ? { cert: credentials.clientCert } : {}),
          ...(credentials.clientKey ? { key: credentials.clientKey } : {}),
          rejectUnauthorized: credentials.insecureSkipTlsVerify !== true,
        }
      : {}),
  });
  const stream = (path: string, onLine: (line: string) => void, idleMs: number): KubeStream => {
    let abort = () => {};
    const done = new Promise<void>((resolve, reject) => {
      const req = (secure ? httpsRequest : httpRequest)(
        requestOptions("GET", path, {}, idleMs),
        (response) => {
          const status = response.statusCode ?? 0;
          let text = "";
          response.setEncoding("utf8");
          response.on("data", (chunk: string) => {
            text += chunk;
            if (status >= 400) return;
            for (let end = text.indexOf("\n"); end >= 0; end = text.indexOf("\n")) {
              const line = text.slice(0, end);
              text = text.slice(end + 1);
              if (line.trim() !== "") onLine(line);
            }
          });
          response.on("error", (error) => reject(unavailable("GET", path, error)));
          response.on("end", () => {
            if (status >= 400) return reject(apiError("GET", path, status, text));
            if (text.trim() !== "") onLine(text);
            resolve();
          });
        },
      );
      req.on("timeout", () => req.destroy(new Error(`nothing received for ${idleMs} ms`)));
      req.on("error", (error) => reject(unavailable("GET", path, error)));
      req.end();
      abort = () => req.destroy(new Error("stopped"));
    });
    return { done, abort: () => abort() };
  };
  return {
    server: credentials.server,
    stream,
    get: (path) => call("GET", path),
    create: (path, body) => call("POST", path, body),
    replace: (path, body) => call("PUT", path, body),
    patch: (path, body, type = "merge") => call("PATCH", path, body, PATCH_CONTENT_TYPE[type]),
    delete: async (path, preconditions) => {
      await call(
        "DELETE",
        path,
        preconditions ? { kind: "DeleteOptions", apiVersion: "v1", preconditions } : undefined,
      );
    },
  };

  function unavailable(method: string, path: string, error: Error): KubeUnavailableError {
    return new KubeUnavailableError(
      `${method} ${credentials.server}${path}: ${(error as NodeJS.ErrnoException).code ?? ""} ${error.message}`.replace(
        /\s+/g,
        " ",
      ),
    );
  }
}

/** A counting semaphore; a released slot goes straight to the next in line. */
export function inFlightLimit(max: number): { run<T>(work: () => Promise<T>): Promise<T> } {
  let active = 0;
  const waiting: (() => void)[] = [];
  return {
    async run(work) {
      if (active < max) active += 1;
      else await new Promise<void>((resolve) => waiting.push(resolve));
      try {
        return await work();
      } finally {
        const next = waiting.shift();
        if (next) next();
        else active -= 1;
      }
    },
  };
}

function apiError(method: string, path: string, status: number, text: string): KubeApiError {
  let reason = `HTTP ${status}`;
  let message = text.trim().slice(0, 300);
  try {
    const parsed = JSON.parse(text) as { reason?: string; message?: string };
    if (parsed.reason) reason = parsed.reason;
    if (parsed.message) message = parsed.message;
  } catch {
    // not a Status object: keep the text
  }
  return new KubeApiError(status, reason, `${method} ${path}: ${reason}: ${message}`, message);
}
