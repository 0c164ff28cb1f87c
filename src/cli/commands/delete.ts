// `buoy delete TYPE NAME` and `buoy delete -f FILE`: delete IP pools, nodes
// or BGP peers in one transaction (etcdv3 datastore), and its help.
import type { Command } from "commander";
import { commitPlan } from "../../etcd/etcd-state.js";
import { planDelete } from "../../etcd/plan-delete.js";
import { UsageError } from "../cli-error.js";
import {
  renderSummary,
  resourceName,
  type DeleteTarget,
  type ResourceKind,
} from "../manifest.js";
import { parseResourceType, unknownResourceType, type ResourceType } from "../resource-type.js";
import type { Session } from "./session.js";

/** Adds `delete` to the program. */
export function addDeleteCommand(program: Command, session: Session): void {
  program
    .command("delete")
    .description("Delete IP pools, nodes or BGP peers, by name or from a manifest")
    .argument("[type]", "ippool, node or bgppeer")
    .argument("[name]", "the name of the resource")
    .option("-f, --filename <file>", "delete the resources named in this manifest; '-' reads stdin")
    .addHelpText("after", DELETE_HELP)
    .action(
      async (
        typeText: string | undefined,
        name: string | undefined,
        options: { filename?: string },
        command: Command,
      ) => {
        let targets: DeleteTarget[];
        let action: string;
        if (options.filename !== undefined) {
          if (typeText !== undefined) {
            throw new UsageError("give either -f FILE or a type and a name, not both");
          }
          const { label, resources } = await session.readManifests(options.filename);
          targets = resources.map((resource) => ({
            kind: resource.kind,
            name: resourceName(resource),
          }));
          action = `delete the resources in ${label}`;
        } else {
          if (typeText === undefined || name === undefined) {
            throw new UsageError("delete needs a type and a name (delete ippool NAME) or -f FILE");
          }
          const type = parseResourceType(typeText);
          if (!type) throw unknownResourceType(typeText);
          const kind = DELETABLE_KINDS[type];
          if (!kind) {
            throw new UsageError(
              `${type} are recorded by buoy itself and cannot be deleted; delete ippool, node or bgppeer`,
            );
          }
          targets = [{ kind, name }];
          action = `delete ${kind} ${name}`;
        }
        const store = session.openStore(command);
        await commitPlan(store, (state) => planDelete(state, targets), action);
        session.write(
          renderSummary(
            "deleted",
            targets.map((target) => target.kind),
          ),
        );
      },
    );
}

/** The resource types `delete TYPE NAME` takes; the others are buoy's own records. */
const DELETABLE_KINDS: Partial<Record<ResourceType, ResourceKind>> = {
  ippools: "IPPool",
  nodes: "Node",
  bgppeers: "BGPPeer",
};

const DELETE_HELP = `
A pool is deleted only when no address is allocated in its blocks and no
floating IP inside it is claimed; its empty blocks are deleted with it. A node
is deleted only when no workload endpoint is left on it. A BGP peer is
deleted as it is: the nodes close their sessions to it.

Examples:
  buoy delete ippool floating-v4
  buoy delete bgppeer tor
  buoy delete -f pools.yaml`;
