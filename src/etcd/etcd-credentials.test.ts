import { describe, expect, it } from "vitest";
import {
  etcdCredentialSourcesFromEnv,
  readEtcdCredentials,
  type EtcdCredentialSources,
} from "./etcd-credentials.js";

const HTTPS = ["https://10.0.0.1:2379"];
const files: Record<string, string> = { "/ca": "CA", "/cert": "CERT", "/key": "KEY" };
const readFile = (path: string): string => {
  const text = files[path];
  if (text === undefined) throw Object.assign(new Error("no such file"), { code: "ENOENT" });
  return text;
};
const from = (value: string, name: string) => ({ value, from: name });

describe("readEtcdCredentials()", () => {
  it.each<{ desc: string; sources: EtcdCredentialSources; endpoints?: string[]; error: string }>([
    {
      desc: "a certificate without its key",
      sources: { certFile: from("/cert", "etcd_cert_file") },
      error:
        "etcd_cert_file is set but the client key is not: an etcd client certificate needs both",
    },
    {
      desc: "a key without its certificate",
      sources: { keyFile: from("/key", "ETCD_KEY_FILE") },
      error:
        "ETCD_KEY_FILE is set but the client certificate is not: an etcd client certificate needs both",
    },
    {
      desc: "a user without a password",
      sources: { username: from("buoy", "ETCD_USERNAME") },
      error: "ETCD_USERNAME is set but no etcd password is",
    },
    {
      desc: "a password without a user",
      sources: { password: from("secret", "ETCD_PASSWORD") },
      error: "ETCD_PASSWORD is set but no etcd user name is",
    },
    {
      desc: "TLS files for an http endpoint",
      sources: { caCertFile: from("/ca", "etcd_ca_cert_file") },
      endpoints: ["https://10.0.0.1:2379", "http://10.0.0.2:2379"],
      error: "etcd_ca_cert_file is set but etcd endpoint 'http://10.0.0.2:2379' is not https://",
    },
    {
      desc: "a password for an http endpoint off this host",
      sources: { username: from("buoy", "ETCD_USERNAME"), password: from("s", "ETCD_PASSWORD") },
      endpoints: ["http://127.0.0.1:2379", "http://10.0.0.2:2379"],
      error:
        "ETCD_USERNAME is set but etcd endpoint 'http://10.0.0.2:2379' is not https://: the password would cross the network in the clear",
    },
    {
      desc: "a file that cannot be read",
      sources: { caCertFile: from("/absent", "ETCD_CA_CERT_FILE") },
      error: "cannot read ETCD_CA_CERT_FILE /absent: ENOENT",
    },
  ])("refuses $desc", ({ sources, endpoints, error }) => {
    expect(() => readEtcdCredentials(sources, endpoints ?? HTTPS, readFile)).toThrow(error);
  });

  it("reads the files and keeps the user, never echoing the password in an error", () => {
    const sources = {
      caCertFile: from("/ca", "etcd_ca_cert_file"),
      certFile: from("/cert", "etcd_cert_file"),
      keyFile: from("/key", "etcd_key_file"),
      username: from("buoy", "ETCD_USERNAME"),
      password: from("secret", "ETCD_PASSWORD"),
    };
    expect(readEtcdCredentials(sources, HTTPS, readFile)).toEqual({
      tls: { ca: "CA", cert: "CERT", key: "KEY" },
      auth: { username: "buoy", password: "secret" },
    });
  });

  it("takes a password for http endpoints on this host only", () => {
    const sources = {
      username: from("buoy", "ETCD_USERNAME"),
      password: from("s", "ETCD_PASSWORD"),
    };
    for (const endpoint of [
      "http://127.0.0.1:2379",
      "http://localhost:2379",
      "http://[::1]:2379",
    ]) {
      expect(readEtcdCredentials(sources, [endpoint], readFile).auth?.username).toBe("buoy");
    }
  });

  it("is empty with nothing set, whatever the endpoints", () => {
    expect(readEtcdCredentials({}, ["http://127.0.0.1:2379"], readFile)).toEqual({});
  });
});

describe("etcdCredentialSourcesFromEnv()", () => {
  it("takes ETCD_* first, then Calico's CALICO_ETCD_*, and skips empty values", () => {
    const sources = etcdCredentialSourcesFromEnv({
      ETCD_CERT_FILE: "/a",
      CALICO_ETCD_CERT_FILE: "/b",
      ETCD_KEY_FILE: "",
      CALICO_ETCD_KEY_FILE: "/k",
    });
    expect(sources.certFile).toEqual({ value: "/a", from: "ETCD_CERT_FILE" });
    expect(sources.keyFile).toEqual({ value: "/k", from: "CALICO_ETCD_KEY_FILE" });
    expect(sources.caCertFile).toBeUndefined();
  });
});
