// The lab commands' surface: help and usage errors, which need neither root
// nor a lab (the lab itself is tested in test/e2e/lab.test.ts).
import { describe, expect, it } from "vitest";
import { MemoryKv } from "../datastore/memory-kv.js";
import { runCli } from "./run-cli.js";

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
  it("lab --help lists up, status, demo and down, and the topology", async () => {
    const { code, stdout } = await run(["lab", "--help"]);
    expect(code).toBe(0);
    for (const command of ["up", "status", "demo", "down"]) {
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
  ])("lab refuses $desc with exit code 2", async ({ argv, error }) => {
    const { code, stderr } = await run(argv);
    expect(code).toBe(2);
    expect(stderr).toMatch(error);
  });
});
