// `buoy remove-dataplane`: remove from this node what the agent programmed,
// for uninstalling. The shell runners are imported only when it runs.
import type { Command } from "commander";
import type { Session } from "./session.js";

/** Adds `remove-dataplane` to the program. */
export function addRemoveDataplaneCommand(program: Command, session: Session): void {
  const { stdout } = session.request;
  program
    .command("remove-dataplane")
    .summary("Remove this node's buoy tables, routes and conntrack entries (uninstall)")
    .description(
      "Remove from this node what buoy's agent programmed: the nftables tables\n" +
        "ip buoy and ip6 buoy (floating-IP NAT, natOutgoing), the routes with\n" +
        "protocol 202, and the conntrack entries of the floating IPs those tables\n" +
        "translated. For uninstalling, after the agent has stopped (a running\n" +
        "agent puts it all back): the node's pods lose their floating IPs.\n" +
        "Touches no datastore; manifests/uninstall.yaml runs it on every node.",
    )
    .action(async () => {
      const [{ removeDataplane, renderDataplaneRemoved }, { LinuxNft }, routes] = await Promise.all(
        [
          import("../../dataplane/shell/remove-dataplane.js"),
          import("../../dataplane/shell/nft.js"),
          import("../../dataplane/shell/linux-routes.js"),
        ],
      );
      const removed = await removeDataplane({
        nft: new LinuxNft(),
        routes: new routes.LinuxRoutes(),
        conntrack: new routes.LinuxConntrack(),
      });
      stdout.write(renderDataplaneRemoved(removed));
    });
}
