// The pod annotation that asks for floating IPs, parsed exactly as the Calico
// page documents it: a JSON array of IP address strings.
import { BUOY_API_GROUP } from "../model/api-group.js";
import { canonicalAddress } from "../net/address.js";

export const FLOATING_IPS_ANNOTATION = "cni.projectcalico.org/floatingIPs";
/** buoy's own (SPEC 3.7): "true" opts the pod in to leaving from its floating IPs. */
export const FLOATING_IP_EGRESS_ANNOTATION = `${BUOY_API_GROUP}/floating-ip-egress`;

export class FloatingIpError extends Error {
  override readonly name = "FloatingIpError";
}

/**
 * Parses the annotation value into canonical, de-duplicated addresses, in the
 * order given. Throws FloatingIpError with SPEC §4's words.
 */
export function parseFloatingIps(value: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch (error) {
    throw new FloatingIpError(`failed to parse '${value}' as JSON: ${(error as Error).message}`);
  }
  if (!Array.isArray(parsed)) {
    throw new FloatingIpError(
      `failed to parse '${value}' as JSON: expected an array of strings, got ${describeJson(parsed)}`,
    );
  }
  for (const entry of parsed) {
    if (typeof entry !== "string") {
      throw new FloatingIpError(
        `failed to parse '${value}' as JSON: expected an array of strings, found ${describeJson(entry)}`,
      );
    }
  }
  return canonicalFloatingIps(parsed as string[]);
}

/**
 * Whether the pod opted in to egress from its floating IPs: "true" or "false",
 * absent is false. Throws FloatingIpError for anything else.
 */
export function parseEgress(value: string | undefined): boolean {
  if (value === undefined || value === "false") return false;
  if (value === "true") return true;
  throw new FloatingIpError(
    `invalid ${FLOATING_IP_EGRESS_ANNOTATION} '${value}': expected "true" or "false"`,
  );
}

/** Each entry as one canonical address, de-duplicated in order; SPEC §4's words for a bad one. */
export function canonicalFloatingIps(entries: readonly string[]): string[] {
  const seen = new Set<string>();
  for (const entry of entries) {
    const ip = canonicalAddress(entry);
    if (ip === undefined) {
      throw new FloatingIpError(`invalid floating IP '${entry}': not an IP address`);
    }
    seen.add(ip);
  }
  return [...seen];
}

function describeJson(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}
