import { describe, expect, it } from "vitest";
import { CliError } from "./cli-error.js";
import { parseDatastoreConfig } from "./datastore-config.js";

describe("parseDatastoreConfig()", () => {
  const accepted: {
    desc: string;
    env: Record<string, string>;
    flag?: string;
    want: string[];
  }[] = [
    { desc: "defaults to etcd on localhost", env: {}, want: ["http://127.0.0.1:2379"] },
    {
      desc: "splits ETCD_ENDPOINTS on commas",
      env: { DATASTORE_TYPE: "etcdv3", ETCD_ENDPOINTS: "http://a:2379, https://b:2379," },
      want: ["http://a:2379", "https://b:2379"],
    },
    {
      desc: "reads Calico's CALICO_ prefixed variables",
      env: { CALICO_DATASTORE_TYPE: "etcdv3", CALICO_ETCD_ENDPOINTS: "http://c:2379" },
      want: ["http://c:2379"],
    },
    {
      desc: "lets --etcd-endpoints win over ETCD_ENDPOINTS",
      env: { ETCD_ENDPOINTS: "http://a:2379" },
      flag: "http://flag:2379",
      want: ["http://flag:2379"],
    },
  ];
  for (const { desc, env, flag, want } of accepted) {
    it(`parseDatastoreConfig() ${desc}`, () => {
      expect(parseDatastoreConfig(env, flag)).toEqual({ type: "etcdv3", endpoints: want });
    });
  }

  it("parseDatastoreConfig() takes the kubernetes datastore with KUBECONFIG, or in-cluster without", () => {
    expect(
      parseDatastoreConfig({ DATASTORE_TYPE: "kubernetes", KUBECONFIG: "/etc/buoy/kubeconfig" }),
    ).toEqual({ type: "kubernetes", kubeconfig: "/etc/buoy/kubeconfig" });
    expect(parseDatastoreConfig({ CALICO_DATASTORE_TYPE: "kubernetes" })).toEqual({
      type: "kubernetes",
      kubeconfig: undefined,
    });
  });

  it("parseDatastoreConfig() without DATASTORE_TYPE chooses as calicoctl: etcd endpoints, else a kubeconfig or a pod", () => {
    const kubeconfig = "/root/.kube/config";
    expect(parseDatastoreConfig({ KUBECONFIG: kubeconfig })).toEqual({
      type: "kubernetes",
      kubeconfig,
    });
    expect(parseDatastoreConfig({ KUBERNETES_SERVICE_HOST: "10.96.0.1" })).toEqual({
      type: "kubernetes",
      kubeconfig: undefined,
    });
    expect(
      parseDatastoreConfig({ KUBECONFIG: kubeconfig, ETCD_ENDPOINTS: "http://e:2379" }),
    ).toEqual({ type: "etcdv3", endpoints: ["http://e:2379"] });
    expect(parseDatastoreConfig({ KUBECONFIG: kubeconfig }, "http://f:2379")).toEqual({
      type: "etcdv3",
      endpoints: ["http://f:2379"],
    });
    // The services never choose: etcdv3 unless DATASTORE_TYPE says otherwise.
    expect(parseDatastoreConfig({ KUBECONFIG: kubeconfig }, undefined, false)).toEqual({
      type: "etcdv3",
      endpoints: ["http://127.0.0.1:2379"],
    });
    expect(parseDatastoreConfig({ KUBECONFIG: " " })).toEqual({
      type: "etcdv3",
      endpoints: ["http://127.0.0.1:2379"],
    });
  });

  const refused: { desc: string; env: Record<string, string>; message: string }[] = [
    {
      desc: "refuses an unknown datastore type",
      env: { DATASTORE_TYPE: "consul" },
      message: `unknown datastore type "consul" in DATASTORE_TYPE; use etcdv3 or kubernetes`,
    },
    {
      desc: "refuses an endpoint that is not a URL",
      env: { ETCD_ENDPOINTS: "127.0.0.1:2379" },
      message:
        "etcd endpoint '127.0.0.1:2379' from ETCD_ENDPOINTS is not an http:// or https:// URL",
    },
    {
      desc: "refuses an empty endpoint list",
      env: { ETCD_ENDPOINTS: " , " },
      message: "ETCD_ENDPOINTS lists no etcd endpoints",
    },
  ];
  for (const { desc, env, message } of refused) {
    it(`parseDatastoreConfig() ${desc}`, () => {
      expect(() => parseDatastoreConfig(env)).toThrow(new CliError(message));
    });
  }
});
