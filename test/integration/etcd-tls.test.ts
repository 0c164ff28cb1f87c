// etcd with TLS and auth (issue 13, item 8), against real etcd 3.4 servers in
// this run's namespace: one that serves https and requires a client
// certificate from its own CA, one with users and `auth enable`. The Kv
// conformance suite passes over both; the real CNI executable, the CLI and the
// agent take Calico's keys and ETCD_* variables; a certificate from another
// CA, no certificate, an untrusted server and a wrong password are refused
// with words that say so, and a refused ADD leaves nothing behind.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EtcdKv } from "../../src/etcd/etcd-kv.js";
import type { EtcdTls } from "../../src/etcd/etcd-https.js";
import { Store } from "../../src/etcd/store.js";
import { kvConformance } from "../support/kv-conformance.js";
import {
  addNetns,
  createPool,
  deleteNetns,
  etcdPluginConf,
  hostInterfaces,
  must,
  ROOT,
  runPlugin,
  runPrefix,
  startAgent,
  startEtcd,
  type Etcd,
} from "../support/harness.js";
import { readFileSync } from "node:fs";

const prefix = runPrefix();
let dir: string;
let tlsEtcd: Etcd;
let authEtcd: Etcd;
const pki = (name: string) => join(dir, name);
const read = (name: string) => readFileSync(pki(name), "utf8");
const good = (): EtcdTls => ({
  ca: read("ca.pem"),
  cert: read("client.pem"),
  key: read("client-key.pem"),
});

/** A CA, and a certificate it signs for `name` (a server for 127.0.0.1, or a client). */
function makePki(): void {
  const openssl = (...args: string[]) => must(["openssl", ...args]);
  for (const ca of ["ca", "other-ca"]) {
    openssl(
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "2",
      "-subj",
      `/CN=${prefix}-${ca}`,
      "-keyout",
      pki(`${ca}-key.pem`),
      "-out",
      pki(`${ca}.pem`),
    );
  }
  const issue = (name: string, ca: string, ext: string) => {
    openssl(
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-subj",
      `/CN=${name}`,
      "-keyout",
      pki(`${name}-key.pem`),
      "-out",
      pki(`${name}.csr`),
    );
    spawnSync("sh", ["-c", `printf '%s\\n' '${ext}' > ${pki(`${name}.ext`)}`]);
    openssl(
      "x509",
      "-req",
      "-in",
      pki(`${name}.csr`),
      "-CA",
      pki(`${ca}.pem`),
      "-CAkey",
      pki(`${ca}-key.pem`),
      "-CAcreateserial",
      "-days",
      "2",
      "-extfile",
      pki(`${name}.ext`),
      "-out",
      pki(`${name}.pem`),
    );
  };
  issue("server", "ca", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth");
  issue("client", "ca", "extendedKeyUsage=clientAuth");
  issue("rogue", "other-ca", "extendedKeyUsage=clientAuth");
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), `${prefix}-etcd-tls-`));
  makePki();
  tlsEtcd = await startEtcd({
    tls: {
      certFile: pki("server.pem"),
      keyFile: pki("server-key.pem"),
      trustedCaFile: pki("ca.pem"),
    },
    client: { tls: good() },
  });
  authEtcd = await startEtcd();
  const etcdctl = (...args: string[]) =>
    must(["etcdctl", `--endpoints=${authEtcd.endpoint}`, ...args]);
  etcdctl("user", "add", "root:root-secret");
  etcdctl("user", "add", "buoy:buoy-secret");
  etcdctl("role", "add", "buoy");
  for (const key of ["/buoy/", "/conformance/"]) {
    etcdctl("role", "grant-permission", "buoy", "--prefix=true", "readwrite", key);
  }
  etcdctl("user", "grant-role", "buoy", "buoy");
  etcdctl("auth", "enable");
}, 60_000);

afterAll(async () => {
  await tlsEtcd?.stop();
  await authEtcd?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

kvConformance(
  "EtcdKv over TLS with a client certificate",
  () => new EtcdKv({ endpoints: [tlsEtcd.endpoint], tls: good() }),
);

kvConformance(
  "EtcdKv as an etcd user",
  () =>
    new EtcdKv({
      endpoints: [authEtcd.endpoint],
      auth: { username: "buoy", password: "buoy-secret" },
    }),
);

describe("EtcdKv refusals", () => {
  it("a client certificate from another CA is refused in the TLS handshake", async () => {
    const kv = new EtcdKv({
      endpoints: [tlsEtcd.endpoint],
      tls: { ca: read("ca.pem"), cert: read("rogue.pem"), key: read("rogue-key.pem") },
      timeoutMs: 2000,
    });
    await expect(kv.ping()).rejects.toThrow(
      new RegExp(`cannot reach etcd \\(${tlsEtcd.endpoint}: TLS handshake failed: .+\\)`),
    );
  });

  it("no client certificate is refused in the TLS handshake", async () => {
    const kv = new EtcdKv({
      endpoints: [tlsEtcd.endpoint],
      tls: { ca: read("ca.pem") },
      timeoutMs: 2000,
    });
    await expect(kv.ping()).rejects.toThrow(/TLS handshake failed/);
  });

  it("a server whose CA is not given is not trusted", async () => {
    const kv = new EtcdKv({
      endpoints: [tlsEtcd.endpoint],
      tls: { cert: read("client.pem"), key: read("client-key.pem") },
      timeoutMs: 2000,
    });
    await expect(kv.ping()).rejects.toThrow(/TLS handshake failed: .*(self.signed|verify|issuer)/i);
  });

  it("a wrong password names the user and etcd's reason, and no password is echoed", async () => {
    const kv = new EtcdKv({
      endpoints: [authEtcd.endpoint],
      auth: { username: "buoy", password: "nope" },
    });
    const error = await kv.ping().then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error?.message).toMatch(
      new RegExp(`^etcd at ${authEtcd.endpoint} refused user 'buoy': .*authentication failed`),
    );
    expect(error?.message).not.toContain("nope");
  });

  it("without a user, an etcd with auth enabled refuses the request", async () => {
    const kv = new EtcdKv({ endpoints: [authEtcd.endpoint] });
    await expect(kv.get("/buoy/v1/x")).rejects.toThrow(/HTTP 4\d\d/);
  });
});

describe("the plugin, the CLI and the agent over TLS and auth", () => {
  const tlsKeys = (cert = "client") => ({
    etcd_endpoints: tlsEtcd.endpoint,
    etcd_ca_cert_file: pki("ca.pem"),
    etcd_cert_file: pki(`${cert}.pem`),
    etcd_key_file: pki(`${cert}-key.pem`),
  });
  const tlsEnv = (cert = "client") => ({
    ETCD_ENDPOINTS: tlsEtcd.endpoint,
    ETCD_CA_CERT_FILE: pki("ca.pem"),
    ETCD_CERT_FILE: pki(`${cert}.pem`),
    ETCD_KEY_FILE: pki(`${cert}-key.pem`),
  });
  const cli = (env: Record<string, string>, ...args: string[]) =>
    spawnSync("node", [join(ROOT, "dist/buoy"), ...args], {
      env: { PATH: process.env.PATH ?? "", ...env },
      encoding: "utf8",
    });

  beforeAll(async () => {
    await createPool(tlsEtcd.store, "pods-v4", { cidr: "10.77.0.0/16", blockSize: 26 });
    const authStore = new Store(
      new EtcdKv({
        endpoints: [authEtcd.endpoint],
        auth: { username: "buoy", password: "buoy-secret" },
      }),
    );
    await createPool(authStore, "pods-v4", { cidr: "10.78.0.0/16", blockSize: 26 });
  });

  it("ADD and DEL with Calico's etcd_*_file keys; a rogue certificate fails ADD and leaves nothing", async () => {
    const netns = addNetns(`${prefix}-tls-pod`);
    try {
      const conf = etcdPluginConf(tlsEtcd, tlsKeys());
      const call = {
        conf,
        containerID: `${prefix}-tls`,
        netns,
        pod: { namespace: "default", name: "tls" },
      };
      const added = await runPlugin({ ...call, command: "ADD" });
      expect(added.exitCode, added.raw).toBe(0);
      expect(JSON.stringify(added.output)).toContain("10.77.");
      expect((await runPlugin({ ...call, command: "DEL" })).exitCode).toBe(0);
      expect(await tlsEtcd.store.listEndpoints()).toEqual([]);

      const interfaces = hostInterfaces();
      const rogue = await runPlugin({
        ...call,
        command: "ADD",
        conf: etcdPluginConf(tlsEtcd, tlsKeys("rogue")),
      });
      expect(rogue.exitCode).not.toBe(0);
      expect(rogue.raw).toMatch(/TLS handshake failed/);
      expect(hostInterfaces()).toEqual(interfaces);
      expect(await tlsEtcd.store.listEndpoints()).toEqual([]);
      const blocks = await tlsEtcd.store.listBlocks();
      expect(blocks.flatMap((block) => Object.keys(block.value.allocations))).toEqual([]);
    } finally {
      deleteNetns(`${prefix}-tls-pod`);
    }
  });

  it("a key without its certificate is a config error naming the key", async () => {
    const keys: Record<string, string> = tlsKeys();
    delete keys.etcd_cert_file;
    const outcome = await runPlugin({
      command: "ADD",
      conf: etcdPluginConf(tlsEtcd, keys),
      containerID: `${prefix}-half`,
      netns: "/proc/self/ns/net",
      pod: { namespace: "default", name: "half" },
    });
    expect(outcome.exitCode).not.toBe(0);
    expect(outcome.output).toMatchObject({
      code: 7,
      msg: "invalid network config: etcd_key_file is set but the client certificate is not: an etcd client certificate needs both",
    });
  });

  it("ADD as an etcd user given by ETCD_USERNAME and ETCD_PASSWORD", async () => {
    const netns = addNetns(`${prefix}-auth-pod`);
    try {
      const call = {
        conf: etcdPluginConf(authEtcd),
        containerID: `${prefix}-auth`,
        netns,
        pod: { namespace: "default", name: "auth" },
        env: { ETCD_USERNAME: "buoy", ETCD_PASSWORD: "buoy-secret" },
      };
      const added = await runPlugin({ ...call, command: "ADD" });
      expect(added.exitCode, added.raw).toBe(0);
      expect(JSON.stringify(added.output)).toContain("10.78.");
      expect((await runPlugin({ ...call, command: "DEL" })).exitCode).toBe(0);
      const wrong = await runPlugin({
        ...call,
        command: "ADD",
        env: { ETCD_USERNAME: "buoy", ETCD_PASSWORD: "wrong" },
      });
      expect(wrong.exitCode).not.toBe(0);
      expect(wrong.raw).toContain("refused user 'buoy'");
      expect(wrong.raw).not.toContain("wrong");
    } finally {
      deleteNetns(`${prefix}-auth-pod`);
    }
  });

  it("the CLI reads ETCD_CA_CERT_FILE, ETCD_CERT_FILE and ETCD_KEY_FILE, and says why a rogue certificate fails", () => {
    const ok = cli(tlsEnv(), "get", "ippools");
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toContain("10.77.0.0/16");
    const rogue = cli(tlsEnv("rogue"), "get", "ippools");
    expect(rogue.status).not.toBe(0);
    expect(rogue.stderr).toMatch(/TLS handshake failed/);
    const missing = cli({ ...tlsEnv(), ETCD_CA_CERT_FILE: pki("absent.pem") }, "get", "ippools");
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toContain(`cannot read ETCD_CA_CERT_FILE ${pki("absent.pem")}: ENOENT`);
    const plain = cli({ ...tlsEnv(), ETCD_ENDPOINTS: authEtcd.endpoint }, "get", "ippools");
    expect(plain.stderr).toContain(
      `ETCD_CA_CERT_FILE is set but etcd endpoint '${authEtcd.endpoint}' is not https://`,
    );
  });

  it("the CLI as an etcd user; a wrong password is refused without echoing it", () => {
    const env = { ETCD_ENDPOINTS: authEtcd.endpoint, ETCD_USERNAME: "buoy" };
    const ok = cli({ ...env, ETCD_PASSWORD: "buoy-secret" }, "get", "ippools");
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toContain("10.78.0.0/16");
    const wrong = cli({ ...env, ETCD_PASSWORD: "not-it" }, "get", "ippools");
    expect(wrong.status).not.toBe(0);
    expect(wrong.stderr).toContain("refused user 'buoy'");
    expect(wrong.stderr).not.toContain("not-it");
    const half = cli(env, "get", "ippools");
    expect(half.stderr).toContain("ETCD_USERNAME is set but no etcd password is");
  });

  it("the agent runs over TLS with the ETCD_* variables", async () => {
    const agent = await startAgent({ env: tlsEnv() }, ["--node", "node-1", "--resync", "1"]);
    try {
      const metrics = await fetch(`http://${agent.address}/metrics`).then((r) => r.text());
      expect(metrics).toContain("buoy_");
      expect(agent.log.join("\n")).not.toMatch(/TLS handshake failed|cannot reach etcd/);
    } finally {
      await agent.stop();
    }
  });
});
