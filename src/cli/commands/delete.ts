// `buoy delete TYPE NAME` and `buoy delete -f FILE`: delete IP pools, nodes,
// BGP peers or FloatingIPs, in one transaction on etcd, one object after the
// other on Kubernetes (kube/kube-writes.ts); and its help.
import type { Command } from "commander";
import { commitPlan } from "../../etcd/etcd-state.js";
import { planDelete } from "../../etcd/plan-delete.js";
import { UsageError } from "../cli-error.js";
import { renderSummary, resourceName, type DeleteTarget, type ResourceKind } from "../manifest.js";
import { parseResourceType, unknownResourceType, type ResourceType } from "../resource-type.js";
import { openKube } from "./read-state.js";
import type { Session } from "./session.js";

/** Adds `delete` to the program. */
export function addDeleteCommand(program: Command, session: Session): void {
  program
    .command("delete")
    .description("Delete IP pools, nodes, BGP peers or FloatingIPs, by name or from a manifest")
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
        const datastore = session.datastoreConfig(command);
        if (datastore.type === "kubernetes") {
          const [{ http, leaseNamespace }, { deleteFromKube }] = await Promise.all([
            openKube(session, datastore.kubeconfig),
            import("../../kube/kube-writes.js"),
          ]);
          await deleteFromKube(http, leaseNamespace, targets);
        } else {
          const store = session.openStore(command);
          await commitPlan(store, (state) => planDelete(state, targets), action);
        }
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
floating IP inside it is claimed; on etcd its empty blocks are deleted with
it (on kubernetes they stay, as after kubectl delete). A node is deleted only
when no workload endpoint is left on it (etcd only: on kubernetes it is the
Kubernetes Node). A BGP peer is deleted as it is: the nodes close their
sessions to it. A FloatingIP named in a file is deleted with its status; the
controller releases the claim it held.

Examples:
  buoy delete ippool floating-v4
  buoy delete bgppeer tor
  buoy delete -f pools.yaml`;
