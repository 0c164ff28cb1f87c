// The Helm chart (charts/buoy) through the real helm v3 client: manifests/ is
// its render with the defaults, and each value lands where it should (the
// image on every container, routing with and without BIRD, the AS number,
// pools buoy's own manifest parser accepts, the CNI directories, the
// ServiceMonitor over the agents' metrics port); a value buoy would not run
// with is refused before anything is installed. Installed and uninstalled
// on a real node in test/node/helm.test.ts.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { parseManifests } from "../../src/cli/manifest.js";
import { ROOT } from "../support/harness.js";

const HELM = join(ROOT, "node_modules/.bin/helm");
const CHART = join(ROOT, "charts/buoy");

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function template(...set: string[]): { status: number | null; objects: Json[]; stderr: string } {
  const run = spawnSync(
    HELM,
    ["template", "buoy", CHART, "--namespace", "kube-system", ...set.flatMap((s) => ["--set", s])],
    { encoding: "utf8" },
  );
  const objects =
    run.status === 0
      ? parseAllDocuments(run.stdout)
          .map((d) => d.toJSON() as Json)
          .filter(Boolean)
      : [];
  return { status: run.status, objects, stderr: run.stderr };
}

const daemonSet = (objects: Json[]) =>
  objects.find((o) => o.kind === "DaemonSet" && o.metadata.name === "buoy-node") as Json;
const containers = (objects: Json[]) =>
  objects.flatMap((o) =>
    o.spec?.template?.spec
      ? [...(o.spec.template.spec.initContainers ?? []), ...o.spec.template.spec.containers]
      : [],
  ) as Json[];

describe("the Helm chart", () => {
  it("lints, and manifests/ is its render with the defaults", () => {
    const lint = spawnSync(HELM, ["lint", CHART, "--strict"], { encoding: "utf8" });
    expect(lint.status, lint.stdout + lint.stderr).toBe(0);
    const check = spawnSync("node", [join(ROOT, "scripts/render-manifests.mjs"), "--check"], {
      encoding: "utf8",
    });
    expect(check.status, check.stderr).toBe(0);
  });

  it("names the image once: every container runs image.repository:image.tag", () => {
    const { objects } = template("image.repository=registry.example/buoy", "image.tag=1.2.3");
    const images = containers(objects).map((c) => c.image);
    // install-cni, cni-token, buoy-agent, buoy-cni, bird; the webhook; the controller.
    expect(images).toHaveLength(7);
    expect(new Set(images)).toEqual(new Set(["registry.example/buoy:1.2.3"]));
  });

  it("routing direct runs no BIRD; the AS number reaches the agent; a bad one is refused", () => {
    const direct = daemonSet(template("routing=direct", "asNumber=65010").objects);
    const names = direct.spec.template.spec.containers.map((c: Json) => c.name);
    expect(names).not.toContain("bird");
    const agent = direct.spec.template.spec.containers.find((c: Json) => c.name === "buoy-agent");
    expect(agent.command).toEqual(
      expect.arrayContaining(["--routing=direct", "--as-number=65010"]),
    );
    expect(
      daemonSet(template().objects).spec.template.spec.containers.map((c: Json) => c.name),
    ).toContain("bird");
    const ospf = template("routing=ospf");
    expect(ospf.status).not.toBe(0);
    expect(ospf.stderr).toContain('routing: routing must be one of the following: "bgp", "direct"');
    expect(template("asNumber=0").stderr).toContain("asNumber: Must be greater than or equal to 1");
  });

  it("renders values.pools as IP pools buoy's own manifest parser takes", () => {
    const { objects } = template(
      "pools[0].name=pods",
      "pools[0].cidr=10.244.0.0/16",
      "pools[0].natOutgoing=true",
      "pools[1].name=floating-team-a",
      "pools[1].cidr=10.96.10.0/24",
      "pools[1].disabled=true",
      "pools[1].namespaceSelector=team == 'a'",
    );
    const pools = objects.filter((o) => o.kind === "IPPool");
    const parsed = parseManifests(
      JSON.stringify({ apiVersion: "buoy.dev/v1", kind: "List", items: pools }),
    );
    expect(parsed.map((r) => (r.kind === "IPPool" ? r.pool : undefined))).toEqual([
      expect.objectContaining({
        name: "pods",
        cidr: "10.244.0.0/16",
        natOutgoing: true,
        disabled: false,
      }),
      expect.objectContaining({
        name: "floating-team-a",
        disabled: true,
        namespaceSelector: "team == 'a'",
      }),
    ]);
  });

  it("puts the CNI directories where the kubelet has them, and tells the conflist the server's socket", () => {
    const { objects } = template("cni.binDir=/k/bin", "cni.confDir=/k/net.d", "cni.runDir=/k/run");
    const volumes = daemonSet(objects).spec.template.spec.volumes as Json[];
    const path = (name: string) => volumes.find((v) => v.name === name)?.hostPath?.path;
    expect([path("cni-bin-dir"), path("cni-net-dir"), path("buoy-run")]).toEqual([
      "/k/bin",
      "/k/net.d",
      "/k/run",
    ]);
    const env = containers(objects).find((c) => c.name === "install-cni")?.env as Json[];
    expect(env.find((e) => e.name === "CNI_NET_DIR")?.value).toBe("/k/net.d");
    const server = containers(objects).find((c) => c.name === "buoy-cni");
    expect(server?.command).toContain("--socket=/k/run/cni/cni.sock");
    const config = objects.find(
      (o) => o.kind === "ConfigMap" && o.metadata.name === "calico-config",
    );
    const conflist = JSON.parse(
      String(config?.data.cni_network_config).replace(/__[A-Z_]+__/g, "0"),
    ) as { plugins: Json[] };
    expect(conflist.plugins[0]?.agent_socket).toBe("/k/run/cni/cni.sock");
    // The defaults name no socket: the plugin's own default is the DaemonSet's.
    const defaults = template().objects.find((o) => o.metadata?.name === "calico-config");
    expect(String(defaults?.data.cni_network_config)).not.toContain("agent_socket");
  });

  it("serviceMonitor.enabled adds a ServiceMonitor over the agents' metrics port", () => {
    expect(template().objects.some((o) => o.kind === "ServiceMonitor")).toBe(false);
    const { objects } = template(
      "serviceMonitor.enabled=true",
      "serviceMonitor.labels.release=prom",
    );
    const monitor = objects.find((o) => o.kind === "ServiceMonitor") as Json;
    const service = objects.find(
      (o) => o.kind === "Service" && o.metadata.name === "buoy-node-metrics",
    ) as Json;
    expect(monitor.metadata.labels.release).toBe("prom");
    expect(monitor.spec.selector.matchLabels).toEqual(service.metadata.labels);
    const podLabels = daemonSet(objects).spec.template.metadata.labels;
    expect(service.spec.selector).toEqual(podLabels);
    const agent = daemonSet(objects).spec.template.spec.containers.find(
      (c: Json) => c.name === "buoy-agent",
    );
    expect(agent.ports).toEqual([{ name: "metrics", containerPort: service.spec.ports[0].port }]);
  });

  it("types every value: YAML in a value, a number for the tag, a fractional AS are refused; big ASes render whole", () => {
    const injected = template(
      "pools[0].name=a\n  namespace: kube-system",
      "pools[0].cidr=10.0.0.0/24",
    );
    expect(injected.status).not.toBe(0);
    expect(injected.stderr).toContain("pools.0.name: Does not match pattern");
    expect(template("image.tag=x\n  privileged: true").status).not.toBe(0);
    expect(template("serviceMonitor.interval=30s\n  scheme: http").status).not.toBe(0);
    expect(template('cni.runDir=/run/x",y').status).not.toBe(0);
    const run = (values: string) =>
      spawnSync(HELM, ["template", "buoy", CHART, "-f", "-"], { encoding: "utf8", input: values });
    expect(run("image:\n  repository: buoy\n  tag: 20240101\n").stderr).toContain(
      "image.tag: Invalid type. Expected: string, given: integer",
    );
    expect(run("asNumber: 65000.5\n").status).not.toBe(0);
    expect(run("asNumber: 4200000000\n").stdout).toContain("--as-number=4200000000");
  });

  it("keeps the pools it made through uninstall and an upgrade that leaves them out", () => {
    const { objects } = template("pools[0].name=pods", "pools[0].cidr=10.244.0.0/16");
    const pool = objects.find((o) => o.kind === "IPPool") as Json;
    expect(pool.metadata.annotations["helm.sh/resource-policy"]).toBe("keep");
  });
});
