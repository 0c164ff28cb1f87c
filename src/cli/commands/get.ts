// `buoy get TYPE [NAME]`: show IP pools, workload endpoints, floating IPs,
// nodes or BGP peers from either datastore, and its help.
import type { Command } from "commander";
import { UsageError } from "../cli-error.js";
import { readState } from "./read-state.js";
import { parseOutputFormat, renderGet, selectRecords } from "../render-get.js";
import { describeResourceTypes, parseResourceType, unknownResourceType } from "../resource-type.js";
import type { Session } from "./session.js";

/** Adds `get` to the program. */
export function addGetCommand(program: Command, session: Session): void {
  program
    .command("get")
    .description("Show IP pools, workload endpoints, floating IPs, nodes or BGP peers")
    .argument("<type>", "what to show (see resource types below)")
    .argument("[name]", "show only this one; an unknown name is an error")
    .option(
      "-o, --output <format>",
      "wide, json, yaml, name or jsonpath=TEMPLATE (default: a table)",
    )
    .option("--node <node>", "only workload endpoints or floating IPs on this node")
    .addHelpText("after", GET_HELP)
    .action(
      async (
        typeText: string,
        name: string | undefined,
        options: { output?: string; node?: string },
        command: Command,
      ) => {
        const format = parseOutputFormat(options.output);
        const type = parseResourceType(typeText);
        if (!type) throw unknownResourceType(typeText);
        if (options.node !== undefined && type !== "endpoints" && type !== "floatingips") {
          throw new UsageError(`--node applies to workloadendpoints and floatingips, not ${type}`);
        }
        const state = await readState(session, command);
        const records = selectRecords(type, state, { name, node: options.node });
        session.write(renderGet(records, format, name === undefined));
      },
    );
}

const GET_HELP = `
Resource types (and aliases):
${describeResourceTypes()}

Columns: ippools NAME, CIDR, SELECTOR (wide: BLOCKSIZE, DISABLED, NATOUTGOING,
DISABLEBGPEXPORT); workloadendpoints WORKLOAD, NODE, NETWORKS, INTERFACE
(wide: FLOATING IPS, CONTAINER); floatingips FLOATING IP, POD, NODE,
INTERNAL IP, PROGRAMMED, ANNOUNCED (bgp, direct, or - when the node does not
announce it) (wide: CONTAINER, CLAIMED, PROGRAMMED SINCE); nodes NAME,
ADDRESSES (wide: ASN); bgppeers NAME, PEERIP, ASN, NODE ((all): every node).
A workload endpoint is named by its Calico-style name, namespace/pod, or pod.

Examples:
  buoy get ippools
  buoy get ippool floating-v4 -o yaml
  buoy get workloadendpoints -o wide --node node-1
  buoy get floatingips
  buoy get floatingip 10.0.0.7 -o json
  buoy get bgppeers -o yaml
  buoy get ippools -o name
  buoy get floatingips -o jsonpath='{range .items[*]}{.metadata.name} {.spec.pod}{"\\n"}{end}'

-o name prints kind.group/name per record (kubectl's); -o jsonpath takes
kubectl's JSONPath template over what -o json prints: {.a.b}, [*], [n],
[a:b], ['key'], .., [?(@.x=="y")], {range EXPR}...{end}, {"\\n"}.`;
