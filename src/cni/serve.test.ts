import { describe, expect, it } from "vitest";
import type { ForwardRequest } from "./agent-wire.js";
import { fallbackReason, type HostView } from "./serve.js";
import { parseServeArgs } from "./serve-main.js";

const view = (visible: string[]): HostView => ({
  netns: "net:[1]",
  exists: (path) => visible.includes(path),
});

function request(
  conf: Record<string, unknown>,
  extra: Partial<ForwardRequest> = {},
): ForwardRequest {
  return {
    role: "plugin",
    env: { CNI_COMMAND: "ADD", CNI_NETNS: "/run/netns/pod" },
    stdin: JSON.stringify({
      cniVersion: "1.0.0",
      type: "calico",
      log_file_path: "/var/log/calico/cni/cni.log",
      ipam: { type: "calico-ipam" },
      ...conf,
    }),
    netns: "net:[1]",
    hostname: "node-1",
    ...extra,
  };
}

const everything = ["/run/netns/pod", "/var/log/calico/cni", "/etc/cni/net.d/calico-kubeconfig"];

describe("what the agent leaves to the executable", () => {
  it("serves a request whose every path it sees", () => {
    expect(fallbackReason(request({}), view(everything))).toBeUndefined();
  });

  it("serves a config that does not parse: runCni answers it with the executable's error", () => {
    expect(fallbackReason(request({ mtu: "big" }), view([]))).toBeUndefined();
  });

  it("leaves a plugin in another network namespace", () => {
    expect(fallbackReason(request({}, { netns: "net:[2]" }), view(everything))).toBe(
      "the plugin runs in network namespace net:[2], the agent in net:[1]",
    );
  });

  it("leaves another IPAM plugin's config (its state lives on the host)", () => {
    expect(fallbackReason(request({ ipam: { type: "host-local" } }), view(everything))).toBe(
      'ipam type "host-local" is another plugin\'s',
    );
  });

  it.each([
    ["/run/netns/pod", "CNI_NETNS /run/netns/pod is not visible to the agent"],
    ["/var/log/calico/cni", "the log directory /var/log/calico/cni is not visible to the agent"],
  ])("leaves what it cannot see: %s", (missing, reason) => {
    const visible = everything.filter((path) => path !== missing);
    expect(fallbackReason(request({}), view(visible))).toBe(reason);
  });

  it("leaves a kubeconfig it cannot read", () => {
    const conf = {
      datastore_type: "kubernetes",
      kubernetes: { kubeconfig: "/etc/cni/net.d/other" },
    };
    expect(fallbackReason(request(conf), view(everything))).toBe(
      "kubernetes.kubeconfig /etc/cni/net.d/other is not visible to the agent",
    );
  });
});

describe("buoy serve's arguments", () => {
  it("takes a socket and a log level", () => {
    expect(parseServeArgs(["--socket", "/run/b/cni.sock", "--log-level", "debug"])).toEqual({
      socket: "/run/b/cni.sock",
      logLevel: "debug",
      withParent: false,
      probe: false,
    });
    expect(parseServeArgs(["--with-parent", "--socket", "/run/b/cni.sock"])).toMatchObject({
      withParent: true,
    });
    expect(parseServeArgs(["--socket=/run/b/cni.sock"])).toMatchObject({
      socket: "/run/b/cni.sock",
    });
    expect(parseServeArgs(["--socket=/run/b/cni.sock", "--probe"])).toMatchObject({
      probe: true,
    });
  });

  it.each([
    [[], "--socket is required"],
    [["--socket"], "--socket needs a value"],
    [["--socket", "cni.sock"], "--socket must be an absolute path, got cni.sock"],
    [["--port", "1"], "unknown argument --port"],
  ])("refuses %j", (args, problem) => {
    expect(parseServeArgs(args)).toEqual({ problem });
  });
});
