// `buoy webhook`'s flags: each bad one is a usage error naming it, before
// anything is read or served (the serving itself: test/kube, test/node).
import { describe, expect, it } from "vitest";
import { MemoryKv } from "../../etcd/memory-kv.js";
import { run } from "../../../test/support/cluster-with-pod.js";

describe("runCli() webhook", () => {
  const cases: { desc: string; args: string[]; env?: Record<string, string>; stderr: string }[] = [
    {
      desc: "refuses a --listen that is no host:port",
      args: ["--listen", "9443"],
      stderr: "error: --listen must be host:port, got '9443'\n",
    },
    {
      desc: "refuses a --tls-secret that is no namespace/name",
      args: ["--tls-secret", "buoy-webhook-tls"],
      stderr: "error: --tls-secret must be namespace/name, got 'buoy-webhook-tls'\n",
    },
    {
      desc: "refuses a --calico-config that is no namespace/name",
      args: ["--calico-config", "a/b/c"],
      stderr: "error: --calico-config must be namespace/name, got 'a/b/c'\n",
    },
    {
      desc: "refuses a bound over the plugin's limit",
      args: ["--max-floating-ips-per-pod", "2000"],
      stderr:
        "error: --max-floating-ips-per-pod must be a whole number from 0 to 1024, got '2000'\n",
    },
  ];
  for (const { desc, args, stderr } of cases) {
    it(`runCli() webhook ${desc}`, async () => {
      const result = await run(new MemoryKv(), ["webhook", ...args]);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(stderr);
    });
  }

  it("runCli() webhook needs credentials: KUBECONFIG or a pod's service account", async () => {
    const result = await run(new MemoryKv(), ["webhook"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      "error: the webhook needs KUBECONFIG, or to run in a pod (KUBERNETES_SERVICE_HOST)",
    );
    const missing = await run(new MemoryKv(), ["webhook"], { env: { KUBECONFIG: "/nonexistent" } });
    expect(missing.stderr).toContain("error: cannot read /nonexistent (KUBECONFIG): ENOENT");
  });
});
