// `buoy apply` of a file far larger than one etcd transaction (issue 14 item
// 3), through the built CLI against a real etcd with its default
// --max-txn-ops (128): applied in parts with progress on stderr, every
// record there, and applied again unchanged.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EtcdKv } from "../../src/etcd/etcd-kv.js";
import { keys, Store } from "../../src/etcd/store.js";
import { ROOT, runPrefix, startEtcd, type Etcd } from "../support/harness.js";

const NODES = 3000;
let etcd: Etcd;
let dir: string;

beforeAll(async () => {
  etcd = await startEtcd();
  dir = mkdtempSync(join(tmpdir(), `${runPrefix()}-apply-`));
}, 30_000);

afterAll(async () => {
  await etcd?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const buoy = (...args: string[]) =>
  spawnSync(process.execPath, [join(ROOT, "dist/buoy"), ...args], {
    encoding: "utf8",
    env: { ...process.env, ETCD_ENDPOINTS: etcd.endpoint },
  });

describe("buoy apply of a large file", () => {
  it(`applies ${NODES} nodes and a pool in parts, and again unchanged`, () => {
    const documents = [
      "apiVersion: buoy.dev/v1\nkind: IPPool\nmetadata: { name: pods }\nspec: { cidr: 10.244.0.0/16 }",
      ...Array.from(
        { length: NODES },
        (_, i) =>
          `apiVersion: buoy.dev/v1\nkind: Node\nmetadata: { name: node-${i} }\nspec: { addresses: [192.168.${i >> 8}.${i & 255}] }`,
      ),
    ];
    const file = join(dir, "big.yaml");
    writeFileSync(file, documents.join("\n---\n"));
    const applied = buoy("apply", "-f", file);
    expect(applied.status, applied.stderr).toBe(0);
    expect(applied.stderr).toContain(`applied 1 of ${NODES + 1}`);
    expect(applied.stderr).toContain(`applied ${NODES + 1} of ${NODES + 1}`);
    const again = buoy("apply", "-f", file);
    expect(again.status, again.stderr).toBe(0);
  }, 120_000);

  it("every record is in etcd", async () => {
    const store = new Store(new EtcdKv({ endpoints: [etcd.endpoint] }));
    expect((await store.kv.list(keys.nodes)).length).toBe(NODES);
    expect((await store.listPools()).map((pool) => pool.name)).toEqual(["pods"]);
  });
});
