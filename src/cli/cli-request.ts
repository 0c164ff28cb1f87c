// What one run of the `buoy` CLI is given: its arguments, environment and
// output streams, and the ways to open the datastore, read stdin and hear of
// shutdown. runCli() and every command take their I/O from it, never from
// process globals.
import type { Kv } from "../datastore/kv.js";
import type { EtcdDatastoreConfig } from "./datastore-config.js";

export interface Writer {
  write(text: string): unknown;
}

export interface CliRequest {
  /** Arguments after the program name. */
  argv: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
  stdout: Writer;
  stderr: Writer;
  openKv(config: EtcdDatastoreConfig): Kv;
  /** Reads all of standard input (for `-f -`). */
  readStdin?: () => Promise<string>;
  /** Column to wrap help at (default 80). */
  helpWidth?: number;
  /** The name help and errors show: `buoy`, or `kubectl buoy` for the plugin. */
  programName?: string;
  /** Registers what to do on SIGTERM/SIGINT (long-running commands: the agent). */
  onShutdown?: (stop: () => void) => void;
}
