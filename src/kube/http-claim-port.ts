// The claim protocol's port (claim-protocol.ts) over plain HTTPS (http.ts):
// the CNI plugin's side, which must not load @kubernetes/client-node.
import type { IpamBlock, IpamRegion } from "../model/records.js";
import { apiPaths } from "./api-paths.js";
import type { ClaimPort } from "./claim-protocol.js";
import { KubeApiError, type KubeHttp } from "./http.js";
import { blockFromObject, regionFromObject, type KubeObject } from "./objects.js";

/** Errors other than AlreadyExists (create) and NotFound (get) reach the caller as they are. */
export function httpClaimPort(http: KubeHttp): ClaimPort {
  const getOrUndefined = async <T>(path: string): Promise<T | undefined> => {
    try {
      return await http.get<T>(path);
    } catch (error) {
      if (error instanceof KubeApiError && error.reason === "NotFound") return undefined;
      throw error;
    }
  };
  return {
    async createClaim(object) {
      try {
        return (await http.create<KubeObject>(apiPaths.claims, object)).metadata.uid ?? "";
      } catch (error) {
        if (error instanceof KubeApiError && error.reason === "AlreadyExists") return undefined;
        throw error;
      }
    },
    getClaim: (ip) => getOrUndefined<KubeObject>(apiPaths.claim(ip)),
    deleteClaim: (ip, uid) => http.delete(apiPaths.claim(ip), { uid }),
    async getBlock(cidr) {
      const object = await getOrUndefined<KubeObject<Partial<IpamBlock>>>(apiPaths.block(cidr));
      return object && blockFromObject(object).value;
    },
    async getRegion(cidr) {
      const object = await getOrUndefined<KubeObject<Partial<IpamRegion>>>(apiPaths.region(cidr));
      return object && regionFromObject(object).value;
    },
  };
}
