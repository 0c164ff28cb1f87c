// `buoy get` through runCli(): calicoctl's columns, -o wide/yaml/json (what
// apply takes back), the floating IPs' holders and announcements.
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { MemoryKv } from "../../etcd/memory-kv.js";
import { keys, Store } from "../../etcd/store.js";
import { clusterWithPod, put, run } from "../../../test/support/cluster-with-pod.js";

describe("runCli() get", () => {
  it("runCli() get ippools prints calicoctl's columns", async () => {
    const kv = await clusterWithPod();
    expect(await run(kv, ["get", "ippools"])).toMatchObject({
      code: 0,
      stdout: `NAME         CIDR         SELECTOR
floating-v4  10.0.0.0/24  all()
my.ippool-1  10.1.0.0/16  all()
`,
    });
    expect((await run(kv, ["get", "ippool", "floating-v4", "-o", "wide"])).stdout).toBe(
      `NAME         CIDR         SELECTOR  BLOCKSIZE  DISABLED  NATOUTGOING  DISABLEBGPEXPORT
floating-v4  10.0.0.0/24  all()     26         true      false        false
`,
    );
  });

  it("runCli() get -o yaml prints pools that apply accepts back unchanged", async () => {
    const kv = await clusterWithPod();
    const yaml = await run(kv, ["get", "ippools", "-o", "yaml"]);
    expect(yaml.code).toBe(0);
    expect(parse(yaml.stdout)).toMatchObject({ apiVersion: "buoy.dev/v1", kind: "IPPoolList" });

    const copy = new MemoryKv();
    const applied = await run(copy, ["apply", "-f", "-"], { stdin: yaml.stdout });
    expect(applied).toMatchObject({
      code: 0,
      stdout: "Successfully applied 2 'IPPool' resource(s)\n",
    });
    expect(await new Store(copy).listPools()).toEqual(await new Store(kv).listPools());
    // And onto the original: re-applying what is there changes nothing and is allowed.
    expect((await run(kv, ["apply", "-f", "-"], { stdin: yaml.stdout })).code).toBe(0);
  });

  it("runCli() get -o json prints one named pool as a resource", async () => {
    const kv = await clusterWithPod();
    const result = await run(kv, ["get", "ippool", "floating-v4", "-o", "json"]);
    expect(JSON.parse(result.stdout)).toEqual({
      apiVersion: "buoy.dev/v1",
      kind: "IPPool",
      metadata: { name: "floating-v4" },
      spec: {
        cidr: "10.0.0.0/24",
        blockSize: 26,
        disabled: true,
        nodeSelector: "all()",
        natOutgoing: false,
        disableBGPExport: false,
      },
    });
  });

  it("runCli() get endpoints and floatingips show the pod's floating IP", async () => {
    const kv = await clusterWithPod();
    expect((await run(kv, ["get", "workloadendpoints", "-o", "wide"])).stdout).toBe(
      `WORKLOAD       NODE    NETWORKS     INTERFACE   FLOATING IPS        EGRESS  CONTAINER
default/web-0  node-1  10.1.0.5/32  buoyc0ffee  10.0.0.7->10.1.0.5  -       c0ffee
`,
    );
    expect((await run(kv, ["get", "floatingips", "--node", "node-1"])).stdout).toBe(
      `FLOATING IP  POD            NODE    INTERNAL IP  PROGRAMMED  ANNOUNCED  FLOATINGIP  READY  SINCE
10.0.0.7     default/web-0  node-1  10.1.0.5     no          -          -           -      2025-01-02T03:04:05.000Z
`,
    );
    const yaml = parse((await run(kv, ["get", "fip", "10.0.0.7", "-o", "yaml"])).stdout);
    expect(yaml).toMatchObject({ kind: "FloatingIPClaim", metadata: { name: "10.0.0.7" } });
  });

  it("runCli() get -o name and -o jsonpath print what scripts read, as kubectl does", async () => {
    const kv = await clusterWithPod();
    expect(await run(kv, ["get", "ippools", "-o", "name"])).toMatchObject({
      code: 0,
      stdout: "ippool.buoy.dev/floating-v4\nippool.buoy.dev/my.ippool-1\n",
    });
    const template = '{range .items[*]}{.metadata.name} {.spec.pod}{"\\n"}{end}';
    expect(await run(kv, ["get", "floatingips", "-o", `jsonpath=${template}`])).toMatchObject({
      code: 0,
      stdout: "10.0.0.7 web-0\n",
    });
    expect(
      (await run(kv, ["get", "ippool", "floating-v4", "-o", "jsonpath='{.spec.cidr}'"])).stdout,
    ).toBe("10.0.0.0/24");
    expect(await run(kv, ["get", "ippools", "-o", "jsonpath={.items[0].status}"])).toMatchObject({
      code: 0,
      stdout: "",
    });
    expect(await run(kv, ["get", "ippools", "-o", "jsonpath={.items"])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining("-o jsonpath: unclosed { at position 1"),
    });
    expect(await run(kv, ["get", "ippools", "-o", "xml"])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining(
        "-o xml: the output is one of wide, json, yaml, name, jsonpath=TEMPLATE",
      ),
    });
  });

  it("runCli() get floatingips shows how the holder's node announces each one", async () => {
    const kv = await clusterWithPod();
    await put(kv, keys.status("node-1", "10.0.0.7"), {
      ip: "10.0.0.7",
      node: "node-1",
      internalIP: "10.1.0.5",
      programmedSince: "2025-01-02T03:04:06.000Z",
      announced: "direct",
    });
    expect((await run(kv, ["get", "floatingips"])).stdout).toBe(
      `FLOATING IP  POD            NODE    INTERNAL IP  PROGRAMMED  ANNOUNCED  FLOATINGIP  READY  SINCE
10.0.0.7     default/web-0  node-1  10.1.0.5     yes         direct     -           -      2025-01-02T03:04:05.000Z
`,
    );
    const json = JSON.parse((await run(kv, ["get", "fip", "10.0.0.7", "-o", "json"])).stdout);
    expect(json).toMatchObject({ status: { programmed: true, announced: "direct" } });
  });

  it("runCli() get of a name that does not exist exits 1", async () => {
    const kv = await clusterWithPod();
    expect(await run(kv, ["get", "ippool", "nope"])).toMatchObject({
      code: 1,
      stdout: "",
      stderr: "error: IP pool nope does not exist\n",
    });
  });
});
