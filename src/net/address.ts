// IP address and prefix math on top of ipaddr.js: parsing is strict (a single
// address in its usual textual form) and arithmetic runs on bigint so IPv4 and
// IPv6 share one code path.
import ipaddr from "ipaddr.js";

export type Family = 4 | 6;

export interface Address {
  readonly family: Family;
  readonly value: bigint;
}

export interface Prefix {
  readonly family: Family;
  /** Network address (host bits zero). */
  readonly base: bigint;
  readonly length: number;
}

const BITS: Record<Family, number> = { 4: 32, 6: 128 };

export function familyBits(family: Family): number {
  return BITS[family];
}

/** Parses one IP address; undefined for anything else (CIDRs, names, zones, odd IPv4 forms). */
export function parseAddress(text: string): Address | undefined {
  const v4 = parseDottedQuad(text);
  if (v4 !== undefined) return { family: 4, value: BigInt(v4) };
  if (!text.includes(":") || text.includes("%")) return undefined;
  const hex = embeddedIpv4AsHex(text);
  if (hex === undefined || !ipaddr.IPv6.isValid(hex)) return undefined;
  return { family: 6, value: bytesToBigint(ipaddr.IPv6.parse(hex).toByteArray()) };
}

/**
 * `a.b.c.d`, each part decimal 0-255 without leading zeros, as a number;
 * undefined for anything else. What ipaddr.js's isValidFourPartDecimal
 * accepts, without its regular expressions and byte arrays: the agent parses
 * every address of every endpoint (2.8 s of a 100k-binding plan went there).
 */
function parseDottedQuad(text: string): number | undefined {
  let value = 0;
  let part = 0;
  let digits = 0;
  let parts = 0;
  for (let i = 0; i <= text.length; i++) {
    const code = i < text.length ? text.charCodeAt(i) : 46; // a final "."
    if (code === 46) {
      if (digits === 0 || part > 255) return undefined;
      value = value * 256 + part;
      parts += 1;
      part = 0;
      digits = 0;
    } else if (code >= 48 && code <= 57) {
      if (digits === 1 && part === 0) return undefined; // a leading zero
      part = part * 10 + (code - 48);
      digits += 1;
      if (digits > 3) return undefined;
    } else {
      return undefined;
    }
  }
  return parts === 4 ? value : undefined;
}

/**
 * IPv6 text with a trailing dotted quad (`::ffff:10.0.0.1`) as all hex groups,
 * the quad strictly decimal. ipaddr.js reads `::a.b.c.d` as `::ffff:a.b.c.d`;
 * RFC 4291 says it is `::a.b.c.d`, an IPv6 address that is not IPv4-mapped.
 */
function embeddedIpv4AsHex(text: string): string | undefined {
  if (!text.includes(".")) return text;
  const colon = text.lastIndexOf(":");
  const quad = text.slice(colon + 1);
  if (!ipaddr.IPv4.isValidFourPartDecimal(quad)) return undefined;
  const [a = 0, b = 0, c = 0, d = 0] = ipaddr.IPv4.parse(quad).octets;
  const groups = [(a << 8) | b, (c << 8) | d].map((group) => group.toString(16));
  return `${text.slice(0, colon + 1)}${groups.join(":")}`;
}

/**
 * The special-purpose range an address lies in, in ipaddr.js's names
 * (`unspecified`, `loopback`, `multicast`, `linkLocal`, `broadcast`,
 * `ipv4Mapped`, `private`, …; `unicast` for the rest).
 */
export function addressRange(address: Address): string {
  const bytes = bigintToBytes(address.value, BITS[address.family] / 8);
  return (address.family === 4 ? new ipaddr.IPv4(bytes) : new ipaddr.IPv6(bytes)).range();
}

/** Parses `a.b.c.d/n` or `x::/n`; host bits must be zero unless `allowHostBits`. */
export function parsePrefix(text: string, allowHostBits = false): Prefix | undefined {
  const slash = text.indexOf("/");
  if (slash < 0) return undefined;
  const address = parseAddress(text.slice(0, slash));
  const lengthText = text.slice(slash + 1);
  if (!address || !/^\d{1,3}$/.test(lengthText)) return undefined;
  const length = Number(lengthText);
  if (length > BITS[address.family]) return undefined;
  const base = address.value & prefixMask(address.family, length);
  if (!allowHostBits && base !== address.value) return undefined;
  return { family: address.family, base, length };
}

export function formatAddress(address: Address): string {
  if (address.family === 4) {
    const value = Number(address.value);
    return `${value >>> 24}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
  }
  return new ipaddr.IPv6(bigintToBytes(address.value, 16)).toString();
}

export function formatPrefix(prefix: Prefix): string {
  return `${formatAddress({ family: prefix.family, value: prefix.base })}/${prefix.length}`;
}

/** The canonical text of an address given as text, or undefined when it is not one. */
export function canonicalAddress(text: string): string | undefined {
  // Strict dotted-quad text is its own canonical form.
  if (parseDottedQuad(text) !== undefined) return text;
  const address = parseAddress(text);
  return address && formatAddress(address);
}

export function prefixMask(family: Family, length: number): bigint {
  const bits = BigInt(BITS[family]);
  const all = (1n << bits) - 1n;
  return all ^ ((1n << (bits - BigInt(length))) - 1n);
}

export function prefixSize(prefix: Prefix): bigint {
  return 1n << BigInt(BITS[prefix.family] - prefix.length);
}

export function prefixContains(prefix: Prefix, address: Address): boolean {
  return (
    prefix.family === address.family &&
    (address.value & prefixMask(prefix.family, prefix.length)) === prefix.base
  );
}

/** The prefix of `length` bits that contains `address`. */
export function enclosingPrefix(address: Address, length: number): Prefix {
  return {
    family: address.family,
    base: address.value & prefixMask(address.family, length),
    length,
  };
}

function bytesToBigint(bytes: number[]): bigint {
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  return value;
}

function bigintToBytes(value: bigint, length: number): number[] {
  const bytes = new Array<number>(length);
  for (let i = length - 1; i >= 0; i--) {
    bytes[i] = Number(value & 0xffn);
    value >>= 8n;
  }
  return bytes;
}
