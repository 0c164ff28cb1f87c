// The CNI result in one internal shape, printed in whichever version the
// config asks for, and read back (prevResult, a delegated IPAM's output) from
// any version.
import { parseAddress, parsePrefix } from "../net/address.js";
import { compareVersions, type CniVersion } from "./versions.js";

export interface ResultInterface {
  name: string;
  mac?: string;
  sandbox?: string;
}

export interface ResultIp {
  /** CIDR notation: address/prefix length. */
  address: string;
  gateway?: string;
  /** Index into `interfaces`. */
  interface?: number;
}

export interface ResultRoute {
  dst: string;
  gw?: string;
}

export interface Dns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface CniResult {
  interfaces: ResultInterface[];
  ips: ResultIp[];
  routes: ResultRoute[];
  dns: Dns;
}

export function renderResult(result: CniResult, version: CniVersion): Record<string, unknown> {
  if (compareVersions(version, "0.3.0") < 0) return renderLegacy(result, version);
  const withFamily = compareVersions(version, "1.0.0") < 0;
  return {
    cniVersion: version,
    ...(result.interfaces.length > 0 ? { interfaces: result.interfaces } : {}),
    ips: result.ips.map((ip) => ({
      ...(withFamily ? { version: String(familyOfCidr(ip.address)) } : {}),
      ...ip,
    })),
    ...(result.routes.length > 0 ? { routes: result.routes } : {}),
    dns: result.dns,
  };
}

/** 0.1.0 / 0.2.0: one `ip4` and one `ip6` section, routes split by family. */
function renderLegacy(result: CniResult, version: CniVersion): Record<string, unknown> {
  const section = (family: 4 | 6) => {
    const ip = result.ips.find((candidate) => familyOfCidr(candidate.address) === family);
    if (!ip) return {};
    const routes = result.routes.filter((route) => familyOfCidr(route.dst) === family);
    return {
      [`ip${family}`]: {
        ip: ip.address,
        ...(ip.gateway ? { gateway: ip.gateway } : {}),
        ...(routes.length > 0 ? { routes } : {}),
      },
    };
  };
  return { cniVersion: version, ...section(4), ...section(6), dns: result.dns };
}

/** Reads a result of any version; throws on a shape it cannot read. */
export function parseResult(input: unknown): CniResult {
  if (typeof input !== "object" || input === null) throw new Error("result is not a JSON object");
  const raw = input as Record<string, unknown>;
  const dns = (raw.dns ?? {}) as Dns;
  if (Array.isArray(raw.ips)) {
    return {
      interfaces: Array.isArray(raw.interfaces) ? (raw.interfaces as ResultInterface[]) : [],
      ips: (raw.ips as Record<string, unknown>[]).map((ip) => {
        if (typeof ip.address !== "string") throw new Error("result ip without an address");
        return {
          address: ip.address,
          ...(typeof ip.gateway === "string" ? { gateway: ip.gateway } : {}),
          ...(typeof ip.interface === "number" ? { interface: ip.interface } : {}),
        };
      }),
      routes: Array.isArray(raw.routes) ? (raw.routes as ResultRoute[]) : [],
      dns,
    };
  }
  const result: CniResult = { interfaces: [], ips: [], routes: [], dns };
  for (const key of ["ip4", "ip6"]) {
    const section = raw[key] as
      { ip?: string; gateway?: string; routes?: ResultRoute[] } | undefined;
    if (!section) continue;
    if (typeof section.ip !== "string") throw new Error(`result ${key} without an ip`);
    result.ips.push({
      address: section.ip,
      ...(section.gateway ? { gateway: section.gateway } : {}),
    });
    result.routes.push(...(section.routes ?? []));
  }
  return result;
}

function familyOfCidr(cidr: string): 4 | 6 {
  const prefix = parsePrefix(cidr, true);
  if (prefix) return prefix.family;
  return parseAddress(cidr)?.family ?? (cidr.includes(":") ? 6 : 4);
}

/** The bare address of a CIDR-notation result address. */
export function addressOf(cidr: string): string {
  return cidr.split("/")[0] ?? cidr;
}
