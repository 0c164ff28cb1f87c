import { describe, expect, it } from "vitest";
import {
  DEFAULT_AGENT_SOCKET,
  agentSocketOf,
  decodeReply,
  decodeRequest,
  encodeReply,
  encodeRequest,
  type ForwardRequest,
} from "./agent-wire.js";

const request: ForwardRequest = {
  role: "plugin",
  env: { CNI_COMMAND: "ADD", CNI_CONTAINERID: "c1" },
  stdin: '{"cniVersion":"1.0.0"}\n',
  netns: "net:[4026531833]",
  hostname: "node-1",
};

describe("the executable's request to the agent", () => {
  it("is one line that decodes to itself", () => {
    const line = encodeRequest(request);
    expect(line.endsWith("\n")).toBe(true);
    expect(line.slice(0, -1)).not.toContain("\n");
    expect(decodeRequest(line.slice(0, -1))).toEqual(request);
  });

  it.each([
    ["not json", "the request is not JSON"],
    ["[]", "the request is not a JSON object"],
    [JSON.stringify({ ...request, v: 2 }), "wire version 2 is not 1"],
    [JSON.stringify({ ...request, v: 1, role: "root" }), "role must be plugin or ipam"],
    [JSON.stringify({ ...request, v: 1, stdin: 7 }), "stdin must be a string"],
    [JSON.stringify({ ...request, v: 1, env: { A: 1 } }), "env A must be a string"],
    [JSON.stringify({ ...request, v: 1, env: [] }), "env must be an object"],
    [JSON.stringify({ ...request, v: 1, hostname: null }), "hostname must be a string"],
  ])("refuses %s", (line, problem) => {
    expect(decodeRequest(line)).toEqual({ problem });
  });
});

describe("the agent's reply", () => {
  it("round-trips a result and a fallback", () => {
    const done = { kind: "done", stdout: "{}\n", exitCode: 0 } as const;
    expect(decodeReply(encodeReply(done).trim())).toEqual(done);
    const fallback = { kind: "fallback", reason: "busy" } as const;
    expect(decodeReply(encodeReply(fallback).trim())).toEqual(fallback);
  });

  it("throws on anything else", () => {
    expect(() => decodeReply('{"stdout":"{}"}')).toThrow("not a CNI result");
    expect(() => decodeReply("{")).toThrow();
  });
});

describe("agent_socket", () => {
  it("is read from the config without the config's schema", () => {
    expect(agentSocketOf('{"agent_socket":"/run/buoy/cni.sock"}')).toBe("/run/buoy/cni.sock");
  });

  it("is buoy's DaemonSet's path when the config names none", () => {
    expect(agentSocketOf("{}")).toBe(DEFAULT_AGENT_SOCKET);
    expect(DEFAULT_AGENT_SOCKET).toBe("/var/run/buoy/cni/cni.sock");
  });

  it.each([
    '{"agent_socket":""}',
    '{"agent_socket":"rel/path"}',
    '{"agent_socket":1}',
    "nope",
    "null",
    "[]",
  ])("means no agent in %s", (stdin) => {
    expect(agentSocketOf(stdin)).toBeUndefined();
  });
});
