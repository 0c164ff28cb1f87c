// The installer against a temp dir standing in for the host (no root needed):
// what it writes, with which modes, what it refuses, and what --uninstall
// removes.
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  INSTALL_RECORD_NAME,
  installCni,
  uninstallCni,
  type InstallSettings,
} from "./install-cni.js";

const SEED = await readFile(
  new URL("../../test/fixtures/seed-cni-network-config.json", import.meta.url),
  "utf8",
);
const PLUGIN = "#!/bin/sh\necho buoy plugin\n";

let root: string;
let output: string[];

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "buoy-install-"));
  output = [];
  await mkdir(join(root, "image"));
  await writeFile(join(root, "image/buoy"), PLUGIN, { mode: 0o700 });
  await mkdir(join(root, "sa"));
  await writeFile(join(root, "sa/token"), "pod-token\n");
  await writeFile(join(root, "sa/ca.crt"), "-----BEGIN CERTIFICATE-----\nCA\n");
  await writeFile(join(root, "sa/namespace"), "kube-system");
  await mkdir(join(root, "sys/eth0"), { recursive: true });
  await writeFile(join(root, "sys/eth0/mtu"), "1450\n");
  await writeFile(
    join(root, "route"),
    "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n" +
      "eth0\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\t0\t0\t0\n",
  );
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

function settings(env: Record<string, string> = {}): InstallSettings {
  return {
    pluginPath: join(root, "image/buoy"),
    binDir: join(root, "host/opt/cni/bin"),
    confDir: join(root, "host/etc/cni/net.d"),
    serviceAccountDir: join(root, "sa"),
    procNetRoute: join(root, "route"),
    sysClassNet: join(root, "sys"),
    hostname: "host-a",
    env: {
      CNI_NETWORK_CONFIG: SEED,
      KUBERNETES_NODE_NAME: "node-1",
      KUBERNETES_SERVICE_HOST: "10.96.0.1",
      KUBERNETES_SERVICE_PORT: "443",
      CNI_MTU: "1500",
      ...env,
    },
    write: (line) => output.push(line),
  };
}

const bin = (name = "") => join(root, "host/opt/cni/bin", name);
const conf = (name = "") => join(root, "host/etc/cni/net.d", name);

async function listing(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch {
    return [];
  }
}

async function mode(path: string): Promise<string> {
  return ((await stat(path)).mode & 0o777).toString(8);
}

describe("installCni()", () => {
  it("installs the executable under four names, one file hard-linked, mode 755", async () => {
    await installCni(settings(), "0.1.0");
    expect(await listing(bin())).toEqual(["buoy", "buoy-ipam", "calico", "calico-ipam"]);
    const inode = (await stat(bin("buoy"))).ino;
    for (const name of ["buoy", "buoy-ipam", "calico", "calico-ipam"]) {
      expect(await readFile(bin(name), "utf8")).toBe(PLUGIN);
      expect(await mode(bin(name))).toBe("755");
      expect((await stat(bin(name))).ino).toBe(inode);
    }
  });

  it("writes the rendered seed conflist, the kubeconfig (mode 600) and its record", async () => {
    await installCni(settings(), "0.1.0");
    expect(await listing(conf())).toEqual([
      ".buoy-install-cni.record",
      "10-calico.conflist",
      "calico-kubeconfig",
    ]);
    const conflist = JSON.parse(await readFile(conf("10-calico.conflist"), "utf8"));
    expect(conflist.plugins[0]).toMatchObject({
      type: "calico",
      nodename: "node-1",
      mtu: 1500,
      datastore_type: "kubernetes",
      kubernetes: { kubeconfig: "/etc/cni/net.d/calico-kubeconfig" },
      feature_control: { floating_ips: true },
    });
    expect(await mode(conf("10-calico.conflist"))).toBe("644");
    expect(await mode(conf("calico-kubeconfig"))).toBe("600");
    const kubeconfig = JSON.parse(await readFile(conf("calico-kubeconfig"), "utf8"));
    expect(kubeconfig.clusters[0].cluster.server).toBe("https://10.96.0.1:443");
    expect(kubeconfig.users[0].user.token).toBe("pod-token");
    const record = JSON.parse(await readFile(conf(INSTALL_RECORD_NAME), "utf8"));
    expect(record.files.map((file: { name: string }) => file.name)).toEqual([
      "buoy",
      "buoy-ipam",
      "calico",
      "calico-ipam",
      "calico-kubeconfig",
      "10-calico.conflist",
    ]);
  });

  it("prints what it did, conflist last", async () => {
    await installCni(settings(), "0.1.0");
    expect(output).toEqual([
      expect.stringMatching(
        /^installed .*\/bin\/buoy \(from .*\/image\/buoy, 0\.0 MB\) and buoy-ipam, calico, calico-ipam as hard links to it$/,
      ),
      expect.stringMatching(
        /^wrote .*\/calico-kubeconfig \(mode 600\): API server https:\/\/10\.96\.0\.1:443, the pod's own service account token$/,
      ),
      expect.stringMatching(
        /^wrote .*\/10-calico\.conflist from CNI_NETWORK_CONFIG: network k8s-pod-network \(CNI 0\.3\.0\), plugins calico -> portmap, node node-1, MTU 1500, datastore kubernetes, floating IPs on$/,
      ),
      "  MTU: CNI_MTU",
      "done: the node's CNI network is buoy's",
    ]);
  });

  it("leaves no temp file behind", async () => {
    await installCni(settings(), "0.1.0");
    const names = [...(await listing(bin())), ...(await listing(conf()))];
    expect(names.filter((name) => name.includes("tmp"))).toEqual([]);
  });

  it("takes the MTU of the default route's interface for CNI_MTU 0, as Calico's auto-detect", async () => {
    await installCni(settings({ CNI_MTU: "0" }), "0.1.0");
    const conflist = JSON.parse(await readFile(conf("10-calico.conflist"), "utf8"));
    expect(conflist.plugins[0].mtu).toBe(1450);
    expect(output).toContain("  MTU: CNI_MTU 0: the default route's interface has MTU 1450");
  });

  it("reads the template from CNI_NETWORK_CONFIG_FILE", async () => {
    await writeFile(join(root, "template.json"), SEED);
    await installCni(
      settings({ CNI_NETWORK_CONFIG: "", CNI_NETWORK_CONFIG_FILE: join(root, "template.json") }),
      "0.1.0",
    );
    expect(await listing(conf())).toContain("10-calico.conflist");
  });

  it("installs for the etcdv3 datastore outside a pod, with no kubeconfig", async () => {
    await rm(join(root, "sa"), { recursive: true });
    const template = SEED.replace(
      '"kubernetes",',
      '"etcdv3", "etcd_endpoints": "__ETCD_ENDPOINTS__",',
    );
    await installCni(
      settings({ CNI_NETWORK_CONFIG: template, ETCD_ENDPOINTS: "http://10.0.0.1:2379" }),
      "0.1.0",
    );
    expect(await listing(conf())).toEqual([".buoy-install-cni.record", "10-calico.conflist"]);
    expect(output).toContainEqual(
      expect.stringMatching(/^no service account token at .*: no kubeconfig written/),
    );
  });

  it.each([
    {
      desc: "an unknown placeholder",
      env: { CNI_NETWORK_CONFIG: SEED.replace('"info"', '"__LOGLEVEL__"') },
      error:
        /cannot install the CNI config from CNI_NETWORK_CONFIG:\n {2}- unknown placeholder __LOGLEVEL__/,
    },
    {
      desc: "a template that renders to something other than JSON",
      env: { CNI_NETWORK_CONFIG: SEED.replace('"plugins": [', '"plugins": [[') },
      error: /the rendered config is not JSON/,
    },
    {
      desc: "a main plugin that is not buoy's",
      env: { CNI_NETWORK_CONFIG: SEED.replace('"type": "calico",', '"type": "flannel",') },
      error: /the main plugin \(plugins\[0\]\) is of type 'flannel'/,
    },
    { desc: "a bad MTU", env: { CNI_MTU: "big" }, error: /CNI_MTU must be a whole number/ },
    {
      desc: "no template",
      env: { CNI_NETWORK_CONFIG: "" },
      error: /no CNI network config: set CNI_NETWORK_CONFIG/,
    },
    {
      desc: "a conf name that is not a .conflist",
      env: { CNI_CONF_NAME: "10-calico.conf" },
      error: /CNI_CONF_NAME must be a file name ending in \.conflist, got '10-calico\.conf'/,
    },
    {
      desc: "a conf name with a slash",
      env: { CNI_CONF_NAME: "../x.conflist" },
      error: /CNI_CONF_NAME must be a file name/,
    },
    {
      desc: "no API server address in a pod",
      env: { KUBERNETES_SERVICE_HOST: "" },
      error: /KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set/,
    },
  ])("refuses $desc and writes nothing", async ({ env, error }) => {
    await expect(installCni(settings(env), "0.1.0")).rejects.toThrow(error);
    expect(await listing(bin())).toEqual([]);
    expect(await listing(conf())).toEqual([]);
  });

  it("refuses the kubernetes datastore outside a pod and writes nothing", async () => {
    await rm(join(root, "sa"), { recursive: true });
    await expect(installCni(settings(), "0.1.0")).rejects.toThrow(
      /datastore is kubernetes, but there is no service account token at .*sa\/token/,
    );
    expect(await listing(bin())).toEqual([]);
  });

  it("refuses a missing plugin executable", async () => {
    await rm(join(root, "image/buoy"));
    await expect(installCni(settings(), "0.1.0")).rejects.toThrow(
      /cannot read the plugin executable .*image\/buoy \(--plugin\)/,
    );
  });

  it("replaces its own files on a reinstall and removes the conflist it no longer writes", async () => {
    await installCni(settings(), "0.1.0");
    await writeFile(conf("05-other.conflist"), "{}");
    output = [];
    await installCni(settings({ CNI_CONF_NAME: "10-buoy.conflist" }), "0.1.0");
    expect(await listing(conf())).toEqual([
      ".buoy-install-cni.record",
      "05-other.conflist",
      "10-buoy.conflist",
      "calico-kubeconfig",
    ]);
    expect(output).toContainEqual(
      expect.stringMatching(/^removed .*\/10-calico\.conflist \(no longer installed\)$/),
    );
  });
});

describe("uninstallCni()", () => {
  it("removes what install put there and nothing else", async () => {
    await mkdir(bin(), { recursive: true });
    await mkdir(conf(), { recursive: true });
    await writeFile(bin("portmap"), "portmap");
    await writeFile(conf("05-other.conflist"), "{}");
    await installCni(settings(), "0.1.0");
    output = [];
    await uninstallCni(settings());
    expect(await listing(bin())).toEqual(["portmap"]);
    expect(await listing(conf())).toEqual(["05-other.conflist"]);
    expect(output[0]).toMatch(/^removed .*\/10-calico\.conflist \(uninstalled\)$/);
    expect(output.at(-1)).toMatch(/^removed .*\/\.buoy-install-cni\.record$/);
  });

  it("leaves a file that changed since it was installed", async () => {
    await installCni(settings(), "0.1.0");
    // Replaced, as an installer that renames does it (writing in place would
    // change all four names: they are one file).
    await rm(bin("calico"));
    await writeFile(bin("calico"), "Calico's own plugin");
    output = [];
    await uninstallCni(settings());
    expect(await listing(bin())).toEqual(["calico"]);
    expect(output).toContainEqual(
      expect.stringMatching(/^left .*\/bin\/calico: changed since buoy installed it$/),
    );
  });

  it("says so when there is nothing to uninstall, and succeeds", async () => {
    await uninstallCni(settings());
    expect(output).toEqual([expect.stringMatching(/^nothing to uninstall: no install record at /)]);
  });

  it("tolerates files already gone", async () => {
    await installCni(settings(), "0.1.0");
    await rm(bin("buoy-ipam"));
    output = [];
    await uninstallCni(settings());
    expect(output).toContainEqual(expect.stringMatching(/\/bin\/buoy-ipam: already gone$/));
    expect(await listing(bin())).toEqual([]);
  });
});

describe("installCni() with CNI_SERVICE_ACCOUNT", () => {
  async function apiServer(
    answer: (request: IncomingMessage, body: string) => { status: number; body: unknown },
  ): Promise<{
    port: number;
    requests: { url: string; auth: string; body: unknown }[];
    close(): void;
  }> {
    const requests: { url: string; auth: string; body: unknown }[] = [];
    const server = createServer((request, response) => {
      let body = "";
      request.on("data", (chunk: Buffer) => (body += chunk.toString()));
      request.on("end", () => {
        requests.push({
          url: `${request.method} ${request.url}`,
          auth: request.headers.authorization ?? "",
          body: JSON.parse(body),
        });
        const reply = answer(request, body);
        response.writeHead(reply.status, { "content-type": "application/json" });
        response.end(JSON.stringify(reply.body));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return {
      port: (server.address() as AddressInfo).port,
      requests,
      close: () => server.close(),
    };
  }

  it("gives the plugin a token for that account, asked for with the pod's own", async () => {
    const api = await apiServer(() => ({
      status: 201,
      body: { status: { token: "plugin-token", expirationTimestamp: "2027-01-01T00:00:00Z" } },
    }));
    try {
      await installCni(
        settings({
          KUBERNETES_SERVICE_PROTOCOL: "http",
          KUBERNETES_SERVICE_HOST: "127.0.0.1",
          KUBERNETES_SERVICE_PORT: String(api.port),
          CNI_SERVICE_ACCOUNT: "buoy-cni-plugin",
        }),
        "0.1.0",
      );
    } finally {
      api.close();
    }
    expect(api.requests).toEqual([
      {
        url: "POST /api/v1/namespaces/kube-system/serviceaccounts/buoy-cni-plugin/token",
        auth: "Bearer pod-token",
        body: {
          apiVersion: "authentication.k8s.io/v1",
          kind: "TokenRequest",
          spec: { expirationSeconds: 31536000 },
        },
      },
    ]);
    const kubeconfig = JSON.parse(await readFile(conf("calico-kubeconfig"), "utf8"));
    expect(kubeconfig.users[0].user.token).toBe("plugin-token");
    expect(output).toContainEqual(
      expect.stringMatching(
        /a token for service account kube-system\/buoy-cni-plugin valid until 2027-01-01T00:00:00Z$/,
      ),
    );
  });

  it("reports the API server's refusal and writes nothing", async () => {
    const api = await apiServer(() => ({
      status: 403,
      body: { kind: "Status", message: 'serviceaccounts "buoy-cni-plugin" is forbidden' },
    }));
    try {
      await expect(
        installCni(
          settings({
            KUBERNETES_SERVICE_PROTOCOL: "http",
            KUBERNETES_SERVICE_HOST: "127.0.0.1",
            KUBERNETES_SERVICE_PORT: String(api.port),
            CNI_SERVICE_ACCOUNT: "other-ns/buoy-cni-plugin",
          }),
          "0.1.0",
        ),
      ).rejects.toThrow(
        'the API server refused a token for service account other-ns/buoy-cni-plugin: HTTP 403: serviceaccounts "buoy-cni-plugin" is forbidden',
      );
    } finally {
      api.close();
    }
    expect(await listing(bin())).toEqual([]);
  });
});
