import { describe, expect, it } from "vitest";
import { MAX_ANNOTATION_BYTES, parseEgress, parseFloatingIps } from "./annotation.js";

/** A JSON array of `count` distinct addresses in 10.0.0.0/8. */
const arrayOf = (count: number): string =>
  JSON.stringify(Array.from({ length: count }, (_, i) => `10.0.${i >> 8}.${i & 255}`));

describe("parseFloatingIps()", () => {
  const accepted: { desc: string; value: string; want: string[] }[] = [
    { desc: "the seed's example", value: '["10.0.0.1"]', want: ["10.0.0.1"] },
    { desc: "several IPv4", value: '["10.0.0.1", "10.0.0.2"]', want: ["10.0.0.1", "10.0.0.2"] },
    { desc: "mixed families", value: '["10.0.0.1","fd00::1"]', want: ["10.0.0.1", "fd00::1"] },
    { desc: "IPv6 is canonicalised", value: '["FD00:0:0::0001"]', want: ["fd00::1"] },
    {
      desc: "a repeated entry is accepted once",
      value: '["10.0.0.1","10.0.0.1"]',
      want: ["10.0.0.1"],
    },
    {
      desc: "the same IPv6 in two spellings is one",
      value: '["fd00::1","fd00:0::1"]',
      want: ["fd00::1"],
    },
    { desc: "an empty array asks for nothing", value: "[]", want: [] },
    { desc: "whitespace around JSON", value: ' [ "10.0.0.1" ] ', want: ["10.0.0.1"] },
    { desc: "::a.b.c.d as the IPv6 address it is", value: '["::10.0.0.1"]', want: ["::a00:1"] },
    {
      desc: "IPv4-translated IPv6 (not IPv4-mapped)",
      value: '["::ffff:0:10.0.0.1"]',
      want: ["::ffff:0:a00:1"],
    },
    {
      desc: "a value of exactly 4 KiB",
      value: `["10.0.0.1"${" ".repeat(MAX_ANNOTATION_BYTES - 12)}]`,
      want: ["10.0.0.1"],
    },
  ];
  for (const { desc, value, want } of accepted) {
    it(`parseFloatingIps() accepts ${desc}`, () => {
      expect(parseFloatingIps(value)).toEqual(want);
    });
  }

  const refused: { desc: string; value: string; message: RegExp }[] = [
    {
      desc: "text that is not JSON",
      value: "10.0.0.1",
      message: /^failed to parse '10\.0\.0\.1' as JSON: /,
    },
    {
      desc: "the seed's escaping left in the value",
      value: '[\\"10.0.0.1\\"]',
      message: /^failed to parse '\[\\"10\.0\.0\.1\\"\]' as JSON: /,
    },
    {
      desc: "null",
      value: "null",
      message: /^failed to parse 'null' as JSON: expected an array of strings, got null$/,
    },
    {
      desc: "an object",
      value: '{"ip":"10.0.0.1"}',
      message: /as JSON: expected an array of strings, got an object$/,
    },
    {
      desc: "a bare string",
      value: '"10.0.0.1"',
      message: /as JSON: expected an array of strings, got a string$/,
    },
    {
      desc: "a number entry",
      value: "[10]",
      message: /as JSON: expected an array of strings, found a number$/,
    },
    { desc: "a name", value: '["foo"]', message: /^invalid floating IP 'foo': not an IP address$/ },
    {
      desc: "a CIDR",
      value: '["10.0.0.0/24"]',
      message: /^invalid floating IP '10\.0\.0\.0\/24': not an IP address$/,
    },
    {
      desc: "an empty string",
      value: '[""]',
      message: /^invalid floating IP '': not an IP address$/,
    },
    {
      desc: "a short IPv4 form",
      value: '["10.1"]',
      message: /^invalid floating IP '10\.1': not an IP address$/,
    },
    {
      desc: "an IPv6 zone",
      value: '["fe80::1%eth0"]',
      message: /^invalid floating IP 'fe80::1%eth0': not an IP address$/,
    },
    {
      desc: "IPv4 unspecified",
      value: '["0.0.0.0"]',
      message: /^invalid floating IP '0\.0\.0\.0': unspecified address$/,
    },
    {
      desc: "IPv6 unspecified",
      value: '["::"]',
      message: /^invalid floating IP '::': unspecified address$/,
    },
    {
      desc: "IPv4 loopback",
      value: '["127.0.0.53"]',
      message: /^invalid floating IP '127\.0\.0\.53': loopback address$/,
    },
    {
      desc: "IPv6 loopback",
      value: '["::1"]',
      message: /^invalid floating IP '::1': loopback address$/,
    },
    {
      desc: "IPv4 multicast",
      value: '["224.0.0.251"]',
      message: /^invalid floating IP '224\.0\.0\.251': multicast address$/,
    },
    {
      desc: "IPv6 multicast",
      value: '["ff02::1"]',
      message: /^invalid floating IP 'ff02::1': multicast address$/,
    },
    {
      desc: "IPv4 link-local",
      value: '["169.254.169.254"]',
      message: /^invalid floating IP '169\.254\.169\.254': link-local address$/,
    },
    {
      desc: "IPv6 link-local",
      value: '["fe80::1"]',
      message: /^invalid floating IP 'fe80::1': link-local address$/,
    },
    {
      desc: "the broadcast address",
      value: '["255.255.255.255"]',
      message: /^invalid floating IP '255\.255\.255\.255': broadcast address$/,
    },
    {
      desc: "IPv4-mapped IPv6",
      value: '["::ffff:10.0.0.1"]',
      message: /^invalid floating IP '::ffff:10\.0\.0\.1': IPv4-mapped IPv6 address$/,
    },
    {
      desc: "IPv4-mapped IPv6 in hex",
      value: '["::ffff:a00:1"]',
      message: /^invalid floating IP '::ffff:a00:1': IPv4-mapped IPv6 address$/,
    },
    {
      desc: "a long entry, echoed truncated",
      value: JSON.stringify(["x".repeat(300)]),
      message: new RegExp(
        `^invalid floating IP '${"x".repeat(64)}…\\(truncated, 300 characters\\)': not an IP address$`,
      ),
    },
    {
      desc: "a long value that is not JSON, echoed truncated",
      value: "y".repeat(1000),
      message: new RegExp(
        `^failed to parse '${"y".repeat(64)}…\\(truncated, 1000 characters\\)' as JSON: `,
      ),
    },
    {
      desc: "a long array with a number, echoed truncated",
      value: JSON.stringify([...JSON.parse(arrayOf(100)), 1]),
      message:
        /…\(truncated, \d+ characters\)' as JSON: expected an array of strings, found a number$/,
    },
    {
      desc: "a value over 4 KiB, before parsing it",
      value: `[${" ".repeat(MAX_ANNOTATION_BYTES)}]`,
      message: /^annotation cni\.projectcalico\.org\/floatingIPs is 4098 bytes; at most 4096$/,
    },
    {
      desc: "a value over 4 KiB counted in UTF-8 bytes",
      value: `["${"é".repeat(2048)}"]`,
      message: /^annotation cni\.projectcalico\.org\/floatingIPs is 4100 bytes; at most 4096$/,
    },
    {
      desc: "a valid entry then a bad one",
      value: '["10.0.0.1","x"]',
      message: /^invalid floating IP 'x'/,
    },
  ];
  for (const { desc, value, message } of refused) {
    it(`parseFloatingIps() refuses ${desc}`, () => {
      expect(() => parseFloatingIps(value)).toThrow(message);
    });
  }
});

describe("parseEgress()", () => {
  it("reads true and false, absent as false, and refuses anything else", () => {
    expect(parseEgress("true")).toBe(true);
    expect(parseEgress("false")).toBe(false);
    expect(parseEgress(undefined)).toBe(false);
    for (const value of ["yes", "True", "1", ""]) {
      expect(() => parseEgress(value)).toThrow(
        `invalid buoy.dev/floating-ip-egress '${value}': expected "true" or "false"`,
      );
    }
  });
  const refused: { desc: string; value: string; message: string }[] = [
    {
      desc: "a long value, echoed truncated",
      value: "z".repeat(100),
      message: `invalid buoy.dev/floating-ip-egress '${"z".repeat(64)}…(truncated, 100 characters)': expected "true" or "false"`,
    },
    {
      desc: "a value over 4 KiB",
      value: "z".repeat(MAX_ANNOTATION_BYTES + 1),
      message: "annotation buoy.dev/floating-ip-egress is 4097 bytes; at most 4096",
    },
  ];
  for (const { desc, value, message } of refused) {
    it(`parseEgress() refuses ${desc}`, () => {
      expect(() => parseEgress(value)).toThrow(message);
    });
  }
});
