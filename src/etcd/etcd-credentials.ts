// etcd's TLS files and user, as the plugin, the agent and the CLI are given
// them (Calico's names: `etcd_ca_cert_file`, `etcd_cert_file`,
// `etcd_key_file` in the CNI config; ETCD_CA_CERT_FILE, ETCD_CERT_FILE,
// ETCD_KEY_FILE, ETCD_USERNAME, ETCD_PASSWORD in the environment), checked
// together and read into what EtcdKv takes. Each setting carries the name it
// came from, so an error names what the user wrote.
import type { EtcdAuth } from "./etcd-kv.js";
import type { EtcdTls } from "./etcd-https.js";

/** A setting and where it came from (`etcd_cert_file`, `ETCD_CERT_FILE`, ...). */
export interface Setting {
  value: string;
  from: string;
}

export interface EtcdCredentialSources {
  caCertFile?: Setting | undefined;
  certFile?: Setting | undefined;
  keyFile?: Setting | undefined;
  username?: Setting | undefined;
  password?: Setting | undefined;
}

export interface EtcdCredentials {
  tls?: EtcdTls;
  auth?: EtcdAuth;
}

/** Thrown for settings that do not fit together or files that cannot be read. */
export class EtcdCredentialsError extends Error {}

/**
 * Checks the settings against each other and the endpoints, and reads the
 * files with `readFile` (which throws Node's errno errors).
 */
export function readEtcdCredentials(
  sources: EtcdCredentialSources,
  endpoints: readonly string[],
  readFile: (path: string) => string,
): EtcdCredentials {
  const given = (setting: Setting | undefined): setting is Setting =>
    setting !== undefined && setting.value.trim() !== "";
  const { caCertFile, certFile, keyFile, username, password } = sources;
  if (given(certFile) !== given(keyFile)) {
    const [set, unset] = given(certFile) ? [certFile, "key"] : [keyFile, "certificate"];
    throw new EtcdCredentialsError(
      `${set?.from} is set but the client ${unset} is not: an etcd client certificate needs both`,
    );
  }
  if (given(username) !== given(password)) {
    throw new EtcdCredentialsError(
      given(username)
        ? `${username?.from} is set but no etcd password is`
        : `${password?.from} is set but no etcd user name is`,
    );
  }
  const files = [caCertFile, certFile, keyFile].filter(given);
  const plain = endpoints.filter((endpoint) => !endpoint.startsWith("https://"));
  if (files.length > 0 && plain.length > 0) {
    throw new EtcdCredentialsError(
      `${files[0]?.from} is set but etcd endpoint '${plain[0]}' is not https://`,
    );
  }
  const exposed = plain.find((endpoint) => !isLoopback(endpoint));
  if (given(username) && exposed !== undefined) {
    throw new EtcdCredentialsError(
      `${username.from} is set but etcd endpoint '${exposed}' is not https://: the password would cross the network in the clear`,
    );
  }
  const read = (setting: Setting): string => {
    const path = setting.value.trim();
    try {
      return readFile(path);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      throw new EtcdCredentialsError(`cannot read ${setting.from} ${path}: ${code}`);
    }
  };
  const tls: EtcdTls = {
    ...(given(caCertFile) ? { ca: read(caCertFile) } : {}),
    ...(given(certFile) ? { cert: read(certFile) } : {}),
    ...(given(keyFile) ? { key: read(keyFile) } : {}),
  };
  return {
    ...(files.length > 0 ? { tls } : {}),
    ...(given(username) && given(password)
      ? { auth: { username: username.value, password: password.value } }
      : {}),
  };
}

/** Whether an http:// endpoint stays on this host (127.0.0.0/8, ::1, localhost). */
function isLoopback(endpoint: string): boolean {
  if (!URL.canParse(endpoint)) return false;
  const host = new URL(endpoint).hostname.replace(/^\[|\]$/g, "");
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}

/**
 * The settings from an environment: ETCD_* first, then Calico's CALICO_ETCD_*
 * spellings, as calicoctl reads them.
 */
export function etcdCredentialSourcesFromEnv(
  env: Readonly<Record<string, string | undefined>>,
): EtcdCredentialSources {
  const setting = (name: string): Setting | undefined => {
    for (const from of [name, `CALICO_${name}`]) {
      const value = env[from];
      if (value !== undefined && value !== "") return { value, from };
    }
    return undefined;
  };
  return {
    caCertFile: setting("ETCD_CA_CERT_FILE"),
    certFile: setting("ETCD_CERT_FILE"),
    keyFile: setting("ETCD_KEY_FILE"),
    username: setting("ETCD_USERNAME"),
    password: setting("ETCD_PASSWORD"),
  };
}
