// Runs BIRD 2 through birdc: a config file written whole and loaded with
// `birdc configure`, BGP sessions read back with `birdc show protocols`. The
// configs and the parsing of birdc's replies are in dataplane/bird-config.ts.
import { readFile, rename, rm, writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import { CommandError, runCommand } from "../../exec/command.js";
import { parseBirdConfigureReply, parseBirdProtocols, type BgpSession } from "../bird-config.js";

export type { BgpSession } from "../bird-config.js";

export interface Bird {
  /**
   * Writes the config atomically (tmp file + rename) and makes BIRD load it
   * (`birdc -s <socket> configure`); skips both when the file already holds
   * exactly this text and BIRD confirmed it earlier. Throws with birdc's
   * message on a parse error or when BIRD is not reachable.
   */
  apply(config: string, fenced?: string): Promise<void>;
  /** Forgets what BIRD confirmed: the next apply configures even an unchanged file. */
  forget?(): void;
  /** BGP protocols as `birdc -s <socket> show protocols` lists them. */
  sessions(): Promise<BgpSession[]>;
}

/**
 * BIRD must run with `-c configPath -s socketPath`, and read files where this
 * process writes them. A config BIRD cannot parse never replaces the file:
 * BIRD checks the tmp file first (`configure check`), with its own parser, so
 * a BIRD that restarts always finds a config it loads. Nothing is written
 * while BIRD is not reachable.
 */
export class LinuxBird implements Bird {
  readonly #configPath: string;
  /** The config BIRD last took from this instance. */
  #confirmed: string | undefined;

  /** `birdc` is the command's path when it is not on PATH (e.g. `/usr/sbin/birdc`). */
  constructor(
    configPath: string,
    private readonly socketPath: string,
    private readonly birdc = "birdc",
  ) {
    // BIRD reads the file itself, from its own working directory, as a quoted string.
    this.#configPath = resolve(configPath);
    if (/["\n]/.test(this.#configPath)) {
      throw new Error(`BIRD config path ${JSON.stringify(configPath)} has a quote or line break`);
    }
  }

  /**
   * `fenced`: the same config without this node's floating IPs, written
   * beside it (`<config>.fenced`) for the watchdog to load when the agent
   * dies (ADR 0009).
   */
  async apply(config: string, fenced?: string): Promise<void> {
    if (fenced !== undefined) await writeAtomically(`${this.#configPath}.fenced`, fenced);
    if (config === this.#confirmed && (await readText(this.#configPath)) === config) return;
    this.#confirmed = undefined;
    const tmp = `${this.#configPath}.${process.pid}.tmp`;
    try {
      await writeFile(tmp, config, { mode: 0o644 });
      await this.#configure("check", `"${tmp}"`);
      await rename(tmp, this.#configPath);
    } finally {
      await rm(tmp, { force: true });
    }
    // Named: the watchdog may have loaded the fenced twin meanwhile.
    await this.#configure(`"${this.#configPath}"`);
    this.#confirmed = config;
  }

  forget(): void {
    this.#confirmed = undefined;
  }

  async sessions(): Promise<BgpSession[]> {
    const { stdout } = await runCommand([this.birdc, "-s", this.socketPath, "show", "protocols"]);
    return parseBirdProtocols(stdout);
  }

  /**
   * `birdc configure …`, with -v: each reply line carries BIRD's code, which
   * tells a config taken from a refusal (birdc exits 1 on a parse error, 0 on
   * other refusals).
   */
  async #configure(...args: string[]): Promise<void> {
    const argv = [this.birdc, "-v", "-s", this.socketPath, "configure", ...args];
    let reply: { stdout: string; exitCode: number | null };
    try {
      reply = { stdout: (await runCommand(argv)).stdout, exitCode: 0 };
    } catch (error) {
      // Not reachable: birdc's own message, as runCommand put it.
      if (!(error instanceof CommandError) || !/^\d{4}[ -]/m.test(error.stdout)) throw error;
      reply = error;
    }
    const refusal = parseBirdConfigureReply(reply.stdout);
    if (refusal !== undefined) throw new CommandError(argv, reply.exitCode, reply.stdout, refusal);
  }
}

async function writeAtomically(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text, { mode: 0o644 });
  await rename(tmp, path);
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch {
    return undefined;
  }
}
