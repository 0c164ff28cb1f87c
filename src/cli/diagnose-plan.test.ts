import { describe, expect, it } from "vitest";
import { archiveName, cniLogPathOf, diagnoseCommands, diagnoseFiles } from "./diagnose-plan.js";

const options = {
  node: "node-1",
  cniConf: "/etc/cni/net.d/10-calico.conflist",
  cniLog: "/var/log/calico/cni/cni.log",
  birdSocket: "/run/bird/bird.ctl",
  podLogs: "/var/log/pods",
  agentNamespace: "kube-system",
  now: new Date("2026-12-04T22:30:01.123Z"),
};

describe("diagnose plan", () => {
  it("names the archive by node and UTC time", () => {
    expect(archiveName("node-1", options.now)).toBe("buoy-diagnose-node-1-20261204T223001Z.tar.gz");
    expect(archiveName("a/b c", options.now)).toBe("buoy-diagnose-a_b_c-20261204T223001Z.tar.gz");
  });

  it("asks birdc on the given socket, and the kernel for buoy's tables and routes only", () => {
    const argv = diagnoseCommands(options).map((item) => item.argv.join(" "));
    expect(argv).toContain("nft list table ip buoy");
    expect(argv).toContain("ip -6 route show table all proto 202");
    expect(argv).toContain("birdc -s /run/bird/bird.ctl show protocols all");
    expect(argv.some((line) => line.includes("ruleset"))).toBe(false);
  });

  it("copies the CNI log, its rotated files and the agent's container logs, nothing else there", () => {
    const files = diagnoseFiles(options, {
      cniLogDir: ["cni.log", "cni-20261203T000000Z.log", "other.log", "cni.log.gz"],
      podLogDirs: [
        "kube-system_buoy-node-x7k2p_0f1e",
        "kube-system_coredns-1_ab",
        "shop_buoy-node-evil_0a",
      ],
      agentLogs: () => ["0.log", "1.log", "0.log.20261203-000000.gz"],
    });
    expect([...files]).toEqual([
      ["cni/10-calico.conflist", "/etc/cni/net.d/10-calico.conflist"],
      ["cni-log/cni.log", "/var/log/calico/cni/cni.log"],
      ["cni-log/cni-20261203T000000Z.log", "/var/log/calico/cni/cni-20261203T000000Z.log"],
      [
        "agent-log/kube-system_buoy-node-x7k2p_0f1e/0.log",
        "/var/log/pods/kube-system_buoy-node-x7k2p_0f1e/buoy-agent/0.log",
      ],
      [
        "agent-log/kube-system_buoy-node-x7k2p_0f1e/1.log",
        "/var/log/pods/kube-system_buoy-node-x7k2p_0f1e/buoy-agent/1.log",
      ],
    ]);
  });

  it("reads the log path from the conflist's calico entry", () => {
    const conflist = JSON.stringify({
      plugins: [{ type: "calico", log_file_path: "/var/log/x/cni.log" }, { type: "portmap" }],
    });
    expect(cniLogPathOf(conflist)).toBe("/var/log/x/cni.log");
    expect(cniLogPathOf("{")).toBeUndefined();
  });
});
