// `buoy webhook`: the validating admission webhook's composition root (ADR
// 0010). Sets up its TLS (the Secret, the caBundle), serves AdmissionReview
// over HTTPS until SIGTERM, then lets reviews in flight finish.
import { Option, type Command } from "commander";
import { DEFAULT_MAX_FLOATING_IPS, MAX_FLOATING_IPS_LIMIT } from "../../floating/validate.js";
import { UsageError } from "../cli-error.js";
import type { Session } from "./session.js";
import { logLevelOption } from "../log-level-option.js";

interface WebhookCliOptions {
  listen: string;
  tlsSecret: string;
  tlsSan: string[];
  webhookConfiguration: string;
  maxFloatingIpsPerPod?: string;
  calicoConfig: string;
  logLevel: string;
}

const DEFAULT_SANS = ["buoy-webhook.kube-system.svc", "buoy-webhook.kube-system.svc.cluster.local"];

export function addWebhookCommand(program: Command, session: Session): void {
  program
    .command("webhook")
    .description(
      "Serve buoy's validating admission webhook (Kubernetes datastore): refuse overlapping " +
        "IP pools, cidr or blockSize changes under allocations, and bad floatingIPs annotations",
    )
    .option("--listen <host:port>", "HTTPS address to serve on", "0.0.0.0:9443")
    .option(
      "--tls-secret <namespace/name>",
      "the Secret holding the CA and serving certificate; created when missing",
      "kube-system/buoy-webhook-tls",
    )
    .addOption(
      new Option(
        "--tls-san <name>",
        "a DNS name or IP address for the serving certificate (repeatable)",
      )
        .argParser((value: string, previous: string[]) => [...previous, value])
        .default([], DEFAULT_SANS.join(", ")),
    )
    .option(
      "--webhook-configuration <name>",
      "the ValidatingWebhookConfiguration whose caBundle is set ('' for none)",
      "buoy",
    )
    .option(
      "--calico-config <namespace/name>",
      "the ConfigMap whose cni_network_config gives max_floating_ips_per_pod (missing: " +
        `${DEFAULT_MAX_FLOATING_IPS})`,
      "kube-system/calico-config",
    )
    .option(
      "--max-floating-ips-per-pod <n>",
      "use this bound instead of the ConfigMap's (keep it equal to the conflists')",
    )
    .addOption(logLevelOption())
    .addHelpText("after", WEBHOOK_HELP)
    .action(async (options: WebhookCliOptions) => {
      await runWebhook(options, session);
    });
}

async function runWebhook(options: WebhookCliOptions, session: Session): Promise<void> {
  const listen = /^(.*):(\d+)$/.exec(options.listen);
  if (!listen || Number(listen[2]) > 65535)
    throw new UsageError(`--listen must be host:port, got '${options.listen}'`);
  const secret = namespacedName("--tls-secret", options.tlsSecret);
  const calicoConfig = namespacedName("--calico-config", options.calicoConfig);
  const fixedMax = options.maxFloatingIpsPerPod;
  const max = fixedMax === undefined ? undefined : Number(fixedMax);
  if (max !== undefined && (!Number.isInteger(max) || max < 0 || max > MAX_FLOATING_IPS_LIMIT))
    throw new UsageError(
      `--max-floating-ips-per-pod must be a whole number from 0 to ${MAX_FLOATING_IPS_LIMIT}, got '${fixedMax}'`,
    );
  const [
    { readKubeCredentials },
    { createKubeHttp },
    { setUpWebhookTls, patchCaBundle },
    { startWebhook, readFloatingIpBound },
    log,
  ] = await Promise.all([
    import("../../kube/kube-credentials.js"),
    import("../../kube/http.js"),
    import("../../admission/webhook-tls.js"),
    import("../../admission/webhook-server.js"),
    import("../../log/logger.js"),
  ]);
  const { env, stdout } = session.request;
  const logger = log.createStreamLogger(
    (line) => stdout.write(line),
    log.parseLogLevel(options.logLevel),
  );
  // Credentials are re-read at most once a minute: the projected token rotates.
  let kube = createKubeHttp(readKubeCredentials(env));
  let readAt = Date.now();
  const currentKube = () => {
    if (Date.now() - readAt > 60_000) {
      kube = createKubeHttp(readKubeCredentials(env));
      readAt = Date.now();
    }
    return kube;
  };
  const sans = options.tlsSan.length > 0 ? options.tlsSan : DEFAULT_SANS;
  const { tls, created, patched } = await setUpWebhookTls(kube, {
    secret,
    sans,
    webhookConfiguration: options.webhookConfiguration || undefined,
  });
  logger.log("info", "webhook.tls", {
    secret: options.tlsSecret,
    created,
    caBundlePatched: patched,
    ...(created ? { sans } : {}),
  });
  const webhook = await startWebhook({
    tls,
    host: listen[1]!.replace(/^\[|\]$/g, ""),
    port: Number(listen[2]),
    kube: currentKube,
    maxFloatingIps:
      max === undefined
        ? readFloatingIpBound(currentKube, calicoConfig, logger)
        : () => Promise.resolve(max),
    logger,
  });
  logger.log("info", "webhook.listening", { host: listen[1], port: webhook.port });
  const configuration = options.webhookConfiguration;
  const mend = setInterval(() => {
    if (!configuration) return;
    patchCaBundle(currentKube(), configuration, tls.ca).then(
      (patched) => {
        if (patched > 0) logger.log("info", "webhook.tls", { caBundlePatched: patched });
      },
      (error: unknown) => logger.log("warn", "webhook.error", { caBundle: String(error) }),
    );
  }, 60_000);
  await new Promise<void>((resolve) => {
    if (!session.request.onShutdown) return; // runs until the process ends
    session.request.onShutdown(() => resolve());
  });
  clearInterval(mend);
  await webhook.close();
  logger.log("info", "webhook.stop", {});
}

function namespacedName(flag: string, text: string): { namespace: string; name: string } {
  const [namespace, name, ...rest] = text.split("/");
  if (!namespace || !name || rest.length > 0)
    throw new UsageError(`${flag} must be namespace/name, got '${text}'`);
  return { namespace, name };
}

const WEBHOOK_HELP = `
Paths (AdmissionReview admission.k8s.io/v1, POST):
  /validate-ippool  IPPool create/update: the fields as 'buoy apply' checks them,
                    no overlap with another pool, no cidr or blockSize change
                    while the pool's blocks hold addresses
  /validate-pod     Pod create/update with a changed cni.projectcalico.org/floatingIPs:
                    the CNI plugin's checks and words (JSON, each entry an IP
                    that may float, at most max_floating_ips_per_pod (the
                    --calico-config template's, read every 30 s), 4 KiB,
                    inside a pool, a pool the namespace may use). Who holds an
                    address is left to the plugin: it changes from moment to moment
  /healthz          GET: 200 while serving

TLS: the Secret --tls-secret holds ca.crt, tls.crt and tls.key. When it does
not exist, the webhook makes a CA and a serving certificate (openssl; the CA's
key is not kept), creates the Secret, and sets the CA as the caBundle of every
webhook in --webhook-configuration. Delete the Secret and restart to rotate.

Credentials: KUBECONFIG, or the pod's service account. Logs: JSON lines on stdout.

Example (manifests/webhook.yaml runs it so):
  buoy webhook --listen 0.0.0.0:9443 --tls-secret kube-system/buoy-webhook-tls`;
