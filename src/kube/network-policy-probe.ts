// buoy enforces no NetworkPolicy: the seed's `"policy": {"type": "k8s"}` is
// accepted and changes nothing (docs/security.md). So that nobody believes
// their policies hold, the agent asks whether the cluster has any: one list
// of at most one object across namespaces (limit=1), at start and on every
// resync, without a watch or a cache.
import { NetworkingV1Api, type KubeConfig } from "@kubernetes/client-node";

export class NetworkPolicyProbe {
  readonly #api: NetworkingV1Api;

  constructor(kubeConfig: KubeConfig) {
    this.#api = kubeConfig.makeApiClient(NetworkingV1Api);
  }

  /** Whether any NetworkPolicy object exists, in any namespace. */
  async readPresent(): Promise<boolean> {
    const list = await this.#api.listNetworkPolicyForAllNamespaces({ limit: 1 });
    return list.items.length > 0;
  }
}
