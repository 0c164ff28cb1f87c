import { describe, expect, it } from "vitest";
import { describeKubeError, statusOf } from "./describe-kube-error.js";

describe("describeKubeError()", () => {
  it.each([
    {
      desc: "an API Status: its code, reason and message",
      error: Object.assign(new Error("HTTP-Code: 403"), {
        code: 403,
        body: JSON.stringify({ reason: "Forbidden", message: "leases is forbidden" }),
      }),
      line: "403 Forbidden: leases is forbidden",
    },
    {
      desc: "a body that is no Status: the code alone",
      error: Object.assign(new Error("HTTP-Code: 502"), { code: 502, body: "<html>" }),
      line: "HTTP 502",
    },
    {
      desc: "undici's fetch failure: the message and its cause's",
      error: new TypeError("fetch failed", {
        cause: new Error("connect ECONNREFUSED 127.0.0.1:6443"),
      }),
      line: "fetch failed: connect ECONNREFUSED 127.0.0.1:6443",
    },
    {
      desc: "a cause the message already names: the message alone",
      error: new Error("request failed: socket hang up", { cause: new Error("socket hang up") }),
      line: "request failed: socket hang up",
    },
    { desc: "a thrown string", error: "gone", line: "gone" },
  ])("$desc", ({ error, line }) => {
    expect(describeKubeError(error)).toBe(line);
  });
});

describe("statusOf()", () => {
  it("gives a numeric code only", () => {
    expect(statusOf(Object.assign(new Error(), { code: 404 }))).toBe(404);
    expect(statusOf(Object.assign(new Error(), { code: "ECONNREFUSED" }))).toBeUndefined();
    expect(statusOf(undefined)).toBeUndefined();
  });
});
