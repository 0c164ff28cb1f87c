// The admission webhook's HTTPS server under callers that are not the API
// server (any pod reaches the host network's port): request bodies in flight
// share one budget, a sender too slow is cut off, and a review from the API
// server still gets its answer meanwhile. Real TLS (openssl), real sockets.
import { connect, type TLSSocket } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServingTls, type ServingTls } from "../../src/admission/webhook-tls.js";
import { startWebhook, type RunningWebhook } from "../../src/admission/webhook-server.js";
import { createStreamLogger } from "../../src/log/logger.js";
import type { KubeHttp } from "../../src/kube/http.js";
import { sleep } from "../support/harness.js";

const LIMITS = { inFlightBodyBytes: 1024 * 1024, connections: 8, headersMs: 1000, requestMs: 1500 };
let tls: ServingTls;
let webhook: RunningWebhook;
const open: TLSSocket[] = [];

beforeAll(async () => {
  tls = await createServingTls(["127.0.0.1"]);
  const unused = (): KubeHttp => {
    throw new Error("no review here reads the API");
  };
  webhook = await startWebhook(
    {
      tls,
      host: "127.0.0.1",
      port: 0,
      kube: unused,
      maxFloatingIps: () => Promise.resolve(16),
      logger: createStreamLogger(() => undefined, "error"),
    },
    LIMITS,
  );
}, 30_000);

afterAll(async () => {
  for (const socket of open) socket.destroy();
  await webhook?.close(100);
});

/** A TLS connection to the webhook, trusting its CA. */
function dial(): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: "127.0.0.1",
      port: webhook.port,
      ca: tls.ca,
      servername: "127.0.0.1",
    });
    open.push(socket);
    socket.once("secureConnect", () => resolve(socket));
    socket.once("error", reject);
  });
}

/** Starts a POST announcing `length` bytes and sends `sent` of them. */
async function slowPost(length: number, sent: number) {
  const socket = await dial();
  let answer = "";
  socket.on("data", (chunk: Buffer) => (answer += chunk.toString()));
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  socket.on("error", () => undefined);
  socket.write(
    `POST /validate-pod HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${length}\r\n\r\n`,
  );
  socket.write(Buffer.alloc(sent, 0x20));
  return { socket, closed, answer: () => answer };
}

/** A pod review as the API server sends one: a pod without floating IPs is allowed. */
async function review(): Promise<number> {
  const body = JSON.stringify({
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: "u1",
      kind: { group: "", version: "v1", kind: "Pod" },
      resource: { group: "", version: "v1", resource: "pods" },
      operation: "CREATE",
      namespace: "default",
      name: "p",
      object: { metadata: { name: "p", namespace: "default" } },
    },
  });
  const socket = await dial();
  let answer = "";
  socket.on("data", (chunk: Buffer) => (answer += chunk.toString()));
  socket.write(
    `POST /validate-pod HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  await new Promise<void>((resolve) => socket.once("close", () => resolve()));
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1]);
}

describe("the webhook's limits", () => {
  it("bodies that would pass the shared budget get 503, and the API server's review still passes", async () => {
    const first = await slowPost(4 * 1024 * 1024, 700 * 1024);
    await sleep(200);
    const second = await slowPost(4 * 1024 * 1024, 700 * 1024);
    await second.closed;
    expect(second.answer()).toMatch(/^HTTP\/1\.1 503/);
    expect(second.answer()).toContain("the webhook is busy");
    // The budget is the first's alone; a small review fits beside it.
    expect(await review()).toBe(200);
    first.socket.destroy();
  }, 20_000);

  it("a sender that stops mid-body is cut off, and its bytes are free again", async () => {
    const stalled = await slowPost(2 * 1024 * 1024, 900 * 1024);
    const started = Date.now();
    await stalled.closed;
    expect(Date.now() - started).toBeLessThan(LIMITS.headersMs + 3000);
    // Its 900 KiB were given back: another as large is buffered, then refused as malformed.
    const next = await slowPost(900 * 1024, 900 * 1024);
    await next.closed;
    expect(next.answer()).toMatch(/^HTTP\/1\.1 400/);
  }, 20_000);

  it("a sender that trickles its body is cut off after the request timeout", async () => {
    const trickle = await slowPost(1024, 1);
    const timer = setInterval(() => trickle.socket.write(" "), 300);
    const started = Date.now();
    await trickle.closed;
    clearInterval(timer);
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThan(LIMITS.requestMs - 300);
    expect(elapsed).toBeLessThan(LIMITS.requestMs + 3000);
  }, 20_000);

  it("a caller that sends no headers is cut off after the headers timeout", async () => {
    const socket = await dial();
    const started = Date.now();
    await new Promise<void>((resolve) => socket.once("close", () => resolve()));
    expect(Date.now() - started).toBeLessThan(LIMITS.headersMs + 3000);
  }, 20_000);
});
