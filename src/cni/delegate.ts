// Delegation the CNI way: find the plugin in CNI_PATH, exec it with the same
// environment and the same config on stdin, and read its result or error.
import { accessSync, constants } from "node:fs";
import { join } from "node:path";
import { CommandError, runCommand } from "../exec/command.js";
import { CniCode, CniError } from "./errors.js";

export type ExecPlugin = (
  type: string,
  env: Readonly<Record<string, string | undefined>>,
  stdin: string,
) => Promise<unknown>;

export const execPlugin: ExecPlugin = async (type, env, stdin) => {
  const dirs = (env.CNI_PATH ?? "").split(":").filter(Boolean);
  const file = dirs.map((dir) => join(dir, type)).find(isExecutable);
  if (!file) {
    throw new CniError(
      CniCode.invalidConfig,
      `failed to find plugin "${type}" in path [${dirs.join(" ")}]`,
    );
  }
  try {
    const { stdout } = await runCommand([file], { input: stdin, env: { ...env } });
    return stdout.trim() === "" ? undefined : JSON.parse(stdout);
  } catch (error) {
    if (error instanceof CommandError) {
      const reported = tryParse(error.stdout);
      if (reported && typeof reported.code === "number" && typeof reported.msg === "string") {
        throw new CniError(
          reported.code,
          `${type}: ${reported.msg}`,
          String(reported.details ?? ""),
        );
      }
      throw new CniError(CniCode.internal, `${type} failed: ${error.message}`);
    }
    throw error;
  }
};

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function tryParse(text: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}
