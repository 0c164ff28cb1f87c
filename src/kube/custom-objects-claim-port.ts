// The claim protocol's port (claim-protocol.ts) over @kubernetes/client-node's
// CustomObjectsApi: the agent's side. Only the agent imports this file; the
// CNI plugin's (http-claim-port.ts) must not load client-node.
import type { CustomObjectsApi } from "@kubernetes/client-node";
import { BUOY_API_GROUP, BUOY_VERSION } from "../model/api-group.js";
import type { ClaimPort } from "./claim-protocol.js";
import { statusOf } from "./describe-kube-error.js";
import { ipObjectName, prefixObjectName } from "./names.js";
import { blockFromObject, regionFromObject, type KubeObject } from "./objects.js";

/** A claim already gone or replaced (404, 409) counts as deleted. */
export function customObjectsClaimPort(custom: CustomObjectsApi): ClaimPort {
  const params = (plural: string) => ({ group: BUOY_API_GROUP, version: BUOY_VERSION, plural });
  const getOrUndefined = async (plural: string, name: string): Promise<KubeObject | undefined> => {
    try {
      return (await custom.getClusterCustomObject({ ...params(plural), name })) as KubeObject;
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw error;
    }
  };
  return {
    async createClaim(body) {
      try {
        const created = (await custom.createClusterCustomObject({
          ...params("floatingipclaims"),
          body,
        })) as KubeObject;
        return created.metadata.uid ?? "";
      } catch (error) {
        if (statusOf(error) === 409) return undefined;
        throw error;
      }
    },
    getClaim: (ip) => getOrUndefined("floatingipclaims", ipObjectName(ip) ?? ip),
    async deleteClaim(ip, uid) {
      try {
        await custom.deleteClusterCustomObject({
          ...params("floatingipclaims"),
          name: ipObjectName(ip) ?? ip,
          body: { preconditions: { uid } },
        });
      } catch (error) {
        if (statusOf(error) !== 404 && statusOf(error) !== 409) throw error;
      }
    },
    async getBlock(cidr) {
      const object = await getOrUndefined("ipamblocks", prefixObjectName(cidr) ?? cidr);
      return object && blockFromObject(object).value;
    },
    async getRegion(cidr) {
      const object = await getOrUndefined("ipamregions", prefixObjectName(cidr) ?? cidr);
      return object && regionFromObject(object).value;
    },
  };
}
