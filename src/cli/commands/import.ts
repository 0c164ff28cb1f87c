// `buoy import calico`: Calico's IP pools and IPAM allocations recorded as
// buoy's, for a cluster moving from Calico (kube/import-calico.ts).
import type { Command } from "commander";
import { ExitStatus, UsageError } from "../cli-error.js";
import { openKube } from "./read-state.js";
import type { Session } from "./session.js";

export function addImportCommand(program: Command, session: Session): void {
  const command = program
    .command("import")
    .description("Take over another system's records (calico: IP pools and IPAM allocations)");
  command
    .command("calico")
    .description("Record Calico's IP pools and live IPAM allocations as buoy's")
    .option("--dry-run", "read and check only: say what would be recorded")
    .option(
      "--enable <pool>",
      "give pods addresses from this imported pool (repeat for each; the others come in disabled)",
      (name: string, names: string[]) => [...names, name],
      [] as string[],
    )
    .addHelpText(
      "after",
      `
Reads Calico's IPPools and IPAMBlocks (crd.projectcalico.org/v1) from the
API server and records them as buoy's. Each pool buoy lacks is created,
disabled unless named with --enable (every calico-node may write Calico's
pools: an import turns on only what you name); one with a nodeSelector
other than all() or assignmentMode Manual stays disabled, one whose
allowedUses has no Workload is not imported; vxlanMode is kept (buoy
agent --routing vxlan reads it), ipipMode is not taken. Each block's allocations go into buoy's block of the same CIDR
with their handles, so no running pod's address is handed out again and
each pod's DEL through buoy releases it; a block is refused unless it
lies in a pool at the pool's blockSize, is affine to a node of the
cluster, overlaps no other buoy block and holds no address buoy has a
floating-IP claim for. Run it before buoy's plugin takes over, and
again after, until no Calico pod is left: it adds only what is new. Exits
1 when something could not be imported (an address Calico and buoy gave to
two pods, a block overlapping one of buoy's). Kubernetes datastore only.
docs/install.md, "Moving from Calico".

Examples:
  buoy import calico --dry-run
  kubectl buoy import calico --enable default-ipv4-ippool`,
    )
    .action(async (options: { dryRun?: boolean; enable: string[] }, sub: Command) => {
      const datastore = session.datastoreConfig(sub);
      if (datastore.type !== "kubernetes") {
        throw new UsageError(
          "import calico reads Calico's objects from the Kubernetes API: use the kubernetes datastore (KUBECONFIG)",
        );
      }
      const [{ http, leaseNamespace }, { importCalico }] = await Promise.all([
        openKube(session, datastore.kubeconfig),
        import("../../kube/import-calico.js"),
      ]);
      const dryRun = options.dryRun === true;
      const report = await importCalico(http, leaseNamespace, {
        dryRun,
        enable: new Set(options.enable),
        progress: (text) => session.request.stderr.write(`${text}\n`),
      });
      const would = dryRun ? "would be " : "";
      const lines = [
        `IP pools ${would}created: ${report.poolsCreated.join(", ") || "none"}`,
        `IP pools kept (buoy has them): ${report.poolsKept.join(", ") || "none"}`,
        `IPAM blocks ${would}created: ${report.blocksCreated}, ${would}merged: ${report.blocksMerged}`,
        `allocations ${would}recorded: ${report.allocations}`,
        ...report.notes.map((note) => `note: ${note}`),
        ...report.problems.map((problem) => `not imported: ${problem}`),
      ];
      session.write(lines.join("\n") + "\n");
      if (report.problems.length > 0) throw new ExitStatus(1);
    });
}
