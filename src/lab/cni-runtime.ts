// The lab's container runtime, as far as networking goes: runs a conflist the
// way containerd (libcni) does. ADD runs the plugins in order, each with the
// previous one's result; DEL in reverse. Each plugin is exec'd inside the
// node's namespace with the CNI environment, K8S_POD_* in CNI_ARGS, and the
// runtimeConfig keys its capabilities ask for (the pod annotations for calico).
import { constants } from "node:fs";
import { access } from "node:fs/promises";
import { join } from "node:path";
import { CommandError } from "../exec/command.js";
import { runInNetns } from "./lab-shell.js";
import type { Conflist } from "./seed-conflist.js";
import { LabError } from "./topology.js";

export interface CniCall {
  /** The node's namespace: where the plugin runs and the host side of the veth lives. */
  nodeNetns: string;
  containerID: string;
  /** CNI_NETNS: /run/netns/<pod's namespace>. */
  podNetnsPath: string;
  ifname: string;
  pod: { namespace: string; name: string; uid: string };
  /** CNI_PATH, searched in order for each plugin's type. */
  cniPath: readonly string[];
  /** What the runtime offers; each plugin gets the keys it has a capability for. */
  runtimeConfig: Record<string, unknown>;
  timeoutMs?: number;
}

/** ADD through the list; resolves to the last plugin's result. Undoes with DEL if a plugin fails. */
export async function addNetworkList(
  conflist: Conflist,
  call: CniCall,
): Promise<Record<string, unknown>> {
  let previous: Record<string, unknown> | undefined;
  for (const plugin of conflist.plugins) {
    try {
      previous = await execPlugin(conflist, plugin, "ADD", call, previous);
    } catch (error) {
      await deleteNetworkList(conflist, call).catch(() => {});
      throw error;
    }
  }
  return previous ?? {};
}

/** DEL through the list in reverse; every plugin runs even if one fails, the first failure is thrown. */
export async function deleteNetworkList(conflist: Conflist, call: CniCall): Promise<void> {
  let failure: unknown;
  for (const plugin of [...conflist.plugins].reverse()) {
    try {
      await execPlugin(conflist, plugin, "DEL", call, undefined);
    } catch (error) {
      failure ??= error;
    }
  }
  if (failure !== undefined) throw failure;
}

async function execPlugin(
  conflist: Conflist,
  plugin: Record<string, unknown>,
  command: "ADD" | "DEL",
  call: CniCall,
  prevResult: Record<string, unknown> | undefined,
): Promise<Record<string, unknown>> {
  const type = String(plugin.type);
  const binary = await findPlugin(type, call.cniPath);
  const capabilities = (plugin.capabilities ?? {}) as Record<string, unknown>;
  const granted = Object.fromEntries(
    Object.entries(call.runtimeConfig).filter(([key]) => capabilities[key] === true),
  );
  const conf = {
    ...plugin,
    name: conflist.name,
    cniVersion: conflist.cniVersion ?? "0.2.0",
    ...(Object.keys(granted).length > 0 ? { runtimeConfig: granted } : {}),
    ...(prevResult ? { prevResult } : {}),
  };
  const env = {
    PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
    CNI_COMMAND: command,
    CNI_CONTAINERID: call.containerID,
    CNI_NETNS: call.podNetnsPath,
    CNI_IFNAME: call.ifname,
    CNI_PATH: call.cniPath.join(":"),
    CNI_ARGS: [
      "IgnoreUnknown=1",
      `K8S_POD_NAMESPACE=${call.pod.namespace}`,
      `K8S_POD_NAME=${call.pod.name}`,
      `K8S_POD_INFRA_CONTAINER_ID=${call.containerID}`,
      `K8S_POD_UID=${call.pod.uid}`,
    ].join(";"),
  };
  let stdout: string;
  try {
    ({ stdout } = await runInNetns(call.nodeNetns, [binary], {
      input: JSON.stringify(conf),
      env,
      timeoutMs: call.timeoutMs ?? 30_000,
    }));
  } catch (error) {
    if (!(error instanceof CommandError)) throw error;
    const what = `${type} ${command} for pod ${call.pod.namespace}/${call.pod.name} in ${call.nodeNetns}`;
    const refusal = parseCniError(error.stdout);
    // The plugin's error result says it all: its message, not the raw JSON again as a cause.
    if (refusal) throw new LabError(`${what} failed: ${refusal}`);
    throw new LabError(
      `${what} failed: ${error.stderr.trim() || error.stdout.trim() || `exit code ${error.exitCode}`}`,
      { cause: error },
    );
  }
  if (command === "DEL" || stdout.trim() === "") return {};
  return JSON.parse(stdout) as Record<string, unknown>;
}

/** The plugin's error result as `msg (details) (CNI error N)`; undefined when stdout is not one. */
function parseCniError(stdout: string): string | undefined {
  try {
    const parsed = JSON.parse(stdout) as { code?: number; msg?: string; details?: string };
    if (parsed.msg === undefined) return undefined;
    const details = parsed.details ? ` (${parsed.details})` : "";
    return `${parsed.msg}${details} (CNI error ${parsed.code ?? "?"})`;
  } catch {
    return undefined; // not a CNI error result
  }
}

async function findPlugin(type: string, cniPath: readonly string[]): Promise<string> {
  for (const dir of cniPath) {
    const candidate = join(dir, type);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  throw new LabError(`CNI plugin ${type} not found in ${cniPath.join(":")}`);
}

/** The pod's addresses from a CNI result (0.3.0 and later), without prefix length. */
export function resultAddresses(result: Record<string, unknown>): string[] {
  const ips = Array.isArray(result.ips) ? (result.ips as { address?: unknown }[]) : [];
  return ips
    .map((entry) => (typeof entry.address === "string" ? entry.address.split("/")[0] : undefined))
    .filter((address): address is string => address !== undefined && address !== "");
}
