// The one module that starts processes. A failed command becomes a
// CommandError carrying argv, exit code and stderr.
//
// In the compiled CNI executable this uses Bun.spawn: loading bun's
// node:child_process costs 15-25 ms at every start, Bun.spawn well under one
// (docs/adr/0001-cni-executable.md). Under Node (CLI, agent, unit tests)
// node:child_process is imported on first use.

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

/** The part of Bun's API used here. */
interface BunRuntime {
  spawn(
    argv: string[],
    options: {
      stdin: Blob;
      stdout: "pipe";
      stderr: "pipe";
      env?: Record<string, string | undefined>;
    },
  ): { stdout: ReadableStream; stderr: ReadableStream; exited: Promise<number> };
}

const bun = (globalThis as { Bun?: BunRuntime }).Bun;

export async function runCommand(
  argv: readonly string[],
  options: RunOptions = {},
): Promise<CommandOutput> {
  if (argv.length === 0) throw new Error("runCommand: empty argv");
  const { stdout, stderr, code } = bun
    ? await runWithBun(bun, argv, options)
    : await runWithNode(argv, options);
  if (code === 0) return { stdout, stderr };
  throw new CommandError(argv, code, stdout, stderr);
}

interface Finished {
  stdout: string;
  stderr: string;
  code: number | null;
}

async function runWithBun(
  runtime: BunRuntime,
  argv: readonly string[],
  options: RunOptions,
): Promise<Finished> {
  let child;
  try {
    child = runtime.spawn([...argv], {
      stdin: new Blob([options.input ?? ""]),
      stdout: "pipe",
      stderr: "pipe",
      ...(options.env ? { env: options.env } : {}),
    });
  } catch (error) {
    throw new CommandError(argv, null, "", (error as Error).message);
  }
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  return { stdout, stderr, code };
}

async function runWithNode(argv: readonly string[], options: RunOptions): Promise<Finished> {
  const { spawn } = await import("node:child_process");
  const [file, ...args] = argv as [string, ...string[]];
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
    child.on("close", (code) =>
      resolve({
        stdout: Buffer.concat(stdout).toString("utf8"),
        stderr: Buffer.concat(stderr).toString("utf8"),
        code,
      }),
    );
    child.stdin.on("error", () => {});
    child.stdin.end(options.input ?? "");
  });
}
