// Calico's IPAM objects (crd.projectcalico.org/v1, the Kubernetes datastore)
// as buoy's records, for `buoy import calico` (issue 16 item 8): an IPPool as
// buoy's pool, and an IPAMBlock's live allocations as buoy's block, so that
// buoy's IPAM never hands out an address a running pod still holds. Calico's
// block keeps `allocations` (one entry per address of the block: the index
// of its attribute, or null when free) and `attributes` (handle_id, and
// secondary: namespace, pod, node); its affinity is `host:<node>`. A handle
// is `<network>.<container ID>`, buoy's own form, so the pod's DEL through
// buoy releases its address. Pure.
import { PoolError, storedPool } from "../ipam/pool.js";
import type { AllocationOwner, IpPool, IpamBlock } from "../model/records.js";
import { formatAddress, parsePrefix } from "../net/address.js";

export const CALICO_CRD_GROUP = "crd.projectcalico.org/v1";

export interface CalicoObject {
  metadata: { name: string };
  spec?: Record<string, unknown>;
}

export class CalicoImportError extends Error {
  override readonly name = "CalicoImportError";
}

/**
 * The pool as buoy keeps it. A nodeSelector other than all() (buoy assigns
 * from every pool on every node) is imported disabled: its allocations are
 * kept and no new pod address comes from it. `notes` says so.
 */
export function calicoPool(object: CalicoObject): { pool: IpPool; notes: string[] } {
  const spec = object.spec ?? {};
  const name = object.metadata.name;
  const notes: string[] = [];
  const nodeSelector = typeof spec.nodeSelector === "string" ? spec.nodeSelector.trim() : "";
  const selects = nodeSelector === "" || nodeSelector === "all()";
  if (!selects) {
    notes.push(
      `IP pool ${name}: nodeSelector '${nodeSelector}' is imported as disabled (buoy assigns from every pool on every node)`,
    );
  }
  for (const field of ["ipipMode", "vxlanMode"]) {
    const mode = spec[field];
    if (typeof mode === "string" && mode !== "" && mode !== "Never") {
      notes.push(`IP pool ${name}: ${field} ${mode} is not imported (buoy routes without it)`);
    }
  }
  const fields: Record<string, unknown> = {
    cidr: spec.cidr,
    ...(spec.blockSize !== undefined ? { blockSize: spec.blockSize } : {}),
    disabled: spec.disabled === true || !selects,
    nodeSelector: "all()",
    natOutgoing: spec.natOutgoing === true,
    disableBGPExport: spec.disableBGPExport === true,
    ...(typeof spec.namespaceSelector === "string"
      ? { namespaceSelector: spec.namespaceSelector }
      : {}),
  };
  try {
    return { pool: storedPool(name, fields), notes };
  } catch (error) {
    if (error instanceof PoolError) throw new CalicoImportError(error.message);
    throw error;
  }
}

interface CalicoAttribute {
  handle_id?: unknown;
  secondary?: { namespace?: unknown; pod?: unknown; node?: unknown } | null;
}

/** The block's allocated addresses with their owners, as buoy's block. */
export function calicoBlock(object: CalicoObject): IpamBlock {
  const spec = object.spec ?? {};
  const where = `Calico IPAM block ${object.metadata.name}`;
  const prefix = typeof spec.cidr === "string" ? parsePrefix(spec.cidr) : undefined;
  if (!prefix) throw new CalicoImportError(`${where}: spec.cidr is not a CIDR`);
  const size = 2n ** BigInt((prefix.family === 4 ? 32 : 128) - prefix.length);
  const affinity =
    typeof spec.affinity === "string" && spec.affinity.startsWith("host:")
      ? spec.affinity.slice(5)
      : "";
  const slots = Array.isArray(spec.allocations) ? (spec.allocations as unknown[]) : [];
  const attributes = Array.isArray(spec.attributes) ? (spec.attributes as CalicoAttribute[]) : [];
  if (BigInt(slots.length) > size) {
    throw new CalicoImportError(`${where}: ${slots.length} allocations for ${size} addresses`);
  }
  const allocations: Record<string, AllocationOwner> = {};
  slots.forEach((slot, index) => {
    if (slot === null || slot === undefined) return;
    if (typeof slot !== "number" || !Number.isInteger(slot)) {
      throw new CalicoImportError(`${where}: allocation ${index} is not an attribute index`);
    }
    const attribute = attributes[slot];
    const handle = typeof attribute?.handle_id === "string" ? attribute.handle_id : "";
    if (handle === "") {
      throw new CalicoImportError(`${where}: allocation ${index} has no handle`);
    }
    const secondary = attribute?.secondary ?? {};
    const text = (value: unknown) =>
      typeof value === "string" && value !== "" ? value : undefined;
    const node = text(secondary.node) ?? affinity;
    const namespace = text(secondary.namespace);
    const pod = text(secondary.pod);
    const dot = handle.indexOf(".");
    const ip = formatAddress({ family: prefix.family, value: prefix.base + BigInt(index) });
    allocations[ip] = {
      handle,
      node,
      ...(namespace !== undefined ? { namespace } : {}),
      ...(pod !== undefined ? { pod } : {}),
      // A pod's handle (<network>.<container>), not a tunnel address's (ipip-tunnel-addr-<node>).
      ...(pod !== undefined && dot > 0
        ? { network: handle.slice(0, dot), containerID: handle.slice(dot + 1) }
        : {}),
    };
  });
  return {
    cidr: `${formatAddress({ family: prefix.family, value: prefix.base })}/${prefix.length}`,
    affinity,
    allocations,
  };
}

/**
 * Calico's allocations added to buoy's block of the same CIDR (an import run
 * again, or buoy's own allocations meanwhile). An address each holds for a
 * different handle is a conflict: two pods with one address.
 */
export function mergeBlock(
  existing: IpamBlock | undefined,
  imported: IpamBlock,
): { block: IpamBlock; added: number; conflicts: string[] } {
  if (!existing) {
    return { block: imported, added: Object.keys(imported.allocations).length, conflicts: [] };
  }
  const allocations = { ...existing.allocations };
  const conflicts: string[] = [];
  let added = 0;
  for (const [ip, owner] of Object.entries(imported.allocations)) {
    const held = allocations[ip];
    if (!held) {
      allocations[ip] = owner;
      added++;
    } else if (held.handle !== owner.handle) {
      conflicts.push(`${ip}: Calico gave it to ${owner.handle}, buoy to ${held.handle}`);
    }
  }
  return {
    block: { ...existing, affinity: existing.affinity || imported.affinity, allocations },
    added,
    conflicts,
  };
}
