import ipaddr from "ipaddr.js";
import { describe, expect, it } from "vitest";
import {
  addressRange,
  canonicalAddress,
  enclosingPrefix,
  formatAddress,
  formatPrefix,
  parseAddress,
  parsePrefix,
  prefixContains,
} from "./address.js";

describe("address math", () => {
  const addresses: { desc: string; text: string; want: string | undefined }[] = [
    { desc: "IPv4", text: "10.0.0.1", want: "10.0.0.1" },
    { desc: "IPv6 long form", text: "fd00:0000::0001", want: "fd00::1" },
    { desc: "IPv4-mapped IPv6", text: "::ffff:10.0.0.1", want: "::ffff:a00:1" },
    { desc: "::a.b.c.d as the IPv6 address it is", text: "::10.0.0.1", want: "::a00:1" },
    { desc: "a dotted quad after other groups", text: "64:ff9b::10.0.0.1", want: "64:ff9b::a00:1" },
    { desc: "a dotted quad in full form", text: "0:0:0:0:0:ffff:1.2.3.4", want: "::ffff:102:304" },
    { desc: "leading zeros in an embedded IPv4", text: "::ffff:010.0.0.1", want: undefined },
    { desc: "a hex embedded IPv4", text: "::ffff:0x0a.0.0.1", want: undefined },
    { desc: "a dotted quad not at the end", text: "::1.2.3.4:1", want: undefined },
    { desc: "a short embedded IPv4", text: "::ffff:10.1", want: undefined },
    { desc: "leading zeros in IPv4", text: "010.0.0.1", want: undefined },
    { desc: "a hex IPv4", text: "0x0a.0.0.1", want: undefined },
    { desc: "a CIDR", text: "10.0.0.0/8", want: undefined },
    { desc: "a name", text: "localhost", want: undefined },
    { desc: "an octet too big", text: "10.0.0.256", want: undefined },
  ];
  for (const { desc, text, want } of addresses) {
    it(`canonicalAddress() handles ${desc}`, () => {
      expect(canonicalAddress(text)).toBe(want);
    });
  }

  const ranges: { desc: string; text: string; want: string }[] = [
    { desc: "0.0.0.0 as unspecified", text: "0.0.0.0", want: "unspecified" },
    { desc: ":: as unspecified", text: "::", want: "unspecified" },
    { desc: "127/8 as loopback", text: "127.1.2.3", want: "loopback" },
    { desc: "::1 as loopback", text: "::1", want: "loopback" },
    { desc: "224/4 as multicast", text: "239.1.1.1", want: "multicast" },
    { desc: "ff00::/8 as multicast", text: "ff02::1", want: "multicast" },
    { desc: "169.254/16 as link-local", text: "169.254.1.1", want: "linkLocal" },
    { desc: "fe80::/10 as link-local", text: "febf::1", want: "linkLocal" },
    { desc: "255.255.255.255 as broadcast", text: "255.255.255.255", want: "broadcast" },
    { desc: "::ffff:0:0/96 as IPv4-mapped", text: "::ffff:10.0.0.1", want: "ipv4Mapped" },
    { desc: "::a.b.c.d as not IPv4-mapped", text: "::10.0.0.1", want: "unicast" },
    { desc: "10/8 as private", text: "10.0.0.1", want: "private" },
    { desc: "fd00::/8 as unique local", text: "fd00::1", want: "uniqueLocal" },
  ];
  for (const { desc, text, want } of ranges) {
    it(`addressRange() reads ${desc}`, () => {
      expect(addressRange(parseAddress(text)!)).toBe(want);
    });
  }

  it("parsePrefix() refuses host bits unless allowed", () => {
    expect(parsePrefix("10.0.0.1/24")).toBeUndefined();
    expect(formatPrefix(parsePrefix("10.0.0.1/24", true)!)).toBe("10.0.0.0/24");
    expect(parsePrefix("10.0.0.0/33")).toBeUndefined();
    expect(parsePrefix("fd00::/129")).toBeUndefined();
  });
  it("prefixContains() checks family and range", () => {
    const prefix = parsePrefix("fd00::/64")!;
    expect(prefixContains(prefix, parseAddress("fd00::ffff")!)).toBe(true);
    expect(prefixContains(prefix, parseAddress("fd00:0:0:1::")!)).toBe(false);
    expect(prefixContains(parsePrefix("0.0.0.0/0")!, parseAddress("::")!)).toBe(false);
  });
  it("enclosingPrefix() finds the block of an address", () => {
    expect(formatPrefix(enclosingPrefix(parseAddress("10.244.1.77")!, 26))).toBe("10.244.1.64/26");
    expect(formatPrefix(enclosingPrefix(parseAddress("fd00::1:ff")!, 122))).toBe("fd00::1:c0/122");
  });
});

describe("parseAddress() of IPv4 text", () => {
  it("accepts exactly what ipaddr.js's four-part decimal check accepts, with the same value", () => {
    const texts = [
      "0.0.0.0",
      "255.255.255.255",
      "10.0.0.1",
      "1.2.3.4",
      "256.0.0.1",
      "1.2.3",
      "1.2.3.4.5",
      "01.2.3.4",
      "1.02.3.4",
      "1.2.3.04",
      "00.0.0.0",
      "1..2.3",
      ".1.2.3",
      "1.2.3.",
      "1.2.3.4 ",
      " 1.2.3.4",
      "0x1.2.3.4",
      "1.2.3.-4",
      "1.2.3.1000",
      "999.1.1.1",
      "",
      "1",
      "a.b.c.d",
      "1.2.3.4/32",
    ];
    for (let i = 0; i < 2000; i++) {
      // Random short strings of digits and dots.
      let text = "";
      for (let n = 0; n < 1 + ((i * 7919) % 15); n++)
        text += "0123456789.."[(i * 31 + n * 17) % 12];
      texts.push(text);
    }
    for (const text of texts) {
      const valid = ipaddr.IPv4.isValidFourPartDecimal(text);
      const parsed = parseAddress(text);
      expect(parsed !== undefined, text).toBe(valid);
      if (valid) {
        expect(formatAddress(parsed!), text).toBe(ipaddr.IPv4.parse(text).toString());
        expect(canonicalAddress(text), text).toBe(ipaddr.IPv4.parse(text).toString());
      }
    }
  });
});
