// The Kubernetes datastore's reads over plain HTTPS (kube-datastore.ts and
// release-container.ts): an object by path (undefined when NotFound), the
// lists by label, from the API server's watch cache where a moment's lag
// only costs a retry, and the API errors told apart by their reason.
import type { FloatingIpClaim, IpPool, IpamBlock, Versioned } from "../model/records.js";
import { apiPaths as paths } from "./api-paths.js";
import { KubeApiError, type KubeHttp } from "./http.js";
import type { KubeReadCache } from "./node-cache.js";
import {
  blockFromObject,
  blockNodeLabel,
  claimFromObject,
  poolFromObject,
  type KubeList,
  type KubeObject,
} from "./objects.js";

export type ClaimObject = KubeObject<Partial<FloatingIpClaim>>;

/** Whether `error` is the API's answer with one of `reasons` (NotFound, Conflict, ...). */
export function isReason(error: unknown, ...reasons: string[]): boolean {
  return error instanceof KubeApiError && reasons.includes(error.reason);
}

export async function getOrUndefined<T>(http: KubeHttp, path: string): Promise<T | undefined> {
  try {
    return await http.get<T>(path);
  } catch (error) {
    if (isReason(error, "NotFound")) return undefined;
    throw error;
  }
}

export async function exists(http: KubeHttp, path: string): Promise<boolean> {
  return (await getOrUndefined(http, path)) !== undefined;
}

/** `path` with the query of the parameters given (none: no `?`). */
function withQuery(path: string, query: Record<string, string | undefined>): string {
  const given = Object.entries(query).filter((entry): entry is [string, string] => !!entry[1]);
  const params = new URLSearchParams(given).toString();
  return params ? `${path}?${params}` : path;
}

export async function listPools(http: KubeHttp): Promise<IpPool[]> {
  return validPools((await http.get<KubeList<KubeObject>>(paths.pools)).items);
}

/** Claims, all or by label; `resourceVersion` "0": from the API server's watch cache. */
export async function listClaimObjects(
  http: KubeHttp,
  labelSelector?: string,
  resourceVersion?: string,
): Promise<ClaimObject[]> {
  const path = withQuery(paths.claims, { labelSelector, resourceVersion });
  return (await http.get<KubeList<ClaimObject>>(path)).items;
}

export async function listClaims(
  http: KubeHttp,
  resourceVersion?: string,
): Promise<Versioned<FloatingIpClaim>[]> {
  return (await listClaimObjects(http, undefined, resourceVersion)).map((object) => ({
    value: claimFromObject(object),
    revision: object.metadata.resourceVersion ?? "",
  }));
}

export async function listEndpointObjects(
  http: KubeHttp,
  labelSelector: string | undefined,
): Promise<KubeObject[]> {
  return (await http.get<KubeList<KubeObject>>(withQuery(paths.endpoints, { labelSelector })))
    .items;
}

/**
 * The blocks labelled with `node` (objects.ts blockNodeLabels); every block
 * for a node whose name cannot be a label. `resourceVersion` "0": from the
 * API server's watch cache. The resident server's `cache` answers first.
 */
export async function listNodeBlocks(
  http: KubeHttp,
  node: string,
  resourceVersion: string | undefined,
  cache: KubeReadCache | undefined,
): Promise<Versioned<IpamBlock>[]> {
  const cached = cache?.nodeBlocks(node);
  if (cached) return cached.map(blockFromObject);
  const path = withQuery(paths.blocks, { labelSelector: blockNodeLabel(node), resourceVersion });
  return (await http.get<KubeList<KubeObject<Partial<IpamBlock>>>>(path)).items.map(
    blockFromObject,
  );
}

/** An invalid pool object (the CRD's schema lets few through) is no pool. */
function validPools(objects: readonly KubeObject[]): IpPool[] {
  return objects.flatMap((object) => {
    try {
      return [poolFromObject(object)];
    } catch {
      return [];
    }
  });
}
