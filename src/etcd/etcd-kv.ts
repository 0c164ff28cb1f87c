// Kv over etcd v3's JSON gateway (plain HTTP POST to /v3/kv/* and /v3/lease/*,
// keys and values base64, int64s as decimal strings). No gRPC stack to load:
// this is what keeps the CNI executables fast (docs/adr/0001-cni-executable.md).
import { DatastoreUnavailableError } from "../datastore/unavailable-error.js";
import {
  type Kv,
  type KvCompare,
  type KvEntry,
  type KvOp,
  type KvRead,
  type WatchSignal,
  checkTxnSize,
  validateLeaseTtl,
} from "../datastore/kv.js";
import type { EtcdFetch, EtcdTls } from "./etcd-https.js";

interface GatewayKv {
  key: string;
  value?: string;
  create_revision?: string;
  mod_revision?: string;
}

export interface EtcdKvOptions {
  /** Client URLs, tried in order until one answers. */
  endpoints: readonly string[];
  timeoutMs?: number;
  /** For https:// endpoints: the CA and client certificate (PEM contents). */
  tls?: EtcdTls;
  /** etcd's own users: a token from /v3/auth/authenticate goes with every request. */
  auth?: EtcdAuth;
}

export interface EtcdAuth {
  username: string;
  password: string;
}

export class EtcdKv implements Kv {
  readonly #endpoints: readonly string[];
  readonly #timeoutMs: number;
  readonly #tls: EtcdTls | undefined;
  readonly #auth: EtcdAuth | undefined;
  /** Auth tokens by endpoint: etcd's simple tokens are known only to the member that issued them. */
  readonly #tokens = new Map<string, string>();
  #https: Promise<EtcdFetch> | undefined;
  #preferred = 0;

  constructor(options: EtcdKvOptions) {
    if (options.endpoints.length === 0) throw new Error("no etcd endpoints configured");
    this.#endpoints = options.endpoints.map((endpoint) => endpoint.replace(/\/+$/, ""));
    this.#timeoutMs = options.timeoutMs ?? 5000;
    this.#tls = options.tls;
    this.#auth = options.auth;
  }

  async get(key: string): Promise<KvEntry | undefined> {
    const body = await this.#call<{ kvs?: GatewayKv[] }>("/v3/kv/range", { key: encode(key) });
    const kv = body.kvs?.[0];
    return kv && decodeEntry(kv);
  }

  async list(prefix: string): Promise<KvEntry[]> {
    const body = await this.#call<{ kvs?: GatewayKv[] }>("/v3/kv/range", {
      key: encode(prefix),
      range_end: encode(prefixEnd(prefix)),
    });
    return (body.kvs ?? []).map(decodeEntry);
  }

  async listPage(prefix: string, after: string | undefined, limit: number): Promise<KvEntry[]> {
    const body = await this.#call<{ kvs?: GatewayKv[] }>("/v3/kv/range", {
      // The first key after `after` is `after` and a NUL.
      key: encode(after === undefined ? prefix : `${after}\0`),
      range_end: encode(prefixEnd(prefix)),
      limit: String(limit),
    });
    return (body.kvs ?? []).map(decodeEntry);
  }

  async count(prefix: string): Promise<number> {
    const body = await this.#call<{ count?: string }>("/v3/kv/range", {
      key: encode(prefix),
      range_end: encode(prefixEnd(prefix)),
      count_only: true,
    });
    return Number(body.count ?? 0);
  }

  /** A transaction with no compares and only range operations: one request, one revision. */
  async readMany(reads: readonly KvRead[]): Promise<KvEntry[][]> {
    checkTxnSize("reads", reads.length);
    const body = await this.#call<{ responses?: { response_range?: { kvs?: GatewayKv[] } }[] }>(
      "/v3/kv/txn",
      {
        compare: [],
        success: reads.map((read) => ({
          request_range:
            "prefix" in read
              ? { key: encode(read.prefix), range_end: encode(prefixEnd(read.prefix)) }
              : { key: encode(read.key) },
        })),
      },
    );
    return reads.map((_, i) => (body.responses?.[i]?.response_range?.kvs ?? []).map(decodeEntry));
  }

  async txn(compares: readonly KvCompare[], ops: readonly KvOp[]): Promise<boolean> {
    return (await this.#txn(compares, ops)).succeeded === true;
  }

  async txnAt(compares: readonly KvCompare[], ops: readonly KvOp[]): Promise<number | undefined> {
    const body = await this.#txn(compares, ops);
    return body.succeeded === true ? Number(body.header?.revision ?? 0) : undefined;
  }

  async #txn(
    compares: readonly KvCompare[],
    ops: readonly KvOp[],
  ): Promise<{ succeeded?: boolean; header?: { revision?: string } }> {
    checkTxnSize("compares", compares.length);
    checkTxnSize("operations", ops.length);
    return this.#call<{ succeeded?: boolean; header?: { revision?: string } }>("/v3/kv/txn", {
      compare: compares.map((compare) =>
        "createRevision" in compare
          ? {
              key: encode(compare.key),
              target: "CREATE",
              result: "EQUAL",
              create_revision: String(compare.createRevision),
            }
          : {
              key: encode(compare.key),
              target: "MOD",
              result: "EQUAL",
              mod_revision: String(compare.modRevision),
            },
      ),
      success: ops.map((op) =>
        "delete" in op
          ? { request_delete_range: { key: encode(op.delete) } }
          : {
              request_put: {
                key: encode(op.put),
                value: encode(op.value),
                ...(op.lease === undefined ? {} : { lease: op.lease }),
              },
            },
      ),
    });
  }

  async ping(): Promise<void> {
    await this.#call("/v3/maintenance/status", {});
  }

  async grantLease(ttlSeconds: number): Promise<string> {
    validateLeaseTtl(ttlSeconds);
    const body = await this.#call<{ ID?: unknown; error?: string }>("/v3/lease/grant", {
      TTL: String(ttlSeconds),
    });
    // The gateway writes int64s as strings: the ID never passes through a JS number.
    if (typeof body.ID !== "string" || !/^\d+$/.test(body.ID) || body.error) {
      throw new DatastoreUnavailableError(
        `etcd granted no lease: ${body.error ?? `unexpected ID ${JSON.stringify(body.ID)}`}`,
      );
    }
    return body.ID;
  }

  /**
   * /v3/lease/keepalive is a bidirectional stream; one request carrying one
   * message gets one `{"result": ...}` line, then the stream ends. A lease
   * that no longer exists comes back with TTL 0 (left out of the JSON).
   */
  async keepAliveLease(id: string): Promise<boolean> {
    const text = await this.#post("/v3/lease/keepalive", { ID: id });
    for (const line of text.split("\n")) {
      if (!line.trim()) continue;
      const message = JSON.parse(line) as {
        result?: { TTL?: string };
        error?: { message?: string };
      };
      if (message.error) {
        throw new DatastoreUnavailableError(
          `etcd did not renew lease ${id}: ${message.error.message ?? "unknown error"}`,
        );
      }
      if (message.result) return BigInt(message.result.TTL ?? "0") > 0n;
    }
    throw new DatastoreUnavailableError(
      `etcd ended the keep-alive of lease ${id} without an answer`,
    );
  }

  async revokeLease(id: string): Promise<void> {
    await this.#post("/v3/lease/revoke", { ID: id }, isLeaseNotFound);
  }

  /** The gateway's /v3/watch: a stream of newline-separated JSON messages. */
  async *watch(prefix: string, signal: AbortSignal): AsyncIterable<WatchSignal> {
    const endpoint = this.#endpoints[this.#preferred] as string;
    let response: Response;
    try {
      response = await this.#send(
        endpoint,
        "/v3/watch",
        JSON.stringify({
          create_request: { key: encode(prefix), range_end: encode(prefixEnd(prefix)) },
        }),
        signal,
      );
    } catch (error) {
      if (signal.aborted) return;
      this.#preferred = (this.#preferred + 1) % this.#endpoints.length;
      throw new DatastoreUnavailableError(
        `cannot watch etcd at ${endpoint}: ${describeFetchError(error)}`,
      );
    }
    if (!response.ok || !response.body) {
      throw new DatastoreUnavailableError(
        `etcd at ${endpoint} refused the watch: HTTP ${response.status}`,
      );
    }
    const decoder = new TextDecoder();
    let buffered = "";
    try {
      for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
        buffered += decoder.decode(chunk, { stream: true });
        for (let newline = buffered.indexOf("\n"); newline >= 0; newline = buffered.indexOf("\n")) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          if (!line) continue;
          const message = JSON.parse(line) as {
            result?: {
              created?: boolean;
              canceled?: boolean;
              events?: { type?: string; kv?: GatewayKv }[];
              cancel_reason?: string;
            };
            error?: { message?: string };
          };
          if (message.error || message.result?.canceled) {
            const reason = message.error?.message ?? message.result?.cancel_reason ?? "canceled";
            // A stream answers 200 and says it here: a token etcd no longer knows is dropped, so
            // the next watch authenticates again instead of failing with it forever.
            if (/invalid auth token/i.test(reason)) this.#tokens.delete(endpoint);
            throw new DatastoreUnavailableError(`etcd ended the watch: ${reason}`);
          }
          if (message.result?.created) yield "ready";
          else if (message.result?.events?.length) {
            const { events } = message.result;
            yield {
              changed: events.map((event) => decode(event.kv?.key)),
              entries: events.map((event) =>
                event.type === "DELETE" || !event.kv ? undefined : decodeEntry(event.kv),
              ),
            };
          }
        }
      }
    } catch (error) {
      if (signal.aborted) return;
      if (error instanceof DatastoreUnavailableError) throw error;
      throw new DatastoreUnavailableError(`lost the etcd watch: ${(error as Error).message}`);
    }
    if (!signal.aborted) throw new DatastoreUnavailableError("etcd closed the watch");
  }

  async #call<T>(path: string, request: object): Promise<T> {
    return JSON.parse(await this.#post(path, request)) as T;
  }

  /**
   * POSTs to the preferred endpoint, then to the others: a member that cannot
   * be reached or answers 5xx is skipped; any other error answer is final,
   * unless `accept` takes it. Resolves to the body of the answer taken.
   */
  async #post(
    path: string,
    request: object,
    accept: (status: number, text: string) => boolean = () => false,
  ): Promise<string> {
    const failures: string[] = [];
    for (let attempt = 0; attempt < this.#endpoints.length; attempt++) {
      const index = (this.#preferred + attempt) % this.#endpoints.length;
      const endpoint = this.#endpoints[index] as string;
      let response: Response;
      let text: string;
      try {
        response = await this.#send(
          endpoint,
          path,
          JSON.stringify(request),
          AbortSignal.timeout(this.#timeoutMs),
        );
        // Inside the try: a stream (keep-alive) that stalls times out here.
        text = await response.text();
      } catch (error) {
        if (error instanceof EtcdAuthError) throw error;
        failures.push(`${endpoint}: ${describeFetchError(error)}`);
        continue;
      }
      if (response.status >= 500) {
        // E.g. a member without a leader: another member may answer.
        failures.push(`${endpoint}: HTTP ${response.status} ${text.trim()}`);
        continue;
      }
      if (!response.ok && !accept(response.status, text)) {
        throw new DatastoreUnavailableError(
          `etcd at ${endpoint} answered ${path} with HTTP ${response.status}: ${text.trim()}`,
        );
      }
      this.#preferred = index;
      return text;
    }
    throw new DatastoreUnavailableError(`cannot reach etcd (${failures.join("; ")})`);
  }

  /**
   * One POST to one endpoint, with the auth token when etcd has users: a
   * token the member no longer knows (expired, the member restarted) is
   * replaced once, then the answer is the caller's.
   */
  async #send(
    endpoint: string,
    path: string,
    body: string,
    signal: AbortSignal,
  ): Promise<Response> {
    const post = await this.#fetcher(endpoint);
    const headers = async (): Promise<Record<string, string>> => ({
      "content-type": "application/json",
      ...(this.#auth ? { authorization: await this.#token(endpoint, post, signal) } : {}),
    });
    const response = await post(endpoint + path, {
      method: "POST",
      body,
      headers: await headers(),
      signal,
    });
    if (!this.#auth || response.status !== 401) return response;
    await response.body?.cancel();
    this.#tokens.delete(endpoint);
    return post(endpoint + path, { method: "POST", body, headers: await headers(), signal });
  }

  async #fetcher(endpoint: string): Promise<EtcdFetch> {
    if (!endpoint.startsWith("https:") || this.#tls === undefined) {
      return (url, init) => fetch(url, init);
    }
    const tls = this.#tls;
    this.#https ??= import("./etcd-https.js").then(({ createHttpsFetch }) => createHttpsFetch(tls));
    return this.#https;
  }

  async #token(endpoint: string, post: EtcdFetch, signal: AbortSignal): Promise<string> {
    const known = this.#tokens.get(endpoint);
    if (known !== undefined) return known;
    const { username, password } = this.#auth as EtcdAuth;
    const response = await post(`${endpoint}/v3/auth/authenticate`, {
      method: "POST",
      body: JSON.stringify({ name: username, password }),
      headers: { "content-type": "application/json" },
      signal,
    });
    const text = await response.text();
    let answer: { token?: unknown; error?: unknown; message?: unknown } = {};
    try {
      answer = JSON.parse(text) as typeof answer;
    } catch {
      // not JSON: reported below as it came
    }
    if (response.status >= 500) {
      throw new Error(`HTTP ${response.status} ${text.trim()}`);
    }
    if (!response.ok || typeof answer.token !== "string") {
      const why = String(
        answer.message ?? answer.error ?? `HTTP ${response.status} ${text.trim()}`,
      );
      throw new EtcdAuthError(`etcd at ${endpoint} refused user '${username}': ${why}`);
    }
    this.#tokens.set(endpoint, answer.token);
    return answer.token;
  }
}

/** etcd refused the configured user: final, another member would refuse it too. */
export class EtcdAuthError extends DatastoreUnavailableError {}

/** etcd's answer to a lease ID it does not know: gRPC NotFound, HTTP 404. */
function isLeaseNotFound(status: number, text: string): boolean {
  return status === 404 && text.includes("requested lease not found");
}

function describeFetchError(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const code = cause?.code ?? (error as { code?: unknown }).code;
  const message = cause?.message ?? (error as Error).message ?? String(error);
  if (typeof code === "string" && isTlsError(code, message)) return describeTlsError(code, message);
  if (typeof code === "string") return code;
  return message;
}

/**
 * OpenSSL's reason without its file and line, and which side refused:
 * etcd refusing our certificate, or us refusing etcd's.
 */
function describeTlsError(code: string, message: string): string {
  const reason = /SSL routines:[^:]*:([^:]+)/.exec(message)?.[1] ?? message.trim();
  const side = /alert (bad certificate|certificate required|unknown ca|certificate unknown)/i.test(
    reason,
  )
    ? "etcd refused the client certificate (etcd_cert_file, etcd_key_file)"
    : /CERT|SELF_SIGNED|UNABLE_TO|HOSTNAME/.test(code)
      ? "etcd's server certificate is not trusted (etcd_ca_cert_file)"
      : undefined;
  return `TLS handshake failed: ${reason}${side === undefined ? "" : `: ${side}`}`;
}

/** Node's and Bun's words for a refused or untrusted certificate, either side. */
function isTlsError(code: string, message: string): boolean {
  return (
    code.startsWith("ERR_SSL") ||
    code.startsWith("ERR_TLS") ||
    /CERT|SELF_SIGNED|UNABLE_TO|HOSTNAME/.test(code) ||
    (code === "EPROTO" && /ssl|tls|alert/i.test(message))
  );
}

function encode(text: string | Buffer): string {
  return (typeof text === "string" ? Buffer.from(text, "utf8") : text).toString("base64");
}

function decode(text: string | undefined): string {
  return text === undefined ? "" : Buffer.from(text, "base64").toString("utf8");
}

function decodeEntry(kv: GatewayKv): KvEntry {
  return {
    key: decode(kv.key),
    value: decode(kv.value),
    createRevision: Number(kv.create_revision ?? 0),
    modRevision: Number(kv.mod_revision ?? 0),
  };
}

/** The smallest key greater than every key with this prefix (etcd's range_end). */
function prefixEnd(prefix: string): Buffer {
  const bytes = Buffer.from(prefix, "utf8");
  for (let i = bytes.length - 1; i >= 0; i--) {
    if ((bytes[i] as number) < 0xff) {
      bytes[i] = (bytes[i] as number) + 1;
      return bytes.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}
