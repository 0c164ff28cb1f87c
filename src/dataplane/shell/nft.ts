// Runs nft: a script in one `nft -f -` transaction (the kernel applies all of
// it or none), and buoy's table read back with `nft -j`. The scripts and the
// parsing are in dataplane/nft-script.ts.
import { CommandError, runCommand } from "../../exec/command.js";
import type { Family } from "../../net/address.js";
import { NFT_FAMILY, NFT_TABLE, parseNftTable, type NftTableState } from "../nft-script.js";

export interface Nft {
  /** Applies a script in one transaction; rejects, changing nothing, when nft refuses any of it. */
  apply(script: string): Promise<void>;
  /** buoy's table of one family as the kernel holds it; undefined when there is none. */
  readTable(family: Family): Promise<NftTableState | undefined>;
}

const NO_TABLE = /No such file or directory/;

export class LinuxNft implements Nft {
  /** `command` runs nft: `["nft"]`, or e.g. `["ip", "netns", "exec", NAME, "nft"]`. */
  constructor(private readonly command: readonly string[] = ["nft"]) {}

  async apply(script: string): Promise<void> {
    if (script.trim() === "") return;
    await runCommand([...this.command, "-f", "-"], { input: script });
  }

  async readTable(family: Family): Promise<NftTableState | undefined> {
    let stdout: string;
    try {
      ({ stdout } = await runCommand([
        ...this.command,
        "-j",
        "list",
        "table",
        NFT_FAMILY[family],
        NFT_TABLE,
      ]));
    } catch (error) {
      if (error instanceof CommandError && NO_TABLE.test(error.stderr)) return undefined;
      throw error;
    }
    return parseNftTable(JSON.parse(stdout) as unknown, family);
  }
}
