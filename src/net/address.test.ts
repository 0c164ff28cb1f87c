import { describe, expect, it } from "vitest";
import {
  canonicalAddress,
  enclosingPrefix,
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
