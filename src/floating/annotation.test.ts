import { describe, expect, it } from "vitest";
import { parseEgress, parseFloatingIps } from "./annotation.js";

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
});
