import { describe, expect, it } from "vitest";
import { KubeconfigError, parseKubeconfig } from "./kubeconfig.js";

const b64 = (text: string) => Buffer.from(text).toString("base64");
const files: Record<string, string> = {
  "/etc/kube/ca.crt": "CA FROM FILE",
  "/var/run/secrets/token": "token-from-file\n",
};
const readFile = (path: string) => {
  const text = files[path];
  if (text === undefined) throw Object.assign(new Error("missing"), { code: "ENOENT" });
  return text;
};

const CERTS = `
apiVersion: v1
kind: Config
current-context: admin
clusters:
- name: local
  cluster:
    server: https://127.0.0.1:6443/
    certificate-authority-data: ${b64("CA PEM")}
users:
- name: admin
  user:
    client-certificate-data: ${b64("CERT PEM")}
    client-key-data: ${b64("KEY PEM")}
- name: calico
  user:
    tokenFile: /var/run/secrets/token
contexts:
- name: admin
  context: { cluster: local, user: admin }
- name: calico
  context: { cluster: local, user: calico, namespace: kube-system }
`;

describe("parseKubeconfig()", () => {
  it("reads the current context's server, inline CA and client certificate", () => {
    expect(parseKubeconfig(CERTS, "kc", readFile)).toEqual({
      server: "https://127.0.0.1:6443",
      ca: "CA PEM",
      clientCert: "CERT PEM",
      clientKey: "KEY PEM",
    });
  });

  it("reads a named context with a token file and a namespace", () => {
    expect(parseKubeconfig(CERTS, "kc", readFile, "calico")).toEqual({
      server: "https://127.0.0.1:6443",
      ca: "CA PEM",
      token: "token-from-file",
      namespace: "kube-system",
    });
  });

  it("reads a CA and a token the way Calico's install writes them", () => {
    const text = `
clusters: [{ name: c, cluster: { server: "https://10.96.0.1:443", certificate-authority: /etc/kube/ca.crt } }]
users: [{ name: u, user: { token: abc } }]
contexts: [{ name: x, context: { cluster: c, user: u } }]
current-context: x
`;
    expect(parseKubeconfig(text, "kc", readFile)).toEqual({
      server: "https://10.96.0.1:443",
      ca: "CA FROM FILE",
      token: "abc",
    });
  });

  it.each([
    ["not: [yaml", "kc: not YAML"],
    ["- a list", "kc: not a kubeconfig (no mapping)"],
    ["clusters: []", "kc: no current-context and none given"],
    ["current-context: x\ncontexts: []", "kc: no context named x (contexts: none)"],
    [
      "current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\nclusters: [{name: c, cluster: {server: 'ftp://x'}}]",
      "kc: cluster c has no http(s) server URL",
    ],
    [
      "current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\nclusters: [{name: c, cluster: {server: 'https://x', certificate-authority: /nope}}]",
      "kc: cannot read CA /nope: ENOENT",
    ],
    [
      `current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\nclusters: [{name: c, cluster: {server: 'https://x'}}]\nusers: [{name: u, user: {client-certificate-data: ${b64("C")}}}]`,
      "kc: user u has a client certificate or key without the other",
    ],
  ])("refuses %j: %s", (text, message) => {
    expect(() => parseKubeconfig(text, "kc", readFile)).toThrow(KubeconfigError);
    expect(() => parseKubeconfig(text, "kc", readFile)).toThrow(message);
  });
});
