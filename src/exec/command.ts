// The one module that starts processes. A failed command becomes a
// CommandError carrying argv, exit code and stderr.
import { spawn } from "node:child_process";

export class CommandError extends Error {
  override readonly name = "CommandError";
  constructor(
    readonly argv: readonly string[],
    readonly exitCode: number | null,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    const detail = stderr.trim() || stdout.trim() || `exit code ${exitCode}`;
    super(`${argv.join(" ")}: ${detail}`);
  }
}

export interface CommandOutput {
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string;
  env?: Record<string, string | undefined>;
}

export function runCommand(
  argv: readonly string[],
  options: RunOptions = {},
): Promise<CommandOutput> {
  const [file, ...args] = argv;
  if (file === undefined) return Promise.reject(new Error("runCommand: empty argv"));
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      stdio: ["pipe", "pipe", "pipe"],
      ...(options.env ? { env: options.env } : {}),
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
    child.on("error", (error) => reject(new CommandError(argv, null, "", error.message)));
    child.on("close", (code) => {
      const out = Buffer.concat(stdout).toString("utf8");
      const err = Buffer.concat(stderr).toString("utf8");
      if (code === 0) resolve({ stdout: out, stderr: err });
      else reject(new CommandError(argv, code, out, err));
    });
    child.stdin.on("error", () => {});
    child.stdin.end(options.input ?? "");
  });
}
