import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { createKubeHttp, inFlightLimit } from "./http.js";

describe("inFlightLimit()", () => {
  it("runs at most `max` at once and all of them in the end, in order", async () => {
    const limit = inFlightLimit(3);
    let active = 0;
    let most = 0;
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        limit.run(async () => {
          active += 1;
          most = Math.max(most, active);
          await new Promise((resolve) => setTimeout(resolve, 2));
          order.push(i);
          active -= 1;
        }),
      ),
    );
    expect(most).toBe(3);
    expect(order).toHaveLength(20);
  });

  it("frees the slot of work that fails", async () => {
    const limit = inFlightLimit(1);
    await expect(limit.run(() => Promise.reject(new Error("no")))).rejects.toThrow("no");
    await expect(limit.run(() => Promise.resolve(7))).resolves.toBe(7);
  });
});

describe("createKubeHttp()", () => {
  it("keeps at most MAX_IN_FLIGHT requests open against the server", async () => {
    let open = 0;
    let most = 0;
    const server = createServer((request, response) => {
      open += 1;
      most = Math.max(most, open);
      setTimeout(() => {
        open -= 1;
        response.writeHead(200, { "content-type": "application/json" }).end("{}");
      }, 5);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const http = createKubeHttp({ server: `http://127.0.0.1:${port}` }, 5000, 4);
      await Promise.all(Array.from({ length: 40 }, (_, i) => http.get(`/x/${i}`)));
      expect(most).toBe(4);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
