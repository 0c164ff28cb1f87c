import { afterAll, beforeAll } from "vitest";
import { EtcdKv } from "../../src/etcd/etcd-kv.js";
import { kvConformance } from "../support/kv-conformance.js";
import { startEtcd, type Etcd } from "../support/harness.js";

let etcd: Etcd;
beforeAll(async () => {
  etcd = await startEtcd();
});
afterAll(async () => {
  await etcd?.stop();
});

kvConformance("EtcdKv (real etcd)", () => new EtcdKv({ endpoints: [etcd.endpoint] }));
