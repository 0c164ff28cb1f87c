// `buoy ipam show|check|release`, as calicoctl's, on either datastore: IP
// pool usage, IPAM checked against the workload endpoints and claims (one
// read of every pool, block, endpoint and claim), and the release of an
// address no workload endpoint holds, through the datastore's own release
// of a container (what DEL and GC run).
import { Option, type Command } from "commander";
import type { Datastore } from "../../datastore/datastore.js";
import { EtcdDatastore } from "../../etcd/etcd-datastore.js";
import { CliError, ExitStatus, UsageError } from "../cli-error.js";
import { releaseHandle } from "../../ipam/ipam.js";
import { checkIpam, releasable, renderIpamCheck } from "../ipam-check.js";
import { ipamUsage, ipamUsageJson, renderIpamUsage } from "../ipam-usage.js";
import { openKube, readState } from "./read-state.js";
import type { Session } from "./session.js";

export function addIpamCommand(program: Command, session: Session): void {
  const ipam = program
    .command("ipam")
    .description("Show how the IP pools' addresses are used, check IPAM, release a leaked address");
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
  ipam
    .command("check")
    .description("Check IPAM's allocations against the workload endpoints and floating-IP claims")
    .addOption(
      new Option("-o, --output <format>", "output format (default: a report)").choices(["json"]),
    )
    .addHelpText("after", CHECK_HELP)
    .action(async (options: { output?: "json" }, command: Command) => {
      const report = checkIpam(await readState(session, command));
      session.write(
        options.output === "json"
          ? JSON.stringify(report, null, 2) + "\n"
          : renderIpamCheck(report),
      );
      if (report.problems.length > 0) throw new ExitStatus(1);
    });
  ipam
    .command("release <ip>")
    .description("Release an allocated address that no workload endpoint holds (leaked)")
    .option(
      "--grace <seconds>",
      "check again after this long before releasing (an ADD in flight looks leaked for a moment)",
      "10",
    )
    .addHelpText("after", RELEASE_HELP)
    .option("--force", "also when a pod of the owner's name exists (a recreated pod's old address)")
    .action(async (ip: string, options: { grace: string; force?: boolean }, command: Command) => {
      const grace = Number(options.grace);
      if (!Number.isFinite(grace) || grace < 0) {
        throw new UsageError(`--grace is a number of seconds, got '${options.grace}'`);
      }
      const force = options.force === true;
      const first = releasable(await readState(session, command), ip, { force });
      if (grace > 0) {
        session.request.stderr.write(
          `${first.ip} has no workload endpoint; checking again in ${grace} s\n`,
        );
        await new Promise((resolve) => setTimeout(resolve, grace * 1000));
      }
      const state = await readState(session, command);
      const again = releasable(state, ip, { force });
      if (again.owner.handle !== first.owner.handle) {
        throw new CliError(`${again.ip} changed hands while it was checked; run ipam check again`);
      }
      const { owner } = again;
      const addresses = state.blocks.flatMap(({ value: block }) =>
        Object.entries(block.allocations).flatMap(([address, other]) =>
          other.handle === owner.handle && other.node === owner.node ? [address] : [],
        ),
      );
      // Only the handle's addresses, each block on the revision read: no
      // endpoint or claim is touched (the container has none left).
      const released = {
        addresses: await releaseHandle(
          await openDatastore(session, command),
          owner.handle,
          owner.node,
          addresses,
        ),
      };
      const pod = owner.pod ? ` of ${owner.namespace ?? "default"}/${owner.pod}` : "";
      if (released.addresses.length === 0) {
        throw new CliError(
          `released nothing: block ${again.block.cidr} is not among node ${owner.node}'s blocks`,
        );
      }
      session.write(
        `released ${released.addresses.join(", ")} (handle ${owner.handle}${pod}, node ${owner.node})\n`,
      );
    });
}

/** The plugin's own datastore port, for the release DEL would make. */
async function openDatastore(session: Session, command: Command): Promise<Datastore> {
  const config = session.datastoreConfig(command);
  if (config.type === "etcdv3") return new EtcdDatastore(session.openStore(command));
  const [{ http }, { KubernetesDatastore }] = await Promise.all([
    openKube(session, config.kubeconfig),
    import("../../kube/kube-datastore.js"),
  ]);
  return new KubernetesDatastore(http, "buoy-cli");
}

const CHECK_HELP = `
Problems:
  leaked                 an address allocated to a container that has no
                         workload endpoint holding it (a container gone
                         without its DEL; an ADD in flight looks the same for
                         a moment): 'buoy ipam release IP' frees it
  no-endpoint            the same, but its container still has an endpoint on
                         another network or interface, or its pod exists
                         (Kubernetes): set up by another plugin (Calico's pods
                         after 'buoy import calico') or mid-ADD; its DEL
                         releases it
  unallocated            a workload endpoint's address that IPAM does not hold
                         for it: IPAM can hand it out a second time
  orphan-claim           a floating-IP claim of a container with no workload
                         endpoint (the claim collector releases it after its
                         grace)
  claimed-and-allocated  a floating IP that is also allocated to a pod

Exits 1 when it finds a problem, 0 otherwise. Works on both datastores.

Examples:
  buoy ipam check
  kubectl buoy ipam check -o json`;

const RELEASE_HELP = `
The address must be allocated to a pod's container that has no workload
endpoint left on its node (on any network or interface), and (on
kubernetes) not to a pod that still exists, deleting or not (--force: a
recreated pod of that name, whose old sandbox's address it is); an address
given to something other than a pod (Calico's tunnel addresses) is never
released. It is checked twice, --grace apart, and released with every
other address of the same handle, each block on the revision read; no
endpoint or claim is touched. Works on both datastores.

Examples:
  buoy ipam check
  buoy ipam release 10.244.0.9`;
