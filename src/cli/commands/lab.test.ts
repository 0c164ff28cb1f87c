// The lab commands' surface: help and usage errors, which need neither root
// nor a lab (the lab itself is tested in test/e2e/lab.test.ts).
import { describe, expect, it } from "vitest";
import { MemoryKv } from "../../etcd/memory-kv.js";
import { runCli } from "../run-cli.js";

async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await runCli({
    argv,
    env: {},
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    openKv: () => new MemoryKv(),
  });
  return { code, stdout, stderr };
}

describe("buoy lab", () => {
  it("lab --help lists up, status, pod, probe, demo and down, and the topology", async () => {
    const { code, stdout } = await run(["lab", "--help"]);
    expect(code).toBe(0);
    for (const command of ["up", "status", "pod", "probe", "demo", "down"]) {
      expect(stdout).toMatch(new RegExp(`^  ${command} `, "m"));
    }
    expect(stdout).toContain("<prefix>-fab");
  });

  it("lab up --help names the defaults", async () => {
    const { code, stdout } = await run(["lab", "up", "--help"]);
    expect(code).toBe(0);
    expect(stdout).toContain('default: "2"');
    expect(stdout).toContain('choices: "bgp", "direct", default: "bgp"');
  });

  it("lab pod --help lists add and delete; pod add --help names the node forms and the floating-IP option", async () => {
    const pod = await run(["lab", "pod", "--help"]);
    expect(pod.code).toBe(0);
    expect(pod.stdout).toMatch(/^ {2}add \[options\] <node> <name> /m);
    expect(pod.stdout).toMatch(/^ {2}delete \[options\] <name> /m);
    const add = await run(["lab", "pod", "add", "--help"]);
    expect(add.code).toBe(0);
    expect(add.stdout).toContain("node-N, or just N");
    expect(add.stdout).toContain("--floating-ip <ip>");
    expect(add.stdout).toContain("prints the plugin's message");
  });

  it("lab probe --help names the places and the protocols", async () => {
    const { code, stdout } = await run(["lab", "probe", "--help"]);
    expect(code).toBe(0);
    expect(stdout).toContain("ext (the external router), node-N");
    expect(stdout).toContain('choices: "icmp", "tcp", "udp", "raw253"');
  });

  it.each([
    {
      desc: "a node count that is not a number",
      argv: ["lab", "up", "--nodes", "two"],
      error: /--nodes must be a whole number/,
    },
    { desc: "an unknown routing mode", argv: ["lab", "up", "--routing", "ospf"], error: /ospf/ },
    {
      desc: "--prefix with --all",
      argv: ["lab", "down", "--all", "--prefix", "lab1"],
      error: /either --prefix or --all/,
    },
    {
      desc: "a floating IP that is not an address",
      argv: ["lab", "pod", "add", "node-1", "web", "--floating-ip", "203.0.113.10,web"],
      error: /--floating-ip 'web' is not an IP address/,
    },
    {
      desc: "a pod without a name",
      argv: ["lab", "pod", "add", "node-1"],
      error: /missing required argument 'name'/,
    },
    {
      desc: "an unknown probe protocol",
      argv: ["lab", "probe", "ext", "203.0.113.10", "--protocol", "sctp"],
      error: /sctp/,
    },
  ])("lab refuses $desc with exit code 2", async ({ argv, error }) => {
    const { code, stderr } = await run(argv);
    expect(code).toBe(2);
    expect(stderr).toMatch(error);
  });
});
