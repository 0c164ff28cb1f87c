// The webhook's serving certificate, set up by the webhook itself on start
// (ADR 0010): the Secret holds the CA certificate and the serving pair. The
// manifests ship the Secret empty (an Opaque Secret with no data), so the
// webhook needs only get and update on that one name, never `create` on
// secrets (which RBAC cannot narrow by name, and which would let a
// compromised webhook mint token Secrets). When it is empty, openssl makes a
// CA and a serving certificate for the Service's names, the CA's key is
// thrown away (nobody can sign another certificate with it), and the Secret
// is filled, compared on its resourceVersion: a replica that loses the race
// reads the winner's. Then every webhook of the ValidatingWebhookConfiguration
// gets the CA as its caBundle.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { runCommand } from "../exec/command.js";
import { KubeApiError, type KubeHttp } from "../kube/http.js";

export interface ServingTls {
  cert: string;
  key: string;
  ca: string;
}

export interface WebhookTlsOptions {
  /** `namespace/name` of the Secret. */
  secret: { namespace: string; name: string };
  /** The DNS names and IP addresses the certificate is for. */
  sans: readonly string[];
  /** The ValidatingWebhookConfiguration whose caBundle is kept (undefined: none). */
  webhookConfiguration: string | undefined;
}

const VALIDITY_DAYS = 3650;
const CA_BUNDLE_ATTEMPTS = 5;

/** Reads or fills the Secret, then patches the caBundle. Returns what to serve with. */
export async function setUpWebhookTls(
  kube: KubeHttp,
  options: WebhookTlsOptions,
): Promise<{ tls: ServingTls; created: boolean; patched: number }> {
  const { namespace, name } = options.secret;
  const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${encodeURIComponent(name)}`;
  const secret = await readSecret(kube, path, `${namespace}/${name}`);
  let tls = servingTlsOf(secret, path);
  let created = false;
  if (!tls) {
    const made = await createServingTls(options.sans);
    try {
      // The read's resourceVersion rides along: a replica that filled it first makes this a Conflict.
      await kube.replace(path, {
        ...secret,
        data: {
          "tls.crt": base64(made.cert),
          "tls.key": base64(made.key),
          "ca.crt": base64(made.ca),
        },
      });
      tls = made;
      created = true;
    } catch (error) {
      if (!(error instanceof KubeApiError && error.reason === "Conflict")) throw error;
      tls = servingTlsOf(await readSecret(kube, path, `${namespace}/${name}`), path);
      if (!tls)
        throw new Error(`secret ${namespace}/${name} changed but holds no certificate`, {
          cause: error,
        });
    }
  }
  const patched = options.webhookConfiguration
    ? await patchCaBundle(kube, options.webhookConfiguration, tls.ca)
    : 0;
  return { tls, created, patched };
}

interface SecretObject {
  metadata?: Record<string, unknown>;
  data?: Record<string, string>;
}

async function readSecret(kube: KubeHttp, path: string, name: string): Promise<SecretObject> {
  try {
    return await kube.get<SecretObject>(path);
  } catch (error) {
    if (error instanceof KubeApiError && error.reason === "NotFound") {
      throw new Error(
        `secret ${name} does not exist: apply manifests/webhook.yaml, which creates it empty for the webhook to fill`,
        { cause: error },
      );
    }
    throw error;
  }
}

/** The serving pair and CA the Secret holds; undefined while it is empty. */
function servingTlsOf(secret: SecretObject, path: string): ServingTls | undefined {
  if (Object.keys(secret.data ?? {}).length === 0) return undefined;
  const field = (key: string) => {
    const value = secret.data?.[key];
    if (!value) throw new Error(`secret ${path} has no ${key}`);
    return Buffer.from(value, "base64").toString("utf8");
  };
  return { cert: field("tls.crt"), key: field("tls.key"), ca: field("ca.crt") };
}

/**
 * Sets the caBundle of every webhook of the configuration; returns how many
 * changed. The webhook calls it again every minute: a re-applied manifest or
 * an edit that drops the caBundle is mended without a restart.
 */
export async function patchCaBundle(kube: KubeHttp, name: string, ca: string): Promise<number> {
  const path = `/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/${encodeURIComponent(name)}`;
  const bundle = base64(ca);
  for (let attempt = 1; ; attempt++) {
    const config = await kube.get<{ webhooks?: { clientConfig?: { caBundle?: string } }[] }>(path);
    const stale = (config.webhooks ?? []).filter(
      (webhook) => webhook.clientConfig?.caBundle !== bundle,
    );
    if (stale.length === 0) return 0;
    for (const webhook of stale)
      webhook.clientConfig = { ...webhook.clientConfig, caBundle: bundle };
    try {
      // The read's resourceVersion rides along: a concurrent writer makes this a Conflict.
      await kube.replace(path, config);
      return stale.length;
    } catch (error) {
      const conflict = error instanceof KubeApiError && error.reason === "Conflict";
      if (!conflict || attempt >= CA_BUNDLE_ATTEMPTS) throw error;
    }
  }
}

/** A fresh CA (P-256) and a serving certificate it signed for `sans`; the CA key is not kept. */
export async function createServingTls(sans: readonly string[]): Promise<ServingTls> {
  if (sans.length === 0) throw new Error("the serving certificate needs at least one name");
  const dir = mkdtempSync(join(tmpdir(), "buoy-webhook-tls-"));
  const at = (file: string) => join(dir, file);
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  try {
    const days = String(VALIDITY_DAYS);
    await runCommand([
      "openssl",
      "req",
      "-x509",
      ...ec,
      "-keyout",
      at("ca.key"),
      "-out",
      at("ca.crt"),
      "-days",
      days,
      "-subj",
      "/CN=buoy-webhook-ca",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    await runCommand([
      "openssl",
      "req",
      ...ec,
      "-keyout",
      at("tls.key"),
      "-out",
      at("tls.csr"),
      "-subj",
      `/CN=${sans[0]}`,
    ]);
    const names = sans.map((san) => (/^[0-9.]+$|:/.test(san) ? `IP:${san}` : `DNS:${san}`));
    writeFileSync(
      at("ext.cnf"),
      `subjectAltName=${names.join(",")}\nextendedKeyUsage=serverAuth\n` +
        "keyUsage=critical,digitalSignature\nbasicConstraints=critical,CA:FALSE\n",
    );
    await runCommand([
      "openssl",
      "x509",
      "-req",
      "-in",
      at("tls.csr"),
      "-CA",
      at("ca.crt"),
      "-CAkey",
      at("ca.key"),
      "-set_serial",
      `0x${randomBytes(16).toString("hex")}`,
      "-days",
      days,
      "-sha256",
      "-extfile",
      at("ext.cnf"),
      "-out",
      at("tls.crt"),
    ]);
    return {
      cert: readFileSync(at("tls.crt"), "utf8"),
      key: readFileSync(at("tls.key"), "utf8"),
      ca: readFileSync(at("ca.crt"), "utf8"),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function base64(text: string): string {
  return Buffer.from(text, "utf8").toString("base64");
}
