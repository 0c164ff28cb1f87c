// The lab a `buoy lab` command works on: the one --prefix names, else the
// only lab on this machine.
import { CliError, UsageError } from "../cli-error.js";

/** The given prefix, or the only lab's; an error listing them when there are several. */
export async function chooseLabPrefix(prefix: string | undefined): Promise<string> {
  if (prefix !== undefined) return prefix;
  const { listLabs } = await import("../../lab/open-lab.js");
  const labs = await listLabs();
  if (labs.length === 1) return labs[0] as string;
  if (labs.length === 0) throw new CliError("no labs on this machine ('buoy lab up' makes one)");
  throw new UsageError(`${labs.length} labs (${labs.join(", ")}): choose one with --prefix`);
}
