// The CLI as one self-contained executable (dist/bin/buoy, issue 16 item 3)
// against a real etcd, run with no Node.js to be found: it applies and reads
// back, says its version, and its completion script works in a real bash.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, startEtcd, type Etcd } from "../support/harness.js";

const EXE = join(ROOT, "dist/bin/buoy");
let etcd: Etcd;

beforeAll(async () => {
  etcd = await startEtcd();
});

afterAll(async () => {
  await etcd?.stop();
});

/** The executable with an environment in which no node, bun or other tool can be found. */
function buoy(args: string[], input?: string) {
  return spawnSync(EXE, args, {
    encoding: "utf8",
    input,
    env: { PATH: "/nonexistent", ETCD_ENDPOINTS: etcd.endpoint, HOME: "/nonexistent" },
  });
}

describe("dist/bin/buoy, self-contained", () => {
  it("applies and gets IP pools on etcd with no Node.js on the PATH", () => {
    const applied = buoy(
      ["apply", "-f", "-"],
      "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: exe}\nspec: {cidr: 10.123.0.0/16}\n",
    );
    expect(applied.status, applied.stderr).toBe(0);
    const got = buoy(["get", "ippools", "-o", "json"]);
    expect(got.status, got.stderr).toBe(0);
    expect(got.stdout).toContain('"cidr": "10.123.0.0/16"');
    expect(buoy(["version"]).stdout).toMatch(/^Client Version: +v\d+\.\d+\.\d+\n$/);
  });

  it("prints a completion script that completes its commands and resource types in bash", () => {
    const script = buoy(["completion", "bash"]);
    expect(script.status, script.stderr).toBe(0);
    const offered = (line: string) => {
      const words = line.split(" ");
      const run = spawnSync(
        "bash",
        [
          "-c",
          `${script.stdout}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")})\nCOMP_CWORD=${words.length - 1}\n_buoy\nprintf '%s\\n' "\${COMPREPLY[@]}"`,
        ],
        { encoding: "utf8" },
      );
      return run.stdout.split("\n").filter(Boolean);
    };
    expect(offered("buoy ge")).toEqual(["get"]);
    expect(offered("buoy get floatingi")).toEqual(["floatingips"]);
    expect(offered("buoy get floatingips --out")).toEqual(["--output"]);
    expect(offered("buoy completion z")).toEqual(["zsh"]);
    const bad = buoy(["completion", "fish"]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain(
      "'fish' is invalid for argument 'shell'. Allowed choices are bash, zsh.",
    );
  });
});
