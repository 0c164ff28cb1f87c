// The Datastore port's promises (test/support/datastore-conformance.ts) kept
// by EtcdDatastore against a real etcd, as the CNI plugin opens it. Each case
// starts from an empty /buoy/ tree of the one etcd of this file.
import { afterAll, beforeAll } from "vitest";
import { MAX_TXN_OPS } from "../../src/datastore/kv.js";
import { EtcdDatastore } from "../../src/etcd/etcd-datastore.js";
import { EtcdKv } from "../../src/etcd/etcd-kv.js";
import { keys, Store } from "../../src/etcd/store.js";
import { datastoreConformance } from "../support/datastore-conformance.js";
import { startEtcd, type Etcd } from "../support/harness.js";

let etcd: Etcd;
beforeAll(async () => {
  etcd = await startEtcd();
});
afterAll(async () => {
  await etcd?.stop();
});

datastoreConformance("EtcdDatastore (real etcd)", async () => {
  const kv = new EtcdKv({ endpoints: [etcd.endpoint] });
  const store = new Store(kv);
  const clear = async () => {
    const entries = await kv.list("/buoy/");
    // In parts: etcd takes 128 operations a transaction.
    for (let start = 0; start < entries.length; start += MAX_TXN_OPS) {
      const part = entries.slice(start, start + MAX_TXN_OPS);
      await kv.txn(
        [],
        part.map(({ key }) => ({ delete: key })),
      );
    }
  };
  await clear();
  return {
    datastore: new EtcdDatastore(store),
    namespace: "default",
    addPool: (pool) => store.putPool(pool),
    changePool: (pool) => store.putPool(pool),
    labelNamespace: async (labels) => {
      await kv.txn(
        [],
        [{ put: keys.namespace("default"), value: JSON.stringify({ name: "default", labels }) }],
      );
    },
    addPod: async () => undefined,
    attachedBy: "endpoint",
    claimedAddressWrite: "writes nothing",
    cleanup: clear,
  };
});
