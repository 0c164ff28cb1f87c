// The webhook's serving certificate, set up by the webhook itself on start
// (ADR 0010): the Secret holds the CA certificate and the serving pair; when
// it does not exist yet, openssl makes a CA and a serving certificate for the
// Service's names, the CA's key is thrown away (nobody can sign another
// certificate with it), and the Secret is created. A replica that loses the
// create race reads the winner's. Then every webhook of the
// ValidatingWebhookConfiguration gets the CA as its caBundle.
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

/** Reads or creates the Secret, then patches the caBundle. Returns what to serve with. */
export async function setUpWebhookTls(
  kube: KubeHttp,
  options: WebhookTlsOptions,
): Promise<{ tls: ServingTls; created: boolean; patched: number }> {
  const path = `/api/v1/namespaces/${encodeURIComponent(options.secret.namespace)}/secrets`;
  let tls = await readSecret(kube, `${path}/${encodeURIComponent(options.secret.name)}`);
  let created = false;
  if (!tls) {
    const made = await createServingTls(options.sans);
    try {
      await kube.create(path, {
        apiVersion: "v1",
        kind: "Secret",
        type: "kubernetes.io/tls",
        metadata: { name: options.secret.name, labels: { "app.kubernetes.io/name": "buoy" } },
        data: {
          "tls.crt": base64(made.cert),
          "tls.key": base64(made.key),
          "ca.crt": base64(made.ca),
        },
      });
      tls = made;
      created = true;
    } catch (error) {
      if (!(error instanceof KubeApiError && error.reason === "AlreadyExists")) throw error;
      tls = await readSecret(kube, `${path}/${encodeURIComponent(options.secret.name)}`);
      if (!tls)
        throw new Error(`secret ${options.secret.namespace}/${options.secret.name} vanished`, {
          cause: error,
        });
    }
  }
  const patched = options.webhookConfiguration
    ? await patchCaBundle(kube, options.webhookConfiguration, tls.ca)
    : 0;
  return { tls, created, patched };
}

async function readSecret(kube: KubeHttp, path: string): Promise<ServingTls | undefined> {
  let secret: { data?: Record<string, string> };
  try {
    secret = await kube.get(path);
  } catch (error) {
    if (error instanceof KubeApiError && error.reason === "NotFound") return undefined;
    throw error;
  }
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
