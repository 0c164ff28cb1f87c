// CNI 1.1's STATUS (is the datastore reachable) and GC (release every
// container of this node and network the runtime no longer lists), each
// passed on to a delegated IPAM plugin.
import type { CniContext } from "./context.js";
import { CniCode, CniError } from "./errors.js";
import { handleFor } from "./ipam-plugin.js";
import { ownIpam } from "./run-ipam.js";

/** `delegate`: false when buoy runs as the IPAM plugin itself (no one to pass it to). */
export async function status(context: CniContext, delegate = true): Promise<void> {
  try {
    await context.store.ping();
  } catch (error) {
    throw new CniError(
      CniCode.notAvailable,
      `datastore is unreachable: ${(error as Error).message}`,
    );
  }
  // A delegated IPAM plugin is asked too (CNI 1.1): its error is the answer.
  if (delegate) await delegateToIpam("STATUS", context);
}

/**
 * Runs `command` (STATUS, GC) on a delegated IPAM plugin with the runtime's
 * environment and config, as the CNI spec asks of a plugin that delegates
 * IPAM; nothing for buoy's own IPAM, which runs in-process.
 */
async function delegateToIpam(command: "STATUS" | "GC", context: CniContext): Promise<void> {
  const { conf } = context;
  if (!conf.ipam.type || ownIpam(conf)) return;
  await context.deps.execPlugin(
    conf.ipam.type,
    { ...context.rawEnv, CNI_COMMAND: command },
    context.stdin,
  );
}

export async function gc(context: CniContext, delegate = true): Promise<void> {
  const { conf, store, node, logger } = context;
  if (conf.validAttachments === undefined) {
    // Read as "nothing is valid", it would release every pod on the node.
    throw new CniError(
      CniCode.invalidConfig,
      "invalid network config: GC needs cni.dev/valid-attachments",
    );
  }
  const valid = new Set(conf.validAttachments.map((attachment) => attachment.containerID));
  // Stale containers, with their pod where a record names it (Kubernetes:
  // the pod's annotations are cleared with the rest).
  const stale = new Map<string, { namespace?: string; pod?: string }>();
  const add = (containerID: string, namespace?: string, pod?: string) => {
    if (valid.has(containerID) || stale.get(containerID)?.pod) return;
    stale.set(containerID, {
      ...(namespace !== undefined ? { namespace } : {}),
      ...(pod !== undefined ? { pod } : {}),
    });
  };
  if (ownIpam(conf)) {
    for (const { value: block } of await store.listNodeBlocks(node)) {
      for (const owner of Object.values(block.allocations)) {
        if (owner.node !== node || owner.network !== conf.name || !owner.containerID) continue;
        add(owner.containerID, owner.namespace, owner.pod);
      }
    }
  }
  for (const attached of await store.listAttachedContainers(node, conf.name)) {
    add(attached.containerID, attached.namespace, attached.pod);
  }
  for (const [containerID, pod] of stale) {
    await store.release({
      node,
      containerID,
      ...pod,
      ...(ownIpam(conf) ? { handle: handleFor(conf, containerID) } : {}),
    });
  }
  logger.log("info", "cni.gc", { released: [...stale.keys()] });
  // The delegated IPAM plugin frees what it gave the stale attachments (they
  // are in the same cni.dev/valid-attachments it reads).
  if (delegate) await delegateToIpam("GC", context);
}
