import { createServer, type Server } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { DatastoreUnavailableError } from "../datastore/unavailable-error.js";
import { EtcdKv } from "./etcd-kv.js";

const servers: Server[] = [];
afterEach(() => servers.splice(0).forEach((server) => server.close()));

/** A stand-in member answering every request with one status and body. */
async function member(status: number, body: object): Promise<string> {
  const server = createServer((_request, response) =>
    response.writeHead(status).end(JSON.stringify(body)),
  );
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address() as { port: number };
  return `http://127.0.0.1:${address.port}`;
}

describe("EtcdKv", () => {
  it("EtcdKv fails over to the next endpoint when a member answers 503 (no leader)", async () => {
    const sick = await member(503, { error: "etcdserver: no leader", code: 14 });
    const healthy = await member(200, { header: { revision: "9" }, kvs: [] });
    const kv = new EtcdKv({ endpoints: [sick, healthy] });
    await expect(kv.list("/buoy/v1/")).resolves.toEqual([]);
  });

  it("EtcdKv names every endpoint when none answers", async () => {
    const sick = await member(503, { error: "etcdserver: no leader" });
    const kv = new EtcdKv({ endpoints: [sick, "http://127.0.0.1:9"], timeoutMs: 1000 });
    const error = await kv.list("/buoy/v1/").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatastoreUnavailableError);
    expect(String((error as Error).message)).toMatch(/no leader.*127\.0\.0\.1:9/);
  });

  it("EtcdKv reports a client error (4xx) at once", async () => {
    const picky = await member(400, { error: "bad request" });
    const kv = new EtcdKv({ endpoints: [picky] });
    await expect(kv.get("/x")).rejects.toThrow(/HTTP 400/);
  });
});
