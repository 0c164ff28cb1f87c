import { describe, expect, it } from "vitest";
import { canonicalAddress } from "../net/address.js";
import { ipObjectName, ipOfObjectName, prefixObjectName } from "./names.js";

const DNS_1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

describe("ipObjectName()", () => {
  it.each([
    ["203.0.113.10", "203.0.113.10"],
    ["2001:db8::7", "2001-0db8-0000-0000-0000-0000-0000-0007"],
    ["::7", "0000-0000-0000-0000-0000-0000-0000-0007"],
    ["fd00::", "fd00-0000-0000-0000-0000-0000-0000-0000"],
    ["2001:DB8:0:0:0:0:0:7", "2001-0db8-0000-0000-0000-0000-0000-0007"],
    ["::ffff:192.0.2.1", "0000-0000-0000-0000-0000-ffff-c000-0201"],
  ])("%s -> %s, a valid object name that maps back", (ip, name) => {
    expect(ipObjectName(ip)).toBe(name);
    expect(name).toMatch(DNS_1123_SUBDOMAIN);
    expect(ipOfObjectName(name)).toBe(canonicalAddress(ip));
  });

  it("maps back to the canonical address", () => {
    expect(ipOfObjectName("2001-0db8-0000-0000-0000-0000-0000-0007")).toBe("2001:db8::7");
    expect(ipOfObjectName("203.0.113.10")).toBe("203.0.113.10");
  });

  it("has no name for what is not one address, and no address for other names", () => {
    for (const text of ["", "10.0.0.0/24", "foo", "fe80::1%eth0"])
      expect(ipObjectName(text)).toBeUndefined();
    for (const name of ["web", "203-0-113-10", "2001-db8--7", "999.0.0.1"])
      expect(ipOfObjectName(name)).toBeUndefined();
  });
});

describe("prefixObjectName()", () => {
  it("names a block by its address and length, valid for both families", () => {
    expect(prefixObjectName("10.244.0.64/26")).toBe("10.244.0.64-26");
    expect(prefixObjectName("fd00:244::40/122")).toBe(
      "fd00-0244-0000-0000-0000-0000-0000-0040-122",
    );
    expect(prefixObjectName("::/0")).toBe("0000-0000-0000-0000-0000-0000-0000-0000-0");
    for (const cidr of ["10.244.0.64/26", "fd00:244::40/122", "::/0"]) {
      expect(prefixObjectName(cidr)).toMatch(DNS_1123_SUBDOMAIN);
    }
    expect(prefixObjectName("10.244.0.65/26")).toBeUndefined();
    expect(prefixObjectName("10.244.0.64")).toBeUndefined();
  });
});
