import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { clusterWithPod, run } from "../../../test/support/cluster-with-pod.js";

const made: string[] = [];
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

/** A conflist of the seed's shape with buoy's bound set, in a fresh directory (removed after). */
function conflistWithBound(max: number): string {
  const dir = mkdtempSync(join(tmpdir(), "buoy-fip-"));
  made.push(dir);
  const path = join(dir, "10-calico.conflist");
  const plugin = { type: "calico", feature_control: { floating_ips: true } };
  writeFileSync(
    path,
    JSON.stringify({
      plugins: [{ ...plugin, max_floating_ips_per_pod: max }, { type: "portmap" }],
    }),
  );
  return path;
}

const ips = (count: number) => Array.from({ length: count }, (_, i) => `10.0.0.${i + 10}`);

describe("runCli() floatingip", () => {
  const cases: {
    desc: string;
    argv: (conf: string) => string[];
    max: number;
    code: number;
    out: RegExp;
  }[] = [
    {
      desc: "set refuses more than 16 floating IPs with no conflist",
      argv: () => ["floatingip", "set", "default/web-0", ...ips(17), "--cni-conf", "/nonexistent"],
      max: 0,
      code: 1,
      out: /pod asks for 17 floating IPs; at most 16/,
    },
    {
      desc: "set takes the bound from the conflist's max_floating_ips_per_pod",
      argv: (conf) => ["floatingip", "--cni-conf", conf, "set", "default/web-0", ...ips(20)],
      max: 20,
      code: 0,
      out: /^pod default\/web-0 holds 10\.0\.0\.10 -> 10\.1\.0\.5, /,
    },
    {
      desc: "add counts what the pod holds already",
      argv: (conf) => ["floatingip", "add", "default/web-0", "10.0.0.8", "--cni-conf", conf],
      max: 1,
      code: 1,
      out: /pod asks for 2 floating IPs; at most 1/,
    },
    {
      desc: "set refuses a loopback address",
      argv: () => ["floatingip", "set", "default/web-0", "127.0.0.1", "--cni-conf", "/nonexistent"],
      max: 0,
      code: 1,
      out: /invalid floating IP '127\.0\.0\.1': loopback address/,
    },
  ];
  for (const { desc, argv, max, code, out } of cases) {
    it(`runCli() floatingip ${desc}`, async () => {
      const conf = max > 0 ? conflistWithBound(max) : "/nonexistent";
      const result = await run(await clusterWithPod(), argv(conf));
      expect(result.code).toBe(code);
      expect(code === 0 ? result.stdout : result.stderr).toMatch(out);
    });
  }
});
