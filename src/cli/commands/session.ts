// One CLI run's I/O as the commands use it: the datastore settings, the store
// opened on first use, manifests read from a file or stdin, and output.
import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { DatastoreUnavailableError } from "../../datastore/unavailable-error.js";
import { Store } from "../../etcd/store.js";
import { CliError } from "../cli-error.js";
import type { CliRequest } from "../cli-request.js";
import {
  parseDatastoreConfig,
  type DatastoreConfig,
  type EtcdDatastoreConfig,
} from "../datastore-config.js";
import { parseManifests, type Resource } from "../manifest.js";

/** The long-running commands, whose datastore is never chosen from what a host holds. */
const SERVICES = new Set(["agent", "controller"]);

/** One run's I/O: output, input files, and the datastore opened on first use. */
export class Session {
  #datastore: EtcdDatastoreConfig | undefined;

  constructor(readonly request: CliRequest) {}

  datastoreConfig(command: Command): DatastoreConfig {
    const { etcdEndpoints } = command.optsWithGlobals<{ etcdEndpoints?: string }>();
    return parseDatastoreConfig(this.request.env, etcdEndpoints, !SERVICES.has(command.name()));
  }

  openStore(command: Command): Store {
    const config = this.datastoreConfig(command);
    if (config.type === "kubernetes") {
      // Every command that writes has its kubernetes branch before this.
      throw new CliError(`'buoy ${command.name()}' works on the etcdv3 datastore only`);
    }
    this.#datastore = config;
    return new Store(this.request.openKv(config));
  }

  async readManifests(file: string): Promise<{ label: string; resources: Resource[] }> {
    const label = file === "-" ? "stdin" : file;
    let text: string;
    try {
      text = file === "-" ? await this.#readStdin() : await readFile(file, "utf8");
    } catch (error) {
      throw new CliError(`cannot read ${label}`, { cause: error });
    }
    let resources: Resource[];
    try {
      resources = parseManifests(text);
    } catch (error) {
      if (error instanceof CliError) throw new CliError(`${label}: ${error.message}`);
      throw error;
    }
    if (resources.length === 0) throw new CliError(`${label} holds no resources`);
    return { label, resources };
  }

  write(text: string): void {
    this.request.stdout.write(text);
  }

  /** Adds what the user can do about an unreachable datastore. */
  explain(error: unknown): unknown {
    if (!(error instanceof DatastoreUnavailableError) || !this.#datastore) return error;
    return new CliError(
      `cannot use the etcdv3 datastore at ${this.#datastore.endpoints.join(",")} ` +
        `(set ETCD_ENDPOINTS or --etcd-endpoints)`,
      { cause: error },
    );
  }

  #readStdin(): Promise<string> {
    if (!this.request.readStdin) throw new CliError("standard input is not available");
    return this.request.readStdin();
  }
}
