// The `buoy` CLI executable, bundled by scripts/build.mjs into dist/buoy (run
// with Node.js). Nothing here runs before main().
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { basename, join } from "node:path";
import {
  EtcdCredentialsError,
  etcdCredentialSourcesFromEnv,
  readEtcdCredentials,
} from "../etcd/etcd-credentials.js";
import { EtcdKv } from "../etcd/etcd-kv.js";
import { CliError } from "./cli-error.js";
import type { EtcdDatastoreConfig } from "./datastore-config.js";
import { runCli } from "./run-cli.js";

export async function main(): Promise<void> {
  // `buoy get ... | head`: a reader that goes away early is not an error.
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code !== "EPIPE") throw error;
  });
  // Run as kubectl-buoy (`kubectl buoy ...`): kubectl's cluster by default.
  const plugin = [process.argv0, process.argv[1] ?? ""].some(
    (path) => basename(path) === "kubectl-buoy",
  );
  process.exitCode = await runCli({
    argv: process.argv.slice(2),
    env: cliEnv(process.env, plugin),
    ...(plugin ? { programName: "kubectl buoy" } : {}),
    stdout: process.stdout,
    stderr: process.stderr,
    openKv,
    readStdin,
    onShutdown: (stop) => {
      process.once("SIGTERM", stop);
      process.once("SIGINT", stop);
    },
    ...(process.stdout.isTTY ? { helpWidth: process.stdout.columns } : {}),
  });
}

/**
 * kubectl's default kubeconfig when KUBECONFIG is unset (it then chooses the
 * kubernetes datastore unless DATASTORE_TYPE or etcd endpoints say
 * otherwise: datastore-config.ts); as a kubectl plugin, the kubernetes
 * datastore unless DATASTORE_TYPE says otherwise.
 */
function cliEnv(env: NodeJS.ProcessEnv, plugin: boolean): NodeJS.ProcessEnv {
  const fallback = join(homedir(), ".kube", "config");
  const kubeconfigUnset = env.KUBECONFIG === undefined && env.CALICO_KUBECONFIG === undefined;
  return {
    ...env,
    ...(plugin
      ? { DATASTORE_TYPE: env.DATASTORE_TYPE ?? env.CALICO_DATASTORE_TYPE ?? "kubernetes" }
      : {}),
    ...(kubeconfigUnset && existsSync(fallback) ? { KUBECONFIG: fallback } : {}),
  };
}

/** etcd with the TLS files and user of ETCD_CA_CERT_FILE, ETCD_CERT_FILE, ETCD_KEY_FILE, ETCD_USERNAME, ETCD_PASSWORD. */
function openKv(config: EtcdDatastoreConfig): EtcdKv {
  try {
    const sources = etcdCredentialSourcesFromEnv(process.env);
    const credentials = readEtcdCredentials(sources, config.endpoints, (path) =>
      readFileSync(path, "utf8"),
    );
    return new EtcdKv({ endpoints: config.endpoints, ...credentials });
  } catch (error) {
    if (error instanceof EtcdCredentialsError) throw new CliError(error.message);
    throw error;
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

await main();
