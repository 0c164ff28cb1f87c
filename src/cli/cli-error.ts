// The CLI's error kinds: a command that is refused or fails (exit 1), a
// command line that makes no sense (exit 2, like commander's own usage
// errors), and an answer that is also an exit status.
// runCli() is the only place that turns them into output.

export class CliError extends Error {
  override readonly name = "CliError";
}

export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** The command has printed its answer and exits with `exitCode` (ipam check: problems found). */
export class ExitStatus extends Error {
  override readonly name = "ExitStatus";
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
  }
}

/** `error: <message>`, then one `caused by:` line per link of the cause chain. */
export function renderError(error: unknown): string {
  const lines = [`error: ${messageOf(error)}`];
  const seen = new Set<unknown>([error]);
  let cause = (error as { cause?: unknown } | undefined)?.cause;
  while (cause !== undefined && !seen.has(cause) && seen.size < 10) {
    lines.push(`  caused by: ${messageOf(cause)}`);
    seen.add(cause);
    cause = (cause as { cause?: unknown } | undefined)?.cause;
  }
  return lines.join("\n") + "\n";
}

function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}
