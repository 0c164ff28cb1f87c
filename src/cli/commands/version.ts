// `buoy version`, and the version it prints (package.json's, bundled in).
import type { Command } from "commander";
import packageJson from "../../../package.json" with { type: "json" };
import type { Session } from "./session.js";

export const VERSION: string = packageJson.version;

/** Adds `version` to the program. */
export function addVersionCommand(program: Command, session: Session): void {
  program
    .command("version")
    .description("Print the version of this buoy client")
    .action(() => session.write(`Client Version:    v${VERSION}\n`));
}
