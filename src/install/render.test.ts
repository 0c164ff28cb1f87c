import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { DEFAULT_LOG_FILE, DEFAULT_MTU } from "../cni/netconf.js";
import { PLACEHOLDERS } from "./placeholders.js";
import {
  parseDefaultRouteInterface,
  planPlaceholderValues,
  renderCniNetworkConfig,
  renderKubeconfig,
  serverUrl,
  validateConflist,
} from "./render.js";

const SEED = readFileSync(
  new URL("../../test/fixtures/seed-cni-network-config.json", import.meta.url),
  "utf8",
);

const FACTS = { hostname: "host-a", pluginToken: "tok.en", defaultRouteMtu: undefined };

function values(env: Record<string, string> = {}, facts = FACTS): Map<string, string> {
  const planned = planPlaceholderValues(env, facts);
  expect(planned.errors).toEqual([]);
  return planned.values;
}

function render(template: string, env: Record<string, string> = {}): string {
  const result = renderCniNetworkConfig(template, values(env));
  if (!result.ok) throw new Error(result.errors.join("; "));
  return result.text;
}

describe("planPlaceholderValues()", () => {
  it("gives every placeholder in the table a value, and no other", () => {
    expect([...values().keys()].sort()).toEqual(PLACEHOLDERS.map((p) => p.name).sort());
  });

  it.each([
    {
      desc: "the node name from KUBERNETES_NODE_NAME",
      env: { KUBERNETES_NODE_NAME: "node-1" },
      name: "KUBERNETES_NODE_NAME",
      value: "node-1",
    },
    {
      desc: "the node name from the hostname when unset",
      env: {},
      name: "KUBERNETES_NODE_NAME",
      value: "host-a",
    },
    { desc: "the MTU from CNI_MTU", env: { CNI_MTU: "9000" }, name: "CNI_MTU", value: "9000" },
    {
      desc: "MTU 1500 when nothing gives one",
      env: {},
      name: "CNI_MTU",
      value: String(DEFAULT_MTU),
    },
    {
      desc: "the kubeconfig path under CNI_NET_DIR",
      env: { CNI_NET_DIR: "/etc/kubernetes/cni/net.d/" },
      name: "KUBECONFIG_FILEPATH",
      value: "/etc/kubernetes/cni/net.d/calico-kubeconfig",
    },
    {
      desc: "the kubeconfig path under /etc/cni/net.d by default",
      env: {},
      name: "KUBECONFIG_FILEPATH",
      value: "/etc/cni/net.d/calico-kubeconfig",
    },
    {
      desc: "the kubeconfig's file name",
      env: {},
      name: "KUBECONFIG_FILENAME",
      value: "calico-kubeconfig",
    },
    {
      desc: "the datastore kubernetes by default",
      env: {},
      name: "DATASTORE_TYPE",
      value: "kubernetes",
    },
    { desc: "the token the plugin gets", env: {}, name: "SERVICEACCOUNT_TOKEN", value: "tok.en" },
    { desc: "log level info by default", env: {}, name: "LOG_LEVEL", value: "info" },
    { desc: "buoy's log file by default", env: {}, name: "LOG_FILE_PATH", value: DEFAULT_LOG_FILE },
    { desc: "no etcd TLS files by default", env: {}, name: "ETCD_CERT_FILE", value: "" },
    {
      desc: "the etcd client certificate's host path",
      env: { ETCD_CERT_FILE: "/etc/buoy/etcd-cert.pem" },
      name: "ETCD_CERT_FILE",
      value: "/etc/buoy/etcd-cert.pem",
    },
    {
      desc: "the etcd CA's host path",
      env: { ETCD_CA_CERT_FILE: "/etc/buoy/etcd-ca.pem" },
      name: "ETCD_CA_CERT_FILE",
      value: "/etc/buoy/etcd-ca.pem",
    },
  ])("gives $desc", ({ env, name, value }) => {
    expect(values(env).get(name)).toBe(value);
  });

  it.each([
    { desc: "unset", env: {}, detected: 1450, mtu: "1450" },
    { desc: "0 (Calico's auto-detect)", env: { CNI_MTU: "0" }, detected: 9001, mtu: "9001" },
    { desc: "0 with no default route", env: { CNI_MTU: "0" }, detected: undefined, mtu: "1500" },
  ])("takes the default route's MTU when CNI_MTU is $desc", ({ env, detected, mtu }) => {
    const planned = planPlaceholderValues(env, { ...FACTS, defaultRouteMtu: detected });
    expect(planned.values.get("CNI_MTU")).toBe(mtu);
    expect(planned.mtuSource).toMatch(/CNI_MTU/);
  });

  it.each(["abc", "67", "65536", "1500.5", "-1"])("refuses CNI_MTU %s", (mtu) => {
    expect(planPlaceholderValues({ CNI_MTU: mtu }, FACTS).errors).toEqual([
      `CNI_MTU must be a whole number from 68 to 65535 (or 0), got '${mtu}'`,
    ]);
  });

  it("names the plugin's own defaults in the placeholder table", () => {
    const text = PLACEHOLDERS.map((p) => p.meaning).join("\n");
    expect(text).toContain(DEFAULT_LOG_FILE);
    expect(text).toContain(String(DEFAULT_MTU));
  });
});

describe("renderCniNetworkConfig()", () => {
  it("renders the seed's conflist into the config buoy's plugin reads", () => {
    const text = render(SEED, { KUBERNETES_NODE_NAME: "node-1", CNI_MTU: "1440" });
    const conflist = JSON.parse(text) as { plugins: Record<string, unknown>[] };
    expect(conflist.plugins[0]).toMatchObject({
      type: "calico",
      nodename: "node-1",
      mtu: 1440,
      kubernetes: { kubeconfig: "/etc/cni/net.d/calico-kubeconfig" },
      feature_control: { floating_ips: true },
    });
    expect(conflist.plugins[1]).toEqual({
      type: "portmap",
      snat: true,
      capabilities: { portMappings: true },
    });
  });

  it("substitutes every occurrence and keeps the rest of the text as it is", () => {
    expect(render("a __LOG_LEVEL__ b __LOG_LEVEL__\n  c", { LOG_LEVEL: "debug" })).toBe(
      "a debug b debug\n  c",
    );
  });

  it("reports the placeholders it does not know, once each, by name", () => {
    const result = renderCniNetworkConfig(
      '{"a": "__NOPE__", "b": "__NOPE__", "c": "__IPV4POOL__"}',
      values(),
    );
    expect(result).toEqual({
      ok: false,
      errors: [
        "unknown placeholder __NOPE__ (buoy install-cni --help lists the known ones)",
        "unknown placeholder __IPV4POOL__ (buoy install-cni --help lists the known ones)",
      ],
    });
  });

  it("does not mistake other double underscores for placeholders", () => {
    expect(render('{"a": "x__y", "b": "__lower__", "c": "____"}')).toBe(
      '{"a": "x__y", "b": "__lower__", "c": "____"}',
    );
  });

  it("never scans a substituted value again", () => {
    const map = new Map([...values(), ["LOG_LEVEL", "__NOPE__"]]);
    expect(renderCniNetworkConfig('"__LOG_LEVEL__"', map)).toEqual({
      ok: true,
      text: '"__NOPE__"',
      used: ["LOG_LEVEL"],
    });
  });

  it("escapes values as inside a JSON string", () => {
    const map = new Map([...values(), ["KUBERNETES_NODE_NAME", 'a"b\\c']]);
    const result = renderCniNetworkConfig('{"nodename": "__KUBERNETES_NODE_NAME__"}', map);
    expect(result.ok && JSON.parse(result.text)).toEqual({ nodename: 'a"b\\c' });
  });

  it.each([
    {
      desc: "the token outside a pod",
      name: "SERVICEACCOUNT_TOKEN",
      reason: /no service account token/,
    },
    {
      desc: "etcd endpoints when ETCD_ENDPOINTS is unset",
      name: "ETCD_ENDPOINTS",
      reason: /ETCD_ENDPOINTS is empty/,
    },
    {
      desc: "the API server's host outside a pod",
      name: "KUBERNETES_SERVICE_HOST",
      reason: /KUBERNETES_SERVICE_HOST is empty/,
    },
  ])("refuses an empty required value: $desc", ({ name, reason }) => {
    const planned = planPlaceholderValues({}, { ...FACTS, pluginToken: undefined });
    const result = renderCniNetworkConfig(`"__${name}__"`, planned.values);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.errors.join()).toMatch(reason);
  });

  it("accepts an empty optional value", () => {
    expect(render('"__ETCD_CA_CERT_FILE__"')).toBe('""');
  });
});

describe("validateConflist()", () => {
  const valid = render(SEED, { KUBERNETES_NODE_NAME: "node-1" });

  it("summarises a valid conflist", () => {
    expect(validateConflist(valid)).toEqual({
      ok: true,
      summary: {
        name: "k8s-pod-network",
        cniVersion: "0.3.0",
        pluginTypes: ["calico", "portmap"],
        datastoreType: "kubernetes",
        nodename: "node-1",
        mtu: 1500,
        floatingIps: true,
        maxFloatingIps: 16,
        kubeconfig: "/etc/cni/net.d/calico-kubeconfig",
      },
    });
  });

  const main = (extra: string) =>
    `{"name": "n", "cniVersion": "0.3.1", "plugins": [{"type": "calico", "datastore_type": "kubernetes"${extra}}]}`;

  it("refuses a cniVersions that is not a list of versions buoy speaks", () => {
    const listed = (versions: string) =>
      validateConflist(
        `{"name": "n", "cniVersion": "1.0.0", "cniVersions": ${versions}, "plugins": [{"type": "calico", "datastore_type": "kubernetes"}]}`,
      );
    expect(listed('["1.0.0", "1.1.0"]').ok).toBe(true);
    expect(listed('"1.1.0"')).toEqual({
      ok: false,
      errors: ["the conflist's 'cniVersions' is not a list of strings"],
    });
    expect(listed('["1.0.0", "9.9.9"]')).toMatchObject({
      ok: false,
      errors: [
        expect.stringContaining(
          "the conflist's 'cniVersions' lists 9.9.9, which buoy does not support (0.1.0,",
        ),
      ],
    });
  });

  it("locates a JSON error by line and column when V8 gives its position", () => {
    const result = validateConflist('{\n  "name": "n",\n}');
    expect(!result.ok && result.errors[0]).toBe(
      "the rendered config is not JSON: Expected double-quoted property name in JSON at position 17 (line 3, column 1)",
    );
  });

  it.each([
    {
      desc: "text that is not JSON",
      text: '{\n  "name": "n",\n  "mtu": ,\n}',
      error: /^the rendered config is not JSON: Unexpected token ',', [^\n]*$/,
    },
    { desc: "a JSON array", text: "[]", error: /not a JSON object/ },
    {
      desc: "a single plugin config (.conf)",
      text: '{"name": "n", "type": "calico"}',
      error: /not a conflist: it needs a non-empty 'plugins' list/,
    },
    {
      desc: "an empty plugin list",
      text: '{"name": "n", "plugins": []}',
      error: /non-empty 'plugins' list/,
    },
    {
      desc: "a list without a name",
      text: '{"plugins": [{"type": "calico"}]}',
      error: /the conflist has no 'name'/,
    },
    {
      desc: "a plugin without a type",
      text: '{"name": "n", "plugins": [{"type": "calico"}, {}]}',
      error: /plugins\[1\] has no 'type'/,
    },
    {
      desc: "another main plugin",
      text: '{"name": "n", "plugins": [{"type": "bridge"}]}',
      error: /the main plugin \(plugins\[0\]\) is of type 'bridge'; buoy installs calico or buoy/,
    },
    {
      desc: "a main plugin key of the wrong type",
      text: main(', "mtu": "1500"'),
      error: /the main plugin \(plugins\[0\]\): invalid network config: key 'mtu' must be number/,
    },
    {
      desc: "an unsupported cniVersion",
      text: '{"name": "n", "cniVersion": "9.9.9", "plugins": [{"type": "calico"}]}',
      error: /incompatible CNI versions/,
    },
    {
      desc: "etcdv3 without endpoints",
      text: '{"name": "n", "plugins": [{"type": "buoy", "datastore_type": "etcdv3", "etcd_endpoints": ""}]}',
      error: /etcd_endpoints is empty/,
    },
  ])("refuses $desc", ({ text, error }) => {
    const result = validateConflist(text);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.errors.join("\n")).toMatch(error);
  });

  it("accepts a buoy main plugin with floating IPs off", () => {
    const result = validateConflist(main(""));
    expect(result.ok && result.summary.floatingIps).toBe(false);
  });
});

describe("renderKubeconfig()", () => {
  it("writes JSON that names the server, the CA and the token", () => {
    const text = renderKubeconfig({
      server: "https://10.96.0.1:443",
      token: "abc",
      caPem: "-----BEGIN CERTIFICATE-----\n",
      skipTlsVerify: false,
    });
    const config = JSON.parse(text) as Record<string, unknown>;
    expect(config).toEqual({
      apiVersion: "v1",
      kind: "Config",
      clusters: [
        {
          name: "kubernetes",
          cluster: {
            server: "https://10.96.0.1:443",
            "certificate-authority-data": Buffer.from("-----BEGIN CERTIFICATE-----\n").toString(
              "base64",
            ),
          },
        },
      ],
      users: [{ name: "buoy-cni-plugin", user: { token: "abc" } }],
      contexts: [{ name: "buoy", context: { cluster: "kubernetes", user: "buoy-cni-plugin" } }],
      "current-context": "buoy",
    });
  });

  it("skips the CA when told to", () => {
    const text = renderKubeconfig({
      server: "https://h:1",
      token: "t",
      caPem: "x",
      skipTlsVerify: true,
    });
    expect(JSON.parse(text).clusters[0].cluster).toEqual({
      server: "https://h:1",
      "insecure-skip-tls-verify": true,
    });
  });
});

describe("serverUrl()", () => {
  it.each([
    { host: "10.96.0.1", url: "https://10.96.0.1:443" },
    { host: "fd00:96::1", url: "https://[fd00:96::1]:443" },
    { host: "[fd00:96::1]", url: "https://[fd00:96::1]:443" },
    { host: "api.example", url: "https://api.example:443" },
  ])("serverUrl() puts $host in a URL", ({ host, url }) => {
    expect(serverUrl("https", host, "443")).toBe(url);
    expect(() => new URL(url)).not.toThrow();
  });
});

describe("parseDefaultRouteInterface()", () => {
  const header =
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT";
  it.each([
    {
      desc: "the default route's interface",
      rows: [
        "eth0\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\t0\t0\t0",
        "eth0\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0",
      ],
      iface: "eth0",
    },
    {
      desc: "the one with the lowest metric",
      rows: [
        "wlan0\t00000000\t0100000A\t0003\t0\t0\t600\t00000000\t0\t0\t0",
        "ens3\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\t0\t0\t0",
      ],
      iface: "ens3",
    },
    {
      desc: "none without a default route",
      rows: ["eth0\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0"],
      iface: undefined,
    },
    {
      desc: "none when it is down",
      rows: ["eth0\t00000000\t0100000A\t0002\t0\t0\t0\t00000000\t0\t0\t0"],
      iface: undefined,
    },
  ])("finds $desc", ({ rows, iface }) => {
    expect(parseDefaultRouteInterface([header, ...rows].join("\n") + "\n")).toBe(iface);
  });
});
