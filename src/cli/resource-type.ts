// The resource types named on the command line, with calicoctl's aliases.
import { UsageError } from "./cli-error.js";

export type ResourceType = "ippools" | "endpoints" | "floatingips" | "nodes" | "bgppeers";

const ALIASES: Record<ResourceType, readonly string[]> = {
  ippools: ["ippools", "ippool", "ipps", "ipp", "pools", "pool"],
  endpoints: ["workloadendpoints", "workloadendpoint", "weps", "wep", "endpoints", "endpoint"],
  floatingips: ["floatingips", "floatingip", "fips", "fip"],
  nodes: ["nodes", "node", "no"],
  bgppeers: ["bgppeers", "bgppeer", "bgpps", "bgpp", "bps", "bp"],
};

export const RESOURCE_TYPES = Object.keys(ALIASES) as ResourceType[];

/** The types by their calicoctl-style names, for messages. */
export function resourceTypeNames(): string[] {
  return RESOURCE_TYPES.map((type) => ALIASES[type][0] ?? type);
}

/** The usage error for a type that is none of them. */
export function unknownResourceType(text: string): UsageError {
  return new UsageError(
    `unknown resource type '${text}' (one of ${resourceTypeNames().join(", ")})`,
  );
}

export function parseResourceType(text: string): ResourceType | undefined {
  const lower = text.toLowerCase();
  return RESOURCE_TYPES.find((type) => ALIASES[type].includes(lower));
}

/** For help texts: one line per type, its name and then its aliases. */
export function describeResourceTypes(): string {
  return RESOURCE_TYPES.map((type) => {
    const [name = type, ...aliases] = ALIASES[type];
    return `  ${name.padEnd(18)} ${aliases.join(", ")}`;
  }).join("\n");
}
