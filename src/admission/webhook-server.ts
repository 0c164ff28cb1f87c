// The admission webhook's HTTPS shell: AdmissionReview in, AdmissionReview
// out, at /validate-ippool, /validate-pod and /validate-floatingip; /healthz. It reads what a review
// needs from the API server (pools and blocks for a pool; pools, and the
// namespace's labels only when a pool asks, for a pod with floating IPs) and
// leaves the decision to review.ts. A read that fails answers 500, so the API
// server applies the webhook's failurePolicy (ADR 0010).
import { createServer, type Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import { apiPaths } from "../kube/api-paths.js";
import { KubeApiError, type KubeHttp } from "../kube/http.js";
import { DEFAULT_MAX_FLOATING_IPS } from "../floating/validate.js";
import { parseFloatingIpBound } from "./cni-config-bound.js";
import {
  blockFromObject,
  poolFromObject,
  type KubeObject,
  type KubeList,
} from "../kube/objects.js";
import { poolRestrictsNamespaces } from "../ipam/pool.js";
import type { IpPool } from "../model/records.js";
import type { Logger } from "../log/logger.js";
import {
  AdmissionReviewError,
  allow,
  deny,
  floatingIpsToReview,
  namespaceLabelsNeeded,
  parseAdmissionReview,
  parseFloatingIpToReview,
  parsePodFloatingIps,
  renderAdmissionReview,
  reviewFloatingIpPool,
  reviewPod,
  reviewPool,
  type AdmissionRequest,
  type AdmissionResponse,
} from "./review.js";
import type { ServingTls } from "./webhook-tls.js";

/** AdmissionReview bodies of pods can be large; the API server caps objects at 3 MiB. */
const MAX_BODY_BYTES = 8 * 1024 * 1024;
/**
 * What a caller that is not the API server (any pod can reach the host
 * network's port) may hold of the webhook: bodies in flight together, open
 * connections, and the time to send a request. The API server keeps a few
 * connections and gives up on a review after its timeout (10 s by default).
 */
export const LIMITS = {
  inFlightBodyBytes: 32 * 1024 * 1024,
  connections: 128,
  headersMs: 10_000,
  requestMs: 15_000,
};

export interface WebhookOptions {
  tls: ServingTls;
  host: string;
  port: number;
  /** The API client, fresh credentials each call (tokens rotate). */
  kube: () => KubeHttp;
  /** ADD's bound on floating IPs per pod, as the nodes' conflist has it now. */
  maxFloatingIps: () => Promise<number>;
  logger: Logger;
}

export interface RunningWebhook {
  server: Server;
  port: number;
  /** Stops accepting, lets reviews in flight finish (at most `graceMs`). */
  close(graceMs?: number): Promise<void>;
}

export async function startWebhook(
  options: WebhookOptions,
  limits = LIMITS,
): Promise<RunningWebhook> {
  const budget = { free: limits.inFlightBodyBytes };
  const server = createServer(
    {
      cert: options.tls.cert,
      key: options.tls.key,
      headersTimeout: limits.headersMs,
      requestTimeout: limits.requestMs,
      handshakeTimeout: limits.headersMs,
      // How often the two timeouts are checked (Node's default: 30 s).
      connectionsCheckingInterval: Math.min(limits.headersMs, limits.requestMs) / 5,
    },
    (req, res) => {
      handle(req, res, options, budget).catch((error: unknown) => {
        options.logger.log("error", "webhook.error", { path: req.url, error: String(error) });
        if (!res.headersSent) send(res, 500, { message: "internal error" });
      });
    },
  );
  server.maxConnections = limits.connections;
  // A connection that sends nothing at all (no request yet) is closed too.
  server.timeout = limits.headersMs;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  return {
    server,
    port,
    close: (graceMs = 5000) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => server.closeAllConnections(), graceMs);
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}

async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  options: WebhookOptions,
  budget: BodyBudget,
) {
  const path = (req.url ?? "/").split("?")[0];
  if (req.method === "GET" && path === "/healthz") return send(res, 200, { status: "ok" });
  const review = REVIEWS[path ?? ""];
  if (!review) return send(res, 404, { message: `no such path ${path}` });
  if (req.method !== "POST") return send(res, 405, { message: "POST an AdmissionReview" });
  let request: AdmissionRequest;
  try {
    request = parseAdmissionReview(JSON.parse(await readBody(req, budget)));
  } catch (error) {
    if (error instanceof BusyError) {
      res.setHeader("connection", "close");
      return send(res, 503, { message: error.message });
    }
    if (error instanceof AdmissionReviewError || error instanceof SyntaxError) {
      return send(res, 400, { message: error.message });
    }
    throw error;
  }
  const started = Date.now();
  const response = await review(request, options);
  options.logger.log(response.allowed ? "debug" : "info", "webhook.review", {
    path,
    uid: request.uid,
    operation: request.operation,
    namespace: request.namespace,
    name: request.name,
    allowed: response.allowed,
    ...(response.status ? { reason: response.status.message } : {}),
    ms: Date.now() - started,
  });
  send(res, 200, renderAdmissionReview(response));
}

type Review = (request: AdmissionRequest, options: WebhookOptions) => Promise<AdmissionResponse>;

const REVIEWS: Record<string, Review> = {
  "/validate-ippool": async (request, options) => {
    if (request.operation !== "CREATE" && request.operation !== "UPDATE") return allow(request);
    const kube = options.kube();
    const [pools, blocks] = await Promise.all([
      readPools(kube),
      kube.get<KubeList<KubeObject>>(apiPaths.blocks),
    ]);
    return reviewPool(request, {
      pools,
      blocks: blocks.items.map((object) => blockFromObject(object).value),
    });
  },
  "/validate-floatingip": async (request, options) => {
    const parsed = parseFloatingIpToReview(request);
    if (parsed === undefined) return allow(request);
    if ("refusal" in parsed) return deny(request, parsed.refusal);
    const kube = options.kube();
    const pools = await readPools(kube);
    if ("pool" in parsed) {
      const pool = pools.find((candidate) => candidate.name === parsed.pool);
      const labels =
        pool && poolRestrictsNamespaces(pool)
          ? await readNamespaceLabels(kube, request.namespace ?? "default")
          : undefined;
      return reviewFloatingIpPool(request, parsed.pool, pools, labels);
    }
    const labels = namespaceLabelsNeeded([parsed.address], pools)
      ? await readNamespaceLabels(kube, request.namespace ?? "default")
      : undefined;
    return reviewPod(request, [parsed.address], {
      maxFloatingIps: 1,
      pools,
      ...(labels ? { labels } : {}),
    });
  },
  "/validate-pod": async (request, options) => {
    const value = floatingIpsToReview(request);
    if (value === undefined) return allow(request); // nothing read
    const maxFloatingIps = await options.maxFloatingIps();
    const parsed = parsePodFloatingIps(value, maxFloatingIps);
    if ("refusal" in parsed) return deny(request, parsed.refusal);
    const kube = options.kube();
    const pools = await readPools(kube);
    const labels = namespaceLabelsNeeded(parsed.ips, pools)
      ? await readNamespaceLabels(kube, request.namespace ?? "default")
      : undefined;
    return reviewPod(request, parsed.ips, {
      maxFloatingIps,
      pools,
      ...(labels ? { labels } : {}),
    });
  },
};

/**
 * The bound from the ConfigMap the nodes' conflists are rendered from, read
 * at most every `cacheMs`; a missing ConfigMap means the plugin's default.
 */
export function readFloatingIpBound(
  kube: () => KubeHttp,
  configMap: { namespace: string; name: string },
  logger: Logger,
  cacheMs = 30_000,
): () => Promise<number> {
  let cached: { max: number; at: number } | undefined;
  return async () => {
    if (cached && Date.now() - cached.at < cacheMs) return cached.max;
    let template: string | undefined;
    try {
      const object = await kube().get<{ data?: Record<string, string> }>(
        `/api/v1/namespaces/${encodeURIComponent(configMap.namespace)}/configmaps/${encodeURIComponent(configMap.name)}`,
      );
      template = object.data?.cni_network_config;
    } catch (error) {
      if (!(error instanceof KubeApiError && error.reason === "NotFound")) throw error;
    }
    const parsed =
      template === undefined ? { max: DEFAULT_MAX_FLOATING_IPS } : parseFloatingIpBound(template);
    if ("error" in parsed) {
      throw new Error(`configmap ${configMap.namespace}/${configMap.name}: ${parsed.error}`);
    }
    if (cached?.max !== parsed.max) {
      logger.log("info", "webhook.config", {
        maxFloatingIpsPerPod: parsed.max,
        from: template === undefined ? "default" : `${configMap.namespace}/${configMap.name}`,
      });
    }
    cached = { max: parsed.max, at: Date.now() };
    return parsed.max;
  };
}

/** Every stored pool IPAM can read (one it cannot is no pool to IPAM either). */
async function readPools(kube: KubeHttp): Promise<IpPool[]> {
  const list = await kube.get<KubeList<KubeObject>>(apiPaths.pools);
  return list.items.flatMap((object) => {
    try {
      return [poolFromObject(object)];
    } catch {
      return [];
    }
  });
}

async function readNamespaceLabels(kube: KubeHttp, name: string): Promise<Record<string, string>> {
  const namespace = await kube.get<{ metadata?: { labels?: Record<string, string> } }>(
    apiPaths.namespace(name),
  );
  return namespace.metadata?.labels ?? {};
}

/** Bytes all requests in flight may still buffer together. */
interface BodyBudget {
  free: number;
}

class BusyError extends Error {
  override readonly name = "BusyError";
}

/**
 * The body, buffered against the shared budget: a request that would take
 * more than is free is refused (503) rather than let slow senders fill memory.
 */
function readBody(req: IncomingMessage, budget: BodyBudget): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const settle = () => {
      if (done) return false;
      done = true;
      budget.free += size;
      return true;
    };
    req.on("data", (chunk: Buffer) => {
      if (done) return;
      if (size + chunk.length > MAX_BODY_BYTES) {
        if (settle())
          reject(new AdmissionReviewError(`the request body is over ${MAX_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      if (chunk.length > budget.free) {
        if (settle()) reject(new BusyError("the webhook is busy; try again"));
        req.pause();
        return;
      }
      budget.free -= chunk.length;
      size += chunk.length;
      chunks.push(chunk);
    });
    req.on("end", () => {
      if (settle()) resolve(Buffer.concat(chunks).toString("utf8"));
    });
    req.on("error", (error) => {
      if (settle()) reject(error);
    });
    req.on("close", () => {
      if (settle()) reject(new Error("the request was closed before its body ended"));
    });
  });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}
