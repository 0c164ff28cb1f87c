// The CNI_* environment and CNI_ARGS, checked per command (code 4 when missing
// or, for the container ID and the interface name, not valid).
import { truncateEcho } from "../floating/truncate-echo.js";
import { containerIdProblem, interfaceNameProblem } from "../model/identifiers.js";
import { CniCode, CniError } from "./errors.js";

export type CniCommand = "ADD" | "DEL" | "CHECK" | "VERSION" | "STATUS" | "GC";

export interface CniEnv {
  command: CniCommand;
  containerID: string;
  netns: string;
  ifname: string;
  path: string[];
  args: CniArgs;
}

export interface CniArgs {
  namespace: string | undefined;
  pod: string | undefined;
  infraContainerID: string | undefined;
  podUid: string | undefined;
}

const COMMANDS: readonly CniCommand[] = ["ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC"];

export function parseCniEnv(env: Readonly<Record<string, string | undefined>>): CniEnv {
  const command = env.CNI_COMMAND;
  if (!command)
    throw new CniError(CniCode.invalidEnvironment, "required env variable CNI_COMMAND is missing");
  if (!(COMMANDS as readonly string[]).includes(command)) {
    throw new CniError(CniCode.invalidEnvironment, `unknown CNI_COMMAND: ${command}`);
  }
  const needs = (name: string, commands: readonly CniCommand[]): string => {
    const value = env[name] ?? "";
    if (value === "" && commands.includes(command as CniCommand)) {
      throw new CniError(CniCode.invalidEnvironment, `required env variable ${name} is missing`);
    }
    return value;
  };
  // Both reach `ip -batch` scripts and datastore keys: checked for every command.
  const containerID = needs("CNI_CONTAINERID", ["ADD", "DEL", "CHECK"]);
  refuseInvalid("CNI_CONTAINERID", containerID, containerIdProblem);
  const ifname = needs("CNI_IFNAME", ["ADD", "DEL", "CHECK"]);
  refuseInvalid("CNI_IFNAME", ifname, interfaceNameProblem);
  return {
    command: command as CniCommand,
    containerID,
    netns: needs("CNI_NETNS", ["ADD", "CHECK"]),
    ifname,
    path: (env.CNI_PATH ?? "").split(":").filter(Boolean),
    args: parseCniArgs(env.CNI_ARGS ?? ""),
  };
}

/** Code 4 naming the variable when a value given is not one the check accepts. */
function refuseInvalid(
  name: string,
  value: string,
  problem: (value: string) => string | undefined,
): void {
  const why = value === "" ? undefined : problem(value);
  if (why !== undefined) {
    throw new CniError(
      CniCode.invalidEnvironment,
      `invalid ${name} '${truncateEcho(value)}': ${why}`,
    );
  }
}

/** `K=V;K=V` as the runtimes pass it; unknown keys are ignored. */
export function parseCniArgs(text: string): CniArgs {
  const pairs = new Map<string, string>();
  for (const part of text.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0) pairs.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return {
    namespace: pairs.get("K8S_POD_NAMESPACE") || undefined,
    pod: pairs.get("K8S_POD_NAME") || undefined,
    infraContainerID: pairs.get("K8S_POD_INFRA_CONTAINER_ID") || undefined,
    podUid: pairs.get("K8S_POD_UID") || undefined,
  };
}
