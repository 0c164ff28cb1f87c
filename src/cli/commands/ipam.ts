// `buoy ipam show`: IP pool usage, as calicoctl's `ipam show`, on either
// datastore (read-only: one read of every pool, block and claim).
import { Option, type Command } from "commander";
import { ipamUsage, ipamUsageJson, renderIpamUsage } from "../ipam-usage.js";
import { readState } from "./read-state.js";
import type { Session } from "./session.js";

export function addIpamCommand(program: Command, session: Session): void {
  const ipam = program.command("ipam").description("Show how the IP pools' addresses are used");
  ipam
    .command("show")
    .description("Per IP pool: addresses, those pods hold, those free, floating IPs held")
    .option("--show-blocks", "also each block: its node and its addresses in use")
    .addOption(
      new Option("-o, --output <format>", "output format (default: a table)").choices(["json"]),
    )
    .addHelpText(
      "after",
      `
IPS IN USE counts the pods' addresses (block allocations) and the floating
IPs held in the pool (claims; FLOATING says how many of them). Blocks and
claims in no pool are listed under 'no pool'. Works on both datastores
(DATASTORE_TYPE).

Examples:
  buoy ipam show
  buoy ipam show --show-blocks
  kubectl buoy ipam show -o json`,
    )
    .action(async (options: { showBlocks?: boolean; output?: "json" }, command: Command) => {
      const state = await readState(session, command);
      const usage = ipamUsage(
        state.pools.map(({ value }) => value),
        state.blocks.map(({ value }) => value),
        state.claims.map(({ value }) => value),
      );
      session.write(
        options.output === "json"
          ? ipamUsageJson(usage)
          : renderIpamUsage(usage, options.showBlocks === true),
      );
    });
}
