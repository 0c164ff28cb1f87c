import { describe, expect, it } from "vitest";
import { CniError } from "./errors.js";
import { parseCniEnv } from "./env.js";

const add = {
  CNI_COMMAND: "ADD",
  CNI_CONTAINERID: "3f2a9c0d",
  CNI_NETNS: "/var/run/netns/p1",
  CNI_IFNAME: "eth0",
};

describe("parseCniEnv()", () => {
  it("parseCniEnv() reads ADD's variables and CNI_ARGS", () => {
    const env = parseCniEnv({ ...add, CNI_ARGS: "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=db-0" });
    expect(env).toMatchObject({
      command: "ADD",
      containerID: "3f2a9c0d",
      ifname: "eth0",
      args: { namespace: "shop", pod: "db-0" },
    });
  });

  it("parseCniEnv() needs no interface or container for STATUS", () => {
    expect(parseCniEnv({ CNI_COMMAND: "STATUS" }).ifname).toBe("");
  });

  const refused: { desc: string; env: Record<string, string>; msg: string }[] = [
    {
      desc: "a missing CNI_IFNAME",
      env: { ...add, CNI_IFNAME: "" },
      msg: "required env variable CNI_IFNAME is missing",
    },
    {
      desc: "a CNI_IFNAME over 15 bytes",
      env: { ...add, CNI_IFNAME: "eth0123456789abc" },
      msg: "invalid CNI_IFNAME 'eth0123456789abc': interface name is longer than 15 bytes",
    },
    {
      desc: "a CNI_IFNAME with a slash (a datastore key path)",
      env: { ...add, CNI_IFNAME: "../x" },
      msg: "invalid CNI_IFNAME '../x': interface name contains / or : or whitespace",
    },
    {
      desc: "a CNI_IFNAME with a newline (another ip -batch line)",
      env: { ...add, CNI_IFNAME: "e\nlink" },
      msg: "invalid CNI_IFNAME 'e\nlink': interface name contains / or : or whitespace",
    },
    {
      desc: "a CNI_IFNAME of ..",
      env: { ...add, CNI_IFNAME: ".." },
      msg: "invalid CNI_IFNAME '..': interface name is . or ..",
    },
    {
      desc: "a bad CNI_IFNAME at DEL too",
      env: { ...add, CNI_COMMAND: "DEL", CNI_IFNAME: "eth 0" },
      msg: "invalid CNI_IFNAME 'eth 0': interface name contains / or : or whitespace",
    },
    {
      desc: "a CNI_CONTAINERID with a slash",
      env: { ...add, CNI_CONTAINERID: "a/b" },
      msg: "invalid CNI_CONTAINERID 'a/b': must be alphanumeric with '_', '.' or '-'",
    },
    {
      desc: "a long CNI_CONTAINERID, echoed truncated",
      env: { ...add, CNI_CONTAINERID: `-${"a".repeat(99)}` },
      msg: `invalid CNI_CONTAINERID '-${"a".repeat(63)}…(truncated, 100 characters)': must be alphanumeric`,
    },
  ];
  for (const { desc, env, msg } of refused) {
    it(`parseCniEnv() refuses ${desc} with code 4`, () => {
      let error: unknown;
      try {
        parseCniEnv(env);
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(CniError);
      expect((error as CniError).code).toBe(4);
      expect((error as CniError).message).toContain(msg);
    });
  }
});
