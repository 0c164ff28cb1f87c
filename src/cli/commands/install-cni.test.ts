// `buoy install-cni` through the CLI: the help names every variable and
// placeholder (and so does docs/install.md), a run prints what it did, and a
// refusal is `error: ...` with exit code 1.
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MemoryKv } from "../../etcd/memory-kv.js";
import { PLACEHOLDERS } from "../../install/placeholders.js";
import { INSTALL_ENV } from "./install-cni.js";
import { runCli } from "../run-cli.js";

async function run(
  argv: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await runCli({
    argv,
    env,
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    openKv: () => new MemoryKv(),
  });
  return { code, stdout, stderr };
}

let root: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "buoy-install-cli-"));
  await writeFile(join(root, "plugin"), "plugin");
  await mkdir(join(root, "sa"));
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("buoy install-cni", () => {
  it("--help explains every variable and every placeholder", async () => {
    const { code, stdout } = await run(["install-cni", "--help"]);
    expect(code).toBe(0);
    for (const { name } of INSTALL_ENV) expect(stdout).toMatch(new RegExp(`^  ${name} `, "m"));
    for (const { name } of PLACEHOLDERS) expect(stdout).toMatch(new RegExp(`^  __${name}__ `, "m"));
    expect(stdout).toContain("--uninstall");
  });

  it("docs/install.md names every variable and every placeholder", async () => {
    const docs = await readFile(new URL("../../../docs/install.md", import.meta.url), "utf8");
    for (const { name } of INSTALL_ENV) expect(docs).toContain(`\`${name}\``);
    for (const { name } of PLACEHOLDERS) expect(docs).toContain(`\`__${name}__\``);
  });

  it("is listed in the program's help", async () => {
    const { stdout } = await run(["--help"]);
    expect(stdout).toMatch(/^ {2}install-cni \[options\] +Install buoy's CNI plugin/m);
  });

  it("installs from flags and the environment, and uninstalls", async () => {
    const template = await readFile(
      new URL("../../../test/fixtures/seed-cni-network-config.json", import.meta.url),
      "utf8",
    );
    const flags = [
      "--plugin",
      join(root, "plugin"),
      "--bin-dir",
      join(root, "bin"),
      "--service-account-dir",
      join(root, "sa"),
    ];
    const env = {
      CNI_CONF_DIR: join(root, "net.d"),
      CNI_NETWORK_CONFIG: template.replace('"kubernetes",', '"etcdv3",'),
      KUBERNETES_NODE_NAME: "node-1",
      CNI_MTU: "1500",
    };
    const installed = await run(["install-cni", ...flags], env);
    expect(installed.stderr).toBe("");
    expect(installed.code).toBe(0);
    expect(installed.stdout).toMatch(
      /^wrote .*net\.d\/10-calico\.conflist from CNI_NETWORK_CONFIG/m,
    );
    expect((await readdir(join(root, "bin"))).sort()).toEqual([
      "buoy",
      "buoy-ipam",
      "calico",
      "calico-ipam",
    ]);

    const removed = await run(["install-cni", "--uninstall", ...flags], env);
    expect(removed.code).toBe(0);
    expect(await readdir(join(root, "bin"))).toEqual([]);
    expect(await readdir(join(root, "net.d"))).toEqual([]);
  });

  it("refuses a bad template with exit code 1, naming the problem", async () => {
    const { code, stderr } = await run(
      ["install-cni", "--plugin", join(root, "plugin"), "--service-account-dir", join(root, "sa")],
      {
        CNI_NETWORK_CONFIG: '{"name": "n", "plugins": [{"type": "calico", "x": "__WHAT__"}]}',
        CNI_BIN_DIR: join(root, "bin"),
        CNI_CONF_DIR: join(root, "net.d"),
      },
    );
    expect(code).toBe(1);
    expect(stderr).toBe(
      "error: cannot install the CNI config from CNI_NETWORK_CONFIG:\n" +
        "  - unknown placeholder __WHAT__ (buoy install-cni --help lists the known ones)\n",
    );
  });
});
