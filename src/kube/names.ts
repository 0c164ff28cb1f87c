// Object names for records keyed by an IP in the Kubernetes datastore
// (ADR 0005). Names must be DNS-1123 subdomains: lower-case letters, digits,
// '-' and '.', starting and ending with a letter or digit. One name per
// address, whatever text it was written in, and the address is recoverable:
//   IPv4  the dotted quad itself             203.0.113.10
//   IPv6  all eight groups, four hex digits each, ':' as '-'
//         2001:db8::7 -> 2001-0db8-0000-0000-0000-0000-0000-0007
//   a prefix (an IPAM block): the address's name, '-', the length
//         10.244.0.64/26 -> 10.244.0.64-26
// (The compressed form cannot be used: '::7' would start with '-'.)
import { formatAddress, parseAddress, parsePrefix } from "../net/address.js";

/** The claim object's name for `ip`; undefined when `ip` is not one address. */
export function ipObjectName(ip: string): string | undefined {
  const address = parseAddress(ip);
  if (!address) return undefined;
  if (address.family === 4) return formatAddress(address);
  return address.value.toString(16).padStart(32, "0").match(/.{4}/g)!.join("-");
}

/** The address an object name stands for (canonical text); undefined for other names. */
export function ipOfObjectName(name: string): string | undefined {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(name)) {
    const address = parseAddress(name);
    return address ? formatAddress(address) : undefined;
  }
  if (!/^[0-9a-f]{4}(-[0-9a-f]{4}){7}$/.test(name)) return undefined;
  return formatAddress({ family: 6, value: BigInt(`0x${name.replaceAll("-", "")}`) });
}

/** The object name for a prefix (an IPAM block); undefined when `cidr` is not one. */
export function prefixObjectName(cidr: string): string | undefined {
  const prefix = parsePrefix(cidr);
  if (!prefix) return undefined;
  return `${ipObjectName(formatAddress({ family: prefix.family, value: prefix.base }))}-${prefix.length}`;
}

/**
 * The endpoint object's name (ADR 0008): the first 40 hex digits of
 * sha256("<node>/<container ID>/<interface>"), so the plugin's DEL, CHECK and
 * the agent find it by what they know without a list, whatever characters the
 * runtime's container ID has. WebCrypto: no node:crypto on the CNI path.
 */
export async function endpointObjectName(
  node: string,
  containerID: string,
  ifname: string,
): Promise<string> {
  const digest = new Uint8Array(
    await crypto.subtle.digest(
      "SHA-256",
      new TextEncoder().encode(`${node}/${containerID}/${ifname}`),
    ),
  );
  return [...digest]
    .map((byte) => byte.toString(16).padStart(2, "0"))
    .join("")
    .slice(0, 40);
}
