// The Datastore port's promises (test/support/datastore-conformance.ts) kept
// by EtcdDatastore over the in-memory Kv; the same suite runs against a real
// etcd (test/integration) and the Kubernetes datastore (test/kube).
import { datastoreConformance } from "../../test/support/datastore-conformance.js";
import { EtcdDatastore } from "./etcd-datastore.js";
import { MemoryKv } from "./memory-kv.js";
import { keys, Store } from "./store.js";

datastoreConformance("EtcdDatastore over MemoryKv", async () => {
  const store = new Store(new MemoryKv());
  return {
    datastore: new EtcdDatastore(store),
    namespace: "default",
    addPool: (pool) => store.putPool(pool),
    changePool: (pool) => store.putPool(pool),
    labelNamespace: async (labels) => {
      await store.kv.txn(
        [],
        [{ put: keys.namespace("default"), value: JSON.stringify({ name: "default", labels }) }],
      );
    },
    addPod: async () => undefined,
    attachedBy: "endpoint",
    claimedAddressWrite: "writes nothing",
    cleanup: async () => {},
  };
});
