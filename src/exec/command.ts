// The one module that starts processes. A failed command becomes a
// CommandError carrying argv, exit code and stderr; a command that runs past
// its timeout is killed and fails the same way.
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
  /** Kill the command after this long (default 30 s): a hung tool must not stall its caller. */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;

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
  ): { stdout: ReadableStream; stderr: ReadableStream; exited: Promise<number>; kill(): void };
}

const bun = (globalThis as { Bun?: BunRuntime }).Bun;

interface Finished {
  stdout: string;
  stderr: string;
  code: number | null;
}

interface Started {
  finished: Promise<Finished>;
  kill(): void;
}

export async function runCommand(
  argv: readonly string[],
  options: RunOptions = {},
): Promise<CommandOutput> {
  if (argv.length === 0) throw new Error("runCommand: empty argv");
  const started = bun ? startWithBun(bun, argv, options) : await startWithNode(argv, options);
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    started.kill();
  }, timeoutMs);
  let result: Finished;
  try {
    result = await started.finished;
  } finally {
    clearTimeout(timer);
  }
  if (timedOut) {
    throw new CommandError(
      argv,
      null,
      result.stdout,
      `${result.stderr}timed out after ${timeoutMs} ms`,
    );
  }
  if (result.code === 0) return { stdout: result.stdout, stderr: result.stderr };
  throw new CommandError(argv, result.code, result.stdout, result.stderr);
}

function startWithBun(runtime: BunRuntime, argv: readonly string[], options: RunOptions): Started {
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
  const running = child;
  return {
    kill: () => running.kill(),
    finished: Promise.all([
      new Response(running.stdout).text(),
      new Response(running.stderr).text(),
      running.exited,
    ]).then(([stdout, stderr, code]) => ({ stdout, stderr, code })),
  };
}

async function startWithNode(argv: readonly string[], options: RunOptions): Promise<Started> {
  const { spawn } = await import("node:child_process");
  const [file, ...args] = argv as [string, ...string[]];
  const child = spawn(file, args, {
    stdio: ["pipe", "pipe", "pipe"],
    ...(options.env ? { env: options.env } : {}),
  });
  const finished = new Promise<Finished>((resolve, reject) => {
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
  });
  child.stdin.on("error", () => {});
  child.stdin.end(options.input ?? "");
  return { finished, kill: () => child.kill("SIGKILL") };
}

export interface StreamOptions {
  /** Each line of standard output, as it comes. */
  onLine(line: string): void;
  /** The process ended (or could not start), with what it said on standard error. */
  onExit(detail: string): void;
  /** It wrote to standard error while running (a monitor that fell behind says so there). */
  onStderr?(text: string): void;
  /**
   * Keep the process's standard input open while it runs: it reads end-of-file
   * when this process dies, however it dies, and can stop then.
   */
  holdStdin?: boolean;
}

export interface Stream {
  /**
   * Stops the process (SIGTERM, SIGKILL after 10 s) and resolves once it has
   * exited; onExit is not called for a stop.
   */
  stop(): Promise<void>;
}

const STOP_GRACE_MS = 10_000;

/**
 * A long-running command read line by line (`nft monitor`, `ip monitor`);
 * Node only (the agent's). Standard error is kept, the last 4 KiB, for onExit.
 */
export async function startStream(
  argv: readonly string[],
  options: StreamOptions,
): Promise<Stream> {
  if (argv.length === 0) throw new Error("startStream: empty argv");
  const { spawn } = await import("node:child_process");
  const [file, ...args] = argv as [string, ...string[]];
  const child = options.holdStdin
    ? spawn(file, args, { stdio: ["pipe", "pipe", "pipe"] })
    : spawn(file, args, { stdio: ["ignore", "pipe", "pipe"] });
  child.stdin?.on("error", () => {});
  const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
  let stopped = false;
  let rest = "";
  let stderr = "";
  let ended = false;
  const end = (detail: string) => {
    if (ended || stopped) return;
    ended = true;
    options.onExit(`${argv.join(" ")}: ${detail}`);
  };
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk: string) => {
    const lines = (rest + chunk).split("\n");
    rest = lines.pop() ?? "";
    for (const line of lines) if (!stopped) options.onLine(line);
  });
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk: string) => {
    stderr = (stderr + chunk).slice(-4096);
    if (!stopped) options.onStderr?.(chunk);
  });
  child.on("error", (error) => end(error.message));
  child.on("close", (code, signal) =>
    end(stderr.trim() || (signal ? `killed by ${signal}` : `exit code ${code}`)),
  );
  return {
    stop: async () => {
      stopped = true;
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}
