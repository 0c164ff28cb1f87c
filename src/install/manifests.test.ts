// The manifests in manifests/, parsed: structural CRDs for every kind in
// BUOY_CRDS, RBAC that grants each of them, the ConfigMap's conflist rendered
// by install-cni's own renderer, and a DaemonSet whose references resolve.
import { readFileSync, readdirSync } from "node:fs";
import { dirname } from "node:path";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { DEFAULT_AGENT_SOCKET } from "../cni/agent-wire.js";
import { DEFAULT_LOG_FILE } from "../cni/netconf.js";
import { BUOY_API_GROUP, BUOY_VERSION } from "../model/api-group.js";
import { BUOY_CRDS, crdName } from "./buoy-crds.js";
import { planPlaceholderValues, renderCniNetworkConfig, validateConflist } from "./render.js";

type Json = Record<string, unknown>;

const MANIFESTS = new URL("../../manifests/", import.meta.url);

function load(file: string): Json[] {
  const text = readFileSync(new URL(file, MANIFESTS), "utf8");
  return parseAllDocuments(text)
    .map((document) => {
      expect(document.errors, file).toEqual([]);
      return document.toJS() as Json;
    })
    .filter((value) => value !== null);
}

const all = readdirSync(MANIFESTS)
  .filter((file) => file.endsWith(".yaml") && file !== "kustomization.yaml")
  .flatMap((file) => load(file).map((object) => ({ file, object })));

function find(kind: string, name: string, file?: string): Json {
  const found = all.find(
    ({ file: f, object }) =>
      object.kind === kind &&
      (object.metadata as Json).name === name &&
      (file === undefined || f === file),
  );
  if (!found) throw new Error(`no ${kind} ${name} in manifests/`);
  return found.object;
}

const at = (value: unknown, ...path: (string | number)[]): unknown =>
  path.reduce<unknown>((node, key) => (node as Record<string | number, unknown>)?.[key], value);

describe("manifests/kustomization.yaml", () => {
  it("lists every manifest of an install, and names the image the containers use", () => {
    const kustomization = load("kustomization.yaml")[0] as Json;
    const installed = readdirSync(MANIFESTS)
      .filter((file) => file.endsWith(".yaml"))
      .filter((file) => !["kustomization.yaml", "uninstall.yaml"].includes(file))
      .sort();
    expect([...(kustomization.resources as string[])].sort()).toEqual(installed);
    const images = new Set(
      all
        .filter(({ file }) => file !== "uninstall.yaml")
        .flatMap(({ object }) => {
          const pod = at(object, "spec", "template", "spec") as Json | undefined;
          return [
            ...((pod?.initContainers as Json[]) ?? []),
            ...((pod?.containers as Json[]) ?? []),
          ];
        })
        .map((container) => String(container.image).split(":")[0]),
    );
    expect([...images]).toEqual([(kustomization.images as Json[])[0]?.name]);
  });
});

describe("manifests/", () => {
  it("every document has an apiVersion, a kind and a name", () => {
    expect(all.length).toBeGreaterThan(10);
    for (const { file, object } of all) {
      expect(typeof object.apiVersion, file).toBe("string");
      expect(typeof object.kind, file).toBe("string");
      expect(typeof at(object, "metadata", "name"), `${file} ${String(object.kind)}`).toBe(
        "string",
      );
    }
  });

  it("namespaced objects live in kube-system, the status Leases' Role and binding in buoy-system", () => {
    const clusterScoped = [
      "CustomResourceDefinition",
      "ClusterRole",
      "ClusterRoleBinding",
      "ValidatingWebhookConfiguration",
      "Namespace",
    ];
    for (const { file, object } of all) {
      if (clusterScoped.includes(object.kind as string)) continue;
      const inBuoySystem =
        ["rbac.yaml", "controller.yaml"].includes(file) &&
        ["Role", "RoleBinding"].includes(object.kind as string) &&
        at(object, "metadata", "namespace") === "buoy-system";
      if (inBuoySystem) continue;
      expect(at(object, "metadata", "namespace"), `${file} ${String(object.kind)}`).toBe(
        "kube-system",
      );
    }
    expect(find("Namespace", "buoy-system", "rbac.yaml")).toBeDefined();
  });

  it("gives each host-network workload ports of its own: two on one node must both bind", () => {
    const owner = new Map<number, string>();
    for (const { file, object } of all) {
      const spec = at(object, "spec", "template", "spec") as Json | undefined;
      if (!spec?.hostNetwork) continue;
      const name = `${file} ${String(object.kind)} ${String(at(object, "metadata", "name"))}`;
      const ports = new Set<number>();
      for (const container of (spec.containers as Json[]) ?? []) {
        for (const port of (container.ports as Json[] | undefined) ?? [])
          ports.add(port.containerPort as number);
        for (const arg of (container.command as string[] | undefined) ?? []) {
          const listen = /^--listen=.*:(\d+)$/.exec(arg);
          if (listen) ports.add(Number(listen[1]));
        }
      }
      for (const port of ports) {
        expect(owner.get(port), `port ${port}: ${name}`).toBeUndefined();
        owner.set(port, name);
      }
    }
    expect(owner.get(9096)).toMatch(/buoy-node$/);
    expect(owner.get(9097)).toMatch(/buoy-controller$/);
  });
});

describe("manifests/crds.yaml", () => {
  const crds = load("crds.yaml");

  it("defines exactly the kinds in BUOY_CRDS", () => {
    expect(crds.map((crd) => at(crd, "spec", "names", "kind"))).toEqual(
      BUOY_CRDS.map((crd) => crd.kind),
    );
  });

  it.each(BUOY_CRDS.map((crd) => ({ ...crd, desc: crd.kind })))(
    "$desc: named as in BUOY_CRDS, scoped as it says, one served and stored v1",
    ({ kind, plural, singular, shortNames, scope }) => {
      const crd = find("CustomResourceDefinition", crdName(plural));
      expect(crd.apiVersion).toBe("apiextensions.k8s.io/v1");
      expect(at(crd, "spec", "group")).toBe(BUOY_API_GROUP);
      expect(at(crd, "spec", "scope")).toBe(scope);
      expect(at(crd, "spec", "names")).toEqual({
        kind,
        listKind: `${kind}List`,
        plural,
        singular,
        ...(shortNames.length > 0 ? { shortNames } : {}),
        categories: ["buoy"],
      });
      const versions = at(crd, "spec", "versions") as Json[];
      expect(versions.map((v) => [v.name, v.served, v.storage])).toEqual([
        [BUOY_VERSION, true, true],
      ]);
    },
  );

  it.each(BUOY_CRDS.map((crd) => ({ plural: crd.plural })))(
    "$plural: the schema is structural",
    ({ plural }) => {
      const version = (
        at(find("CustomResourceDefinition", crdName(plural)), "spec", "versions") as Json[]
      )[0];
      const schema = at(version, "schema", "openAPIV3Schema") as Json;
      expect(schema.type).toBe("object");
      expect(structuralProblems(schema, "openAPIV3Schema")).toEqual([]);
      expect(Object.keys(schema.properties as Json).sort()).toEqual(
        [
          "apiVersion",
          "kind",
          "metadata",
          "spec",
          ...(plural === "floatingipclaims" || plural === "floatingips" ? ["status"] : []),
        ].sort(),
      );
    },
  );

  it.each(BUOY_CRDS.map((crd) => ({ plural: crd.plural })))(
    "$plural: every printer column's path is in the schema",
    ({ plural }) => {
      const version = (
        at(find("CustomResourceDefinition", crdName(plural)), "spec", "versions") as Json[]
      )[0];
      const schema = at(version, "schema", "openAPIV3Schema") as Json;
      for (const column of at(version, "additionalPrinterColumns") as Json[]) {
        const path = (column.jsonPath as string).replace(/^\./, "").split(".");
        if (path[0] === "metadata") continue;
        const node = path.reduce<unknown>((s, key) => at(s, "properties", key), schema);
        expect(node, `${plural} ${String(column.jsonPath)}`).toBeDefined();
      }
    },
  );

  it("FloatingIPClaim prints IP, POD, NODE and PROGRAMMED, and has a status subresource", () => {
    const version = (
      at(
        find("CustomResourceDefinition", "floatingipclaims.buoy.dev"),
        "spec",
        "versions",
      ) as Json[]
    )[0];
    const columns = (at(version, "additionalPrinterColumns") as Json[])
      .filter((column) => column.priority === undefined)
      .map((column) => column.name);
    expect(columns).toEqual(expect.arrayContaining(["IP", "Pod", "Node", "Programmed"]));
    expect(at(version, "subresources")).toEqual({ status: {} });
  });

  it("IPPool has Calico's field names", () => {
    const version = (
      at(find("CustomResourceDefinition", "ippools.buoy.dev"), "spec", "versions") as Json[]
    )[0];
    expect(
      Object.keys(
        at(version, "schema", "openAPIV3Schema", "properties", "spec", "properties") as Json,
      ),
    ).toEqual([
      "cidr",
      "blockSize",
      "disabled",
      "nodeSelector",
      "namespaceSelector",
      "natOutgoing",
      "disableBGPExport",
      "vxlanMode",
    ]);
  });
});

/**
 * The rules of a structural schema that a file can break: every property,
 * array item and additionalProperties schema has a type; inside anyOf, allOf,
 * oneOf and not, no type, description, default, additionalProperties or
 * nullable; metadata only as `type: object`.
 */
function structuralProblems(schema: Json, path: string): string[] {
  const problems: string[] = [];
  const children: [string, Json][] = [
    ...Object.entries((schema.properties as Record<string, Json> | undefined) ?? {}).map(
      ([key, child]): [string, Json] => [`${path}.${key}`, child],
    ),
    ...(schema.items ? [[`${path}[]`, schema.items as Json] as [string, Json]] : []),
    ...(typeof schema.additionalProperties === "object"
      ? [[`${path}{}`, schema.additionalProperties as Json] as [string, Json]]
      : []),
  ];
  for (const [childPath, child] of children) {
    if (typeof child.type !== "string") problems.push(`${childPath} has no type`);
    if (child.type === "array" && !child.items) problems.push(`${childPath} has no items`);
    problems.push(...structuralProblems(child, childPath));
  }
  for (const junctor of ["anyOf", "allOf", "oneOf"]) {
    for (const branch of (schema[junctor] as Json[] | undefined) ?? []) {
      for (const key of ["type", "description", "default", "additionalProperties", "nullable"]) {
        if (key in branch) problems.push(`${path}.${junctor} sets ${key}`);
      }
    }
  }
  if (path.endsWith(".metadata") && JSON.stringify(schema) !== '{"type":"object"}') {
    problems.push(`${path} may only be {type: object}`);
  }
  return problems;
}

describe("manifests/rbac.yaml", () => {
  const roleIn = (kind: string, name: string, namespace?: string): Json => {
    const found = all.find(
      ({ object }) =>
        object.kind === kind &&
        at(object, "metadata", "name") === name &&
        at(object, "metadata", "namespace") === namespace,
    );
    if (!found) throw new Error(`no ${kind} ${namespace ?? ""}/${name} in manifests/`);
    return found.object;
  };
  const rules = (kind: string, name: string, namespace?: string) =>
    at(roleIn(kind, name, namespace), "rules") as Json[];
  /** Every grant of a role as `<group>/<resource>: verb verb` lines, sorted. */
  const grants = (kind: string, name: string, namespace?: string): Record<string, string> => {
    const byResource = new Map<string, Set<string>>();
    for (const rule of rules(kind, name, namespace)) {
      for (const group of rule.apiGroups as string[]) {
        for (const resource of rule.resources as string[]) {
          const key = `${group || "core"}/${resource}`;
          const verbs = byResource.get(key) ?? new Set<string>();
          for (const verb of rule.verbs as string[]) verbs.add(verb);
          byResource.set(key, verbs);
        }
      }
    }
    return Object.fromEntries(
      [...byResource].sort().map(([key, verbs]) => [key, [...verbs].sort().join(" ")]),
    );
  };

  // Exactly what the call sites use (docs/security.md names each one); a
  // verb added here needs its call site, and the kube and node suites run
  // with these rules.
  it("grants the CNI plugin exactly the verbs it calls", () => {
    expect(grants("ClusterRole", "buoy-cni-plugin")).toEqual({
      "buoy.dev/blockaffinities": "create",
      "buoy.dev/floatingipclaims": "create delete get list",
      "buoy.dev/ipamblocks": "create get list update watch",
      "buoy.dev/ipamregions": "create get update",
      "buoy.dev/ippools": "list",
      "buoy.dev/workloadendpoints": "create delete get list update",
      "core/events": "create",
      "core/namespaces": "get",
      "core/nodes": "get list watch",
      "core/pods": "get",
      "core/pods/status": "patch",
    });
  });

  it("grants the agent exactly the verbs it calls", () => {
    expect(grants("ClusterRole", "buoy-node")).toEqual({
      "buoy.dev/bgppeers": "list watch",
      "buoy.dev/blockaffinities": "delete",
      "buoy.dev/floatingipclaims": "create delete get list watch",
      "buoy.dev/floatingipclaims/status": "update",
      "buoy.dev/ipamblocks": "delete get list update watch",
      "buoy.dev/ipamregions": "get",
      "buoy.dev/ippools": "list watch",
      "buoy.dev/workloadendpoints": "get list watch",
      "core/events": "create get update",
      "core/namespaces": "get",
      "core/nodes": "get list watch",
      "core/pods": "get list watch",
      "networking.k8s.io/networkpolicies": "list",
    });
  });

  it("names only buoy.dev resources that BUOY_CRDS defines", () => {
    const known = BUOY_CRDS.map((crd) => crd.plural as string);
    for (const role of ["buoy-node", "buoy-cni-plugin"]) {
      for (const rule of rules("ClusterRole", role)) {
        if (!(rule.apiGroups as string[]).includes(BUOY_API_GROUP)) continue;
        for (const resource of rule.resources as string[]) {
          expect(known, `${role} ${resource}`).toContain(resource.replace(/\/status$/, ""));
        }
      }
    }
  });

  it("lets no one change pools or pods' specs, or write anything it does not need", () => {
    for (const role of ["buoy-node", "buoy-cni-plugin"]) {
      const granted = grants("ClusterRole", role);
      expect(granted["buoy.dev/ippools"], role).not.toMatch(/create|update|patch|delete/);
      expect(granted["core/pods"], role).not.toContain("patch");
      expect(granted["core/pods"], role).not.toContain("update");
      for (const rule of rules("ClusterRole", role)) {
        expect(rule.verbs, role).not.toContain("*");
        expect(rule.resources, role).not.toContain("*");
        expect(rule.resources, role).not.toContain("secrets");
        expect(rule.resources, role).not.toContain("leases");
      }
    }
  });

  it("keeps the status Leases in buoy-system, writable by buoy-node alone, read by the controller", () => {
    expect(grants("Role", "buoy-node", "buoy-system")).toEqual({
      "coordination.k8s.io/leases": "create get list update watch",
    });
    const binding = roleIn("RoleBinding", "buoy-node", "buoy-system");
    expect(binding.roleRef).toEqual({
      apiGroup: "rbac.authorization.k8s.io",
      kind: "Role",
      name: "buoy-node",
    });
    expect(binding.subjects).toEqual([
      { kind: "ServiceAccount", name: "buoy-node", namespace: "kube-system" },
    ]);
    expect(grants("Role", "buoy-controller", "buoy-system")).toEqual({
      "coordination.k8s.io/leases": "list watch",
    });
    expect(roleIn("RoleBinding", "buoy-controller", "buoy-system").subjects).toEqual([
      { kind: "ServiceAccount", name: "buoy-controller", namespace: "kube-system" },
    ]);
    // No other binding in the manifests reaches into buoy-system.
    const intoBuoySystem = all.filter(
      ({ object }) =>
        ["Role", "RoleBinding"].includes(object.kind as string) &&
        at(object, "metadata", "namespace") === "buoy-system",
    );
    expect(intoBuoySystem).toHaveLength(4);
  });

  it("grants the FloatingIP controller exactly the verbs it calls, its own Lease by name", () => {
    expect(grants("ClusterRole", "buoy-controller")).toEqual({
      "buoy.dev/floatingipclaims": "create delete get list update watch",
      "buoy.dev/floatingips": "list watch",
      "buoy.dev/floatingips/status": "update",
      "buoy.dev/ipamblocks": "get",
      "buoy.dev/ipamregions": "get",
      "buoy.dev/ippools": "list watch",
      "buoy.dev/workloadendpoints": "list watch",
      "core/events": "create",
      "core/namespaces": "get",
      "core/pods": "list watch",
    });
    expect(rules("Role", "buoy-controller", "kube-system")).toEqual([
      { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["create"] },
      {
        apiGroups: ["coordination.k8s.io"],
        resources: ["leases"],
        resourceNames: ["buoy-controller"],
        verbs: ["get", "update"],
      },
    ]);
  });

  it("gives tenants FloatingIPs through the aggregated roles, never their status", () => {
    expect(grants("ClusterRole", "buoy-floatingips-edit")).toEqual({
      "buoy.dev/floatingips": "create delete deletecollection get list patch update watch",
    });
    expect(grants("ClusterRole", "buoy-floatingips-view")).toEqual({
      "buoy.dev/floatingips": "get list watch",
    });
  });

  it("lets buoy-node ask for a token for the plugin's account, and nothing else in kube-system", () => {
    expect(rules("Role", "buoy-node", "kube-system")).toEqual([
      {
        apiGroups: [""],
        resources: ["serviceaccounts/token"],
        resourceNames: ["buoy-cni-plugin"],
        verbs: ["create"],
      },
    ]);
  });

  it("binds each role to the account of its name", () => {
    for (const [kind, bindingKind, name, namespace] of [
      ["ClusterRole", "ClusterRoleBinding", "buoy-node", undefined],
      ["ClusterRole", "ClusterRoleBinding", "buoy-cni-plugin", undefined],
      ["Role", "RoleBinding", "buoy-node", "kube-system"],
      ["Role", "RoleBinding", "buoy-node", "buoy-system"],
    ] as const) {
      const binding = roleIn(bindingKind, name, namespace);
      expect(binding.roleRef).toEqual({ apiGroup: "rbac.authorization.k8s.io", kind, name });
      expect(binding.subjects).toEqual([
        { kind: "ServiceAccount", name, namespace: "kube-system" },
      ]);
      find("ServiceAccount", name);
    }
  });
});

describe("manifests/calico-config.yaml", () => {
  const configMap = find("ConfigMap", "calico-config");
  const data = configMap.data as Record<string, string>;
  // The seed's conflist, at CNI 1.0.0 and listing 1.1.0 (issue 16): the
  // runtime then calls CHECK, and with 1.1.0 STATUS and GC.
  const seed = readFileSync(
    new URL("../../test/fixtures/seed-cni-network-config.json", import.meta.url),
    "utf8",
  ).replace(
    '"cniVersion": "0.3.0",',
    '"cniVersion": "1.0.0",\n  "cniVersions": ["1.0.0", "1.1.0"],',
  );

  it("has Calico's keys, and cni_network_config is the seed's conflist at CNI 1.0.0", () => {
    expect(Object.keys(data).sort()).toEqual(
      ["calico_backend", "cni_network_config", "typha_service_name", "veth_mtu"].sort(),
    );
    expect(data.cni_network_config).toBe(seed.trimEnd());
  });

  it("renders through install-cni's renderer into the seed's conflist with floating IPs on", () => {
    const planned = planPlaceholderValues(
      { KUBERNETES_NODE_NAME: "node-1", CNI_MTU: data.veth_mtu ?? "" },
      { hostname: "h", pluginToken: "t", defaultRouteMtu: 1450 },
    );
    expect(planned.errors).toEqual([]);
    const rendered = renderCniNetworkConfig(data.cni_network_config ?? "", planned.values);
    if (!rendered.ok) throw new Error(rendered.errors.join("\n"));
    const check = validateConflist(rendered.text);
    expect(check).toEqual({
      ok: true,
      summary: {
        name: "k8s-pod-network",
        cniVersion: "1.0.0",
        pluginTypes: ["calico", "portmap"],
        datastoreType: "kubernetes",
        nodename: "node-1",
        mtu: 1450,
        floatingIps: true,
        maxFloatingIps: 16,
        kubeconfig: "/etc/cni/net.d/calico-kubeconfig",
      },
    });
    const expected = JSON.parse(
      seed
        .replace("__KUBERNETES_NODE_NAME__", "node-1")
        .replace("__CNI_MTU__", "1450")
        .replace("__KUBECONFIG_FILEPATH__", "/etc/cni/net.d/calico-kubeconfig"),
    );
    expect(JSON.parse(rendered.text)).toEqual(expected);
    expect(expected.plugins[0].feature_control).toEqual({ floating_ips: true });
  });
});

describe("manifests/daemonset.yaml", () => {
  const daemonSet = find("DaemonSet", "buoy-node");
  const pod = at(daemonSet, "spec", "template", "spec") as Json;
  const containers = [...(pod.initContainers as Json[]), ...(pod.containers as Json[])];
  const container = (name: string) => containers.find((c) => c.name === name) as Json;
  const envOf = (name: string) =>
    Object.fromEntries(((container(name).env as Json[]) ?? []).map((e) => [e.name, e]));
  const configMap = find("ConfigMap", "calico-config");

  it("takes every ConfigMap key it names from calico-config, where it exists", () => {
    const refs = containers.flatMap((c) =>
      ((c.env as Json[] | undefined) ?? [])
        .map((e) => at(e, "valueFrom", "configMapKeyRef") as Json | undefined)
        .filter((ref): ref is Json => ref !== undefined),
    );
    expect(refs.length).toBeGreaterThanOrEqual(2);
    for (const ref of refs) {
      expect(ref.name).toBe("calico-config");
      expect(Object.keys(configMap.data as Json)).toContain(ref.key);
    }
  });

  it("feeds install-cni the template and the MTU under Calico's variable names", () => {
    const env = envOf("install-cni");
    expect(at(env.CNI_NETWORK_CONFIG, "valueFrom", "configMapKeyRef", "key")).toBe(
      "cni_network_config",
    );
    expect(at(env.CNI_MTU, "valueFrom", "configMapKeyRef", "key")).toBe("veth_mtu");
    expect(at(env.KUBERNETES_NODE_NAME, "valueFrom", "fieldRef", "fieldPath")).toBe(
      "spec.nodeName",
    );
    expect(container("install-cni").command).toEqual(["buoy", "install-cni"]);
  });

  it("runs as buoy-node, and the plugin's token is for an account buoy-node may ask for", () => {
    expect(pod.serviceAccountName).toBe("buoy-node");
    find("ServiceAccount", "buoy-node");
    const account = at(envOf("install-cni").CNI_SERVICE_ACCOUNT, "value") as string;
    find("ServiceAccount", account);
    const rules = all
      .filter(
        ({ object }) => object.kind === "Role" && at(object, "metadata", "name") === "buoy-node",
      )
      .flatMap(({ object }) => at(object, "rules") as Json[]);
    expect(
      rules.some((rule) => (rule.resourceNames as string[] | undefined)?.includes(account)),
    ).toBe(true);
  });

  it("tells install-cni the host path of the conf dir it mounts (the conflist names the kubeconfig there)", () => {
    const volume = (pod.volumes as Json[]).find((v) => v.name === "cni-net-dir") as Json;
    expect(at(envOf("install-cni").CNI_NET_DIR, "value")).toBe(at(volume, "hostPath", "path"));
  });

  it("keeps the plugin's token fresh with the same account and lifetime install-cni used", () => {
    const refresher = container("cni-token");
    expect(refresher.command).toEqual(
      expect.arrayContaining(["buoy", "install-cni", "--refresh-token"]),
    );
    for (const name of ["CNI_SERVICE_ACCOUNT", "CNI_TOKEN_TTL_SECONDS"]) {
      expect(at(envOf("cni-token")[name], "value"), name).toBe(
        at(envOf("install-cni")[name], "value"),
      );
    }
    const mount = (c: Json) =>
      (c.volumeMounts as Json[]).find((m) => m.name === "cni-net-dir")?.mountPath;
    expect(mount(refresher)).toBe(mount(container("install-cni")));
  });

  it("points the agent at the conflist install-cni writes, on the host network, with probes", () => {
    const agent = container("buoy-agent");
    const confName = at(envOf("install-cni").CNI_CONF_NAME, "value");
    expect(agent.command).toContain(`--cni-conf=/host/etc/cni/net.d/${String(confName)}`);
    expect(agent.command).toEqual(
      expect.arrayContaining(["buoy", "agent", "--node=$(NODE_NAME)", "--routing=bgp"]),
    );
    expect(at(envOf("buoy-agent").DATASTORE_TYPE, "value")).toBe("kubernetes");
    expect(pod.hostNetwork).toBe(true);
    expect(at(agent, "livenessProbe", "httpGet", "path")).toBe("/healthz");
    expect(at(agent, "readinessProbe", "httpGet", "path")).toBe("/readyz");
    expect(at(daemonSet, "spec", "updateStrategy")).toEqual({
      type: "RollingUpdate",
      rollingUpdate: { maxUnavailable: 1 },
    });
  });

  it("runs the CNI server where the executable looks for it, seeing the host's paths as they are", () => {
    const server = container("buoy-cni");
    expect(server.command).toEqual([
      "/opt/buoy/cni/buoy",
      "serve",
      `--socket=${DEFAULT_AGENT_SOCKET}`,
    ]);
    expect(at(server, "securityContext", "privileged")).toBe(true);
    expect(at(server, "livenessProbe", "exec", "command")).toEqual([
      ...(server.command as string[]),
      "--probe",
    ]);
    expect(at(container("buoy-agent"), "securityContext", "privileged")).toBeUndefined();
    const volumes = new Map((pod.volumes as Json[]).map((v) => [v.name, v]));
    const mounts = Object.fromEntries(
      (server.volumeMounts as Json[]).map((m) => [
        m.mountPath,
        [at(volumes.get(m.name as string), "hostPath", "path"), m.mountPropagation ?? "None"],
      ]),
    );
    expect(mounts).toEqual({
      "/etc/cni/net.d": ["/etc/cni/net.d", "None"],
      [dirname(dirname(DEFAULT_AGENT_SOCKET))]: [dirname(dirname(DEFAULT_AGENT_SOCKET)), "None"],
      "/var/run/netns": ["/run/netns", "HostToContainer"],
      [dirname(DEFAULT_LOG_FILE)]: [dirname(DEFAULT_LOG_FILE), "None"],
    });
  });

  it("mounts only volumes it defines, and the host's CNI dirs where install-cni writes", () => {
    const volumes = new Map((pod.volumes as Json[]).map((v) => [v.name, v]));
    for (const c of containers) {
      for (const mount of (c.volumeMounts as Json[] | undefined) ?? []) {
        expect(volumes.has(mount.name as string), `${String(c.name)} ${String(mount.name)}`).toBe(
          true,
        );
      }
    }
    const mounts = Object.fromEntries(
      (container("install-cni").volumeMounts as Json[]).map((m) => [
        m.mountPath,
        at(volumes.get(m.name as string), "hostPath", "path"),
      ]),
    );
    expect(mounts).toEqual({
      "/host/opt/cni/bin": "/opt/cni/bin",
      "/host/etc/cni/net.d": "/etc/cni/net.d",
    });
  });

  it("uninstalls in the node's network namespace: install-cni's files, then the agent's dataplane", () => {
    const spec = at(find("DaemonSet", "buoy-uninstall"), "spec", "template", "spec") as Json;
    expect(spec.hostNetwork).toBe(true);
    expect(
      (spec.initContainers as Json[]).map((c) => [
        c.command,
        at(c, "securityContext", "privileged"),
      ]),
    ).toEqual([
      [["buoy", "install-cni", "--uninstall"], true],
      [["buoy", "remove-dataplane"], true],
    ]);
  });

  it("uses one image throughout, also for uninstalling", () => {
    const images = new Set(
      all.flatMap(({ object }) => {
        const spec = at(object, "spec", "template", "spec") as Json | undefined;
        return spec
          ? [...((spec.initContainers as Json[]) ?? []), ...(spec.containers as Json[])].map(
              (c) => c.image,
            )
          : [];
      }),
    );
    expect(images.size).toBe(1);
  });
});

describe("manifests/webhook.yaml", () => {
  const config = find("ValidatingWebhookConfiguration", "buoy", "webhook.yaml");
  const webhooks = config.webhooks as Json[];
  const webhook = (name: string) => {
    const found = webhooks.find((entry) => entry.name === name);
    if (!found) throw new Error(`no webhook ${name}`);
    return found;
  };
  const deployment = find("Deployment", "buoy-webhook", "webhook.yaml");
  const podSpec = at(deployment, "spec", "template", "spec") as Json;
  const container = (podSpec.containers as Json[])[0] as Json;
  const flag = (name: string) =>
    (container.command as string[]).find((arg) => arg.startsWith(`--${name}=`))?.split("=")[1];

  it("refuses pools unchecked never (Fail) and pods only as early feedback (Ignore)", () => {
    expect(webhook("ippools.buoy.dev").failurePolicy).toBe("Fail");
    expect(webhook("pods.buoy.dev").failurePolicy).toBe("Ignore");
    expect(webhook("floatingips.buoy.dev").failurePolicy).toBe("Ignore");
    for (const entry of webhooks) {
      expect(entry.sideEffects, String(entry.name)).toBe("None");
      expect(entry.admissionReviewVersions, String(entry.name)).toEqual(["v1"]);
      expect(entry.timeoutSeconds as number, String(entry.name)).toBeLessThanOrEqual(5);
    }
  });

  it("sends pool and pod writes to the paths buoy webhook serves, through its Service", () => {
    expect(at(webhook("ippools.buoy.dev"), "rules", 0)).toMatchObject({
      apiGroups: [BUOY_API_GROUP],
      apiVersions: [BUOY_VERSION],
      resources: ["ippools"],
      operations: ["CREATE", "UPDATE"],
    });
    expect(at(webhook("pods.buoy.dev"), "rules", 0)).toMatchObject({
      apiGroups: [""],
      resources: ["pods"],
      operations: ["CREATE", "UPDATE"],
    });
    const service = find("Service", "buoy-webhook", "webhook.yaml");
    const port = at(service, "spec", "ports", 0) as Json;
    expect(port.targetPort).toBe(9443);
    expect(flag("listen")).toBe("0.0.0.0:9443");
    expect(at(service, "spec", "selector")).toEqual(
      at(deployment, "spec", "template", "metadata", "labels"),
    );
    for (const [name, path] of [
      ["ippools.buoy.dev", "/validate-ippool"],
      ["floatingips.buoy.dev", "/validate-floatingip"],
      ["pods.buoy.dev", "/validate-pod"],
    ] as const) {
      expect(at(webhook(name), "clientConfig", "service")).toEqual({
        namespace: "kube-system",
        name: "buoy-webhook",
        path,
        port: port.port,
      });
    }
  });

  it("excludes no pod from the pod webhook by a label a tenant could set", () => {
    expect(webhook("pods.buoy.dev")).not.toHaveProperty("objectSelector");
    expect(at(webhook("pods.buoy.dev"), "failurePolicy")).toBe("Ignore");
  });

  it("patches its own configuration's caBundle, reads its own Secret and calico-config, nothing more", () => {
    expect(flag("webhook-configuration")).toBe("buoy");
    expect(flag("tls-secret")).toBe("kube-system/buoy-webhook-tls");
    const clusterRules = at(find("ClusterRole", "buoy-webhook"), "rules") as Json[];
    expect(clusterRules).toContainEqual({
      apiGroups: ["admissionregistration.k8s.io"],
      resources: ["validatingwebhookconfigurations"],
      resourceNames: ["buoy"],
      verbs: ["get", "update"],
    });
    for (const rule of clusterRules) {
      expect(rule.verbs).not.toContain("*");
      if ((rule.apiGroups as string[]).includes(BUOY_API_GROUP))
        expect(rule.verbs).toEqual(["list"]);
    }
    const namespaced = at(find("Role", "buoy-webhook"), "rules") as Json[];
    expect(namespaced).toEqual([
      {
        apiGroups: [""],
        resources: ["secrets"],
        resourceNames: ["buoy-webhook-tls"],
        verbs: ["get", "update"],
      },
      {
        apiGroups: [""],
        resources: ["configmaps"],
        resourceNames: ["calico-config"],
        verbs: ["get"],
      },
    ]);
    expect(flag("calico-config")).toBe("kube-system/calico-config");
    find("ConfigMap", "calico-config");
    for (const kind of ["ClusterRoleBinding", "RoleBinding"]) {
      expect(find(kind, "buoy-webhook").subjects).toEqual([
        { kind: "ServiceAccount", name: "buoy-webhook", namespace: "kube-system" },
      ]);
    }
    expect(podSpec.serviceAccountName).toBe("buoy-webhook");
  });

  it("runs on the host network, so it needs no pod network, with probes over HTTPS", () => {
    expect(podSpec.hostNetwork).toBe(true);
    expect(container.envFrom).toEqual([
      { configMapRef: { name: "kubernetes-services-endpoint", optional: true } },
    ]);
    expect(container.command).toEqual(expect.arrayContaining(["buoy", "webhook"]));
    expect(at(container, "readinessProbe", "httpGet")).toEqual({
      path: "/healthz",
      port: 9443,
      scheme: "HTTPS",
    });
  });
});
