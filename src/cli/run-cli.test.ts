// runCli() itself: the datastore settings, the usage errors that exit 2, help
// and version (each command's own tests are beside it in commands/).
import { describe, expect, it } from "vitest";
import { MemoryKv } from "../etcd/memory-kv.js";
import { run } from "../../test/support/cluster-with-pod.js";

describe("runCli() datastore and usage", () => {
  it("runCli() 'apply' with DATASTORE_TYPE=kubernetes and no KUBECONFIG says what it needs, touching no datastore", async () => {
    const result = await run(new MemoryKv(), ["apply", "-f", "-"], {
      env: { DATASTORE_TYPE: "kubernetes" },
      stdin:
        "apiVersion: buoy.dev/v1\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/24}\n",
    });
    expect(result).toMatchObject({ code: 2, opened: undefined });
    expect(result.stderr).toContain(
      "DATASTORE_TYPE=kubernetes needs KUBECONFIG, or to run in a pod (KUBERNETES_SERVICE_HOST)",
    );
  });

  it("runCli() 'get' with DATASTORE_TYPE=kubernetes and no KUBECONFIG says what it needs", async () => {
    const result = await run(new MemoryKv(), ["get", "ippools"], {
      env: { DATASTORE_TYPE: "kubernetes" },
    });
    expect(result).toMatchObject({ code: 2, opened: undefined });
    expect(result.stderr).toContain(
      "DATASTORE_TYPE=kubernetes needs KUBECONFIG, or to run in a pod (KUBERNETES_SERVICE_HOST)",
    );
  });

  it("runCli() takes the etcd endpoints from the flag over ETCD_ENDPOINTS", async () => {
    const result = await run(
      new MemoryKv(),
      ["get", "ippools", "--etcd-endpoints", "http://10.0.0.1:2379,http://10.0.0.2:2379"],
      { env: { ETCD_ENDPOINTS: "http://ignored:2379" } },
    );
    expect(result.opened?.endpoints).toEqual(["http://10.0.0.1:2379", "http://10.0.0.2:2379"]);
  });

  const usage: { desc: string; argv: string[]; stderr: RegExp }[] = [
    {
      desc: "an unknown command",
      argv: ["frobnicate"],
      stderr: /^error: unknown command 'frobnicate'/,
    },
    {
      desc: "an unknown option",
      argv: ["get", "ippools", "--frob"],
      stderr: /unknown option '--frob'/,
    },
    {
      desc: "an unknown output format",
      argv: ["get", "ippools", "-o", "xml"],
      stderr: /-o xml: the output is one of wide, json, yaml, name, jsonpath=TEMPLATE/,
    },
    {
      desc: "an unknown resource type",
      argv: ["get", "pods"],
      stderr: /^error: unknown resource type 'pods'/,
    },
    {
      desc: "apply without -f",
      argv: ["apply"],
      stderr: /required option '-f, --filename <file>'/,
    },
    {
      desc: "delete without a name",
      argv: ["delete", "ippool"],
      stderr: /^error: delete needs a type and a name/,
    },
    {
      desc: "delete of a type buoy records itself",
      argv: ["delete", "floatingip", "10.0.0.7"],
      stderr:
        /^error: floatingips are recorded by buoy itself and cannot be deleted; delete ippool, node or bgppeer/,
    },
    {
      desc: "--node on pools",
      argv: ["get", "ippools", "--node", "n1"],
      stderr: /^error: --node applies to/,
    },
    { desc: "no command at all", argv: [], stderr: /^Usage: buoy/ },
  ];
  for (const { desc, argv, stderr } of usage) {
    it(`runCli() exits 2 on ${desc}`, async () => {
      const result = await run(new MemoryKv(), argv);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(stderr);
    });
  }

  it("runCli() prints help for every command and exits 0", async () => {
    for (const argv of [
      ["--help"],
      ["apply", "--help"],
      ["get", "--help"],
      ["delete", "-h"],
      ["help", "get"],
    ]) {
      const result = await run(new MemoryKv(), argv);
      expect(result).toMatchObject({ code: 0, stderr: "" });
      expect(result.stdout).toMatch(/^Usage: buoy/);
    }
    expect((await run(new MemoryKv(), ["get", "--help"])).stdout).toContain("buoy get ippools");
    // `buoy lab` looks for this word to know that apply takes BGP peers.
    expect((await run(new MemoryKv(), ["apply", "--help"])).stdout).toContain("BGPPeer");
  });

  it("runCli() prints the client version", async () => {
    expect(await run(new MemoryKv(), ["version"])).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/^Client Version: +v\d+\.\d+\.\d+\n$/),
    });
  });
});
