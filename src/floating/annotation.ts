// The pod annotation that asks for floating IPs, parsed exactly as the Calico
// page documents it: a JSON array of IP address strings.
import { BUOY_API_GROUP } from "../model/api-group.js";
import { addressRange, formatAddress, parseAddress } from "../net/address.js";
import { ECHO_MAX_CHARS, truncateEcho } from "./truncate-echo.js";

export const FLOATING_IPS_ANNOTATION = "cni.projectcalico.org/floatingIPs";
/** buoy's own (SPEC 3.7): "true" opts the pod in to leaving from its floating IPs. */
export const FLOATING_IP_EGRESS_ANNOTATION = `${BUOY_API_GROUP}/floating-ip-egress`;

/** The largest annotation value buoy reads (UTF-8 bytes); a larger one is refused unread. */
export const MAX_ANNOTATION_BYTES = 4096;

export class FloatingIpError extends Error {
  override readonly name = "FloatingIpError";
}

/** Addresses that never stand for a pod, by ipaddr.js's range name: SPEC §4's "<why>". */
const NEVER_FLOATING: Readonly<Record<string, string>> = {
  unspecified: "unspecified address",
  loopback: "loopback address",
  multicast: "multicast address",
  linkLocal: "link-local address",
  broadcast: "broadcast address",
  ipv4Mapped: "IPv4-mapped IPv6 address",
};

/**
 * Parses the annotation value into canonical, de-duplicated addresses, in the
 * order given. Throws FloatingIpError with SPEC §4's words.
 */
export function parseFloatingIps(value: string): string[] {
  refuseOversized(FLOATING_IPS_ANNOTATION, value);
  const echoed = truncateEcho(value);
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch (error) {
    // Some engines quote the offending text in their message: bounded too.
    const reason = truncateEcho((error as Error).message, 2 * ECHO_MAX_CHARS);
    throw new FloatingIpError(`failed to parse '${echoed}' as JSON: ${reason}`);
  }
  if (!Array.isArray(parsed)) {
    throw new FloatingIpError(
      `failed to parse '${echoed}' as JSON: expected an array of strings, got ${describeJson(parsed)}`,
    );
  }
  for (const entry of parsed) {
    if (typeof entry !== "string") {
      throw new FloatingIpError(
        `failed to parse '${echoed}' as JSON: expected an array of strings, found ${describeJson(entry)}`,
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
  refuseOversized(FLOATING_IP_EGRESS_ANNOTATION, value);
  throw new FloatingIpError(
    `invalid ${FLOATING_IP_EGRESS_ANNOTATION} '${truncateEcho(value)}': expected "true" or "false"`,
  );
}

/**
 * Each entry as one canonical address, de-duplicated in order; SPEC §4's
 * words for a bad one: not one address, or one that never stands for a pod.
 */
export function canonicalFloatingIps(entries: readonly string[]): string[] {
  const seen = new Set<string>();
  for (const entry of entries) {
    const address = parseAddress(entry);
    const why = address ? NEVER_FLOATING[addressRange(address)] : "not an IP address";
    if (!address || why !== undefined) {
      throw new FloatingIpError(`invalid floating IP '${truncateEcho(entry)}': ${why}`);
    }
    seen.add(formatAddress(address));
  }
  return [...seen];
}

/** Refuses an annotation value over MAX_ANNOTATION_BYTES before anything reads it. */
function refuseOversized(annotation: string, value: string): void {
  const bytes = new TextEncoder().encode(value).length;
  if (bytes > MAX_ANNOTATION_BYTES) {
    throw new FloatingIpError(
      `annotation ${annotation} is ${bytes} bytes; at most ${MAX_ANNOTATION_BYTES}`,
    );
  }
}

function describeJson(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}
