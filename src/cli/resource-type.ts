// The resource types named on the command line, with calicoctl's aliases.

export type ResourceType = "ippools" | "endpoints" | "floatingips" | "nodes";

const ALIASES: Record<ResourceType, readonly string[]> = {
  ippools: ["ippools", "ippool", "ipps", "ipp", "pools", "pool"],
  endpoints: ["workloadendpoints", "workloadendpoint", "weps", "wep", "endpoints", "endpoint"],
  floatingips: ["floatingips", "floatingip", "fips", "fip"],
  nodes: ["nodes", "node", "no"],
};

export const RESOURCE_TYPES = Object.keys(ALIASES) as ResourceType[];

export function parseResourceType(text: string): ResourceType | undefined {
  const lower = text.toLowerCase();
  return RESOURCE_TYPES.find((type) => ALIASES[type].includes(lower));
}

/** For help texts: `ippools (ippool, ipps, ...)`. */
export function describeResourceTypes(): string {
  return RESOURCE_TYPES.map(
    (type) => `  ${type.padEnd(12)} ${ALIASES[type].slice(1).join(", ")}`,
  ).join("\n");
}
