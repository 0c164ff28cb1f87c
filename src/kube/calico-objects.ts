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
import { formatAddress, parsePrefix, prefixContains } from "../net/address.js";

export const CALICO_CRD_GROUP = "crd.projectcalico.org/v1";

export interface CalicoObject {
  metadata: { name: string };
  spec?: Record<string, unknown>;
}

export class CalicoImportError extends Error {
  override readonly name = "CalicoImportError";
}

/**
 * The pool as buoy keeps it, or undefined for one that gives pods no
 * addresses (allowedUses without Workload). Imported disabled, keeping its
 * allocations and giving out no new address, unless named in `enable`:
 * Calico's IPPools are writable by every calico-node, so an import must not
 * turn on a pool an operator did not name. A nodeSelector other than all()
 * (buoy assigns from every pool on every node) or assignmentMode Manual
 * keeps it disabled whatever `enable` says. `notes` says why.
 */
export function calicoPool(
  object: CalicoObject,
  enable: ReadonlySet<string> = new Set(),
): { pool: IpPool | undefined; notes: string[] } {
  const spec = object.spec ?? {};
  const name = object.metadata.name;
  const notes: string[] = [];
  const uses = Array.isArray(spec.allowedUses) ? (spec.allowedUses as unknown[]) : undefined;
  if (uses !== undefined && !uses.includes("Workload")) {
    notes.push(
      `IP pool ${name}: allowedUses ${JSON.stringify(uses)} has no Workload: not imported`,
    );
    return { pool: undefined, notes };
  }
  const nodeSelector = typeof spec.nodeSelector === "string" ? spec.nodeSelector.trim() : "";
  const selects = nodeSelector === "" || nodeSelector === "all()";
  if (!selects) {
    notes.push(
      `IP pool ${name}: nodeSelector ${JSON.stringify(nodeSelector)} is imported as disabled (buoy assigns from every pool on every node)`,
    );
  }
  const manual = spec.assignmentMode === "Manual";
  if (manual) notes.push(`IP pool ${name}: assignmentMode Manual is imported as disabled`);
  const wanted = selects && !manual && spec.disabled !== true;
  if (wanted && !enable.has(name)) {
    notes.push(
      `IP pool ${name}: imported disabled (--enable ${name} gives pods addresses from it)`,
    );
  }
  const enabled = wanted && enable.has(name);
  const ipip = spec.ipipMode;
  if (typeof ipip === "string" && ipip !== "" && ipip !== "Never") {
    notes.push(`IP pool ${name}: ipipMode ${ipip} is not imported (buoy routes without it)`);
  }
  const fields: Record<string, unknown> = {
    cidr: spec.cidr,
    ...(spec.blockSize !== undefined ? { blockSize: spec.blockSize } : {}),
    disabled: !enabled,
    nodeSelector: "all()",
    natOutgoing: spec.natOutgoing === true,
    disableBGPExport: spec.disableBGPExport === true,
    // Calico's vxlanMode, as buoy agent --routing vxlan reads it.
    ...(spec.vxlanMode !== undefined ? { vxlanMode: spec.vxlanMode } : {}),
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
    if (handle.length > 300) {
      throw new CalicoImportError(`${where}: allocation ${index}'s handle is over 300 characters`);
    }
    const secondary = attribute?.secondary ?? {};
    // Kubernetes names: a longer one is no pod's or node's.
    const text = (value: unknown) =>
      typeof value === "string" && value !== "" && value.length <= 253 ? value : undefined;
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

/** What an imported block is checked against: buoy's records as they are. */
export interface BlockContext {
  /** The pools once the import's are made (kept and created). */
  pools: readonly IpPool[];
  /** buoy's blocks now. */
  blocks: readonly IpamBlock[];
  /** Floating IPs buoy has claims for. */
  claimed: ReadonlySet<string>;
  /** The cluster's node names. */
  nodes: ReadonlySet<string>;
  /** The pods the API server has (namespace/name): a gone pod's allocation is not taken. */
  livePods: ReadonlySet<string>;
}

/**
 * The block without the allocations of pods the API server no longer has:
 * Calico's record of an address a pod gave up through buoy's DEL (after the
 * first import), or one Calico itself leaked; taking it again would leak it.
 */
export function liveAllocations(block: IpamBlock, livePods: ReadonlySet<string>): IpamBlock {
  return {
    ...block,
    allocations: Object.fromEntries(
      Object.entries(block.allocations).filter(
        ([, owner]) =>
          owner.pod === undefined || livePods.has(`${owner.namespace ?? "default"}/${owner.pod}`),
      ),
    ),
  };
}

/**
 * Why the block is not imported (undefined: it is): inside a pool at that
 * pool's blockSize, affine to a node the cluster has, every allocation on a
 * known node, overlapping no buoy block of another CIDR, and no address a
 * floating IP buoy has a claim for. Calico's blocks are writable by every
 * calico-node: a block outside the pools would be routed to its node.
 */
export function blockRefusal(block: IpamBlock, context: BlockContext): string | undefined {
  const where = `block ${block.cidr}`;
  const prefix = parsePrefix(block.cidr);
  if (!prefix) return `${where}: not a CIDR`;
  const base = { family: prefix.family, value: prefix.base };
  const pool = context.pools.find((candidate) => {
    const around = parsePrefix(candidate.cidr);
    return around !== undefined && around.length <= prefix.length && prefixContains(around, base);
  });
  if (!pool) return `${where}: in no IP pool; not imported`;
  if (pool.blockSize !== prefix.length) {
    return `${where}: IP pool ${pool.name}'s blocks are /${pool.blockSize}; not imported`;
  }
  if (!context.nodes.has(block.affinity)) {
    return `${where}: affine to ${JSON.stringify(block.affinity)}, no node of the cluster; not imported`;
  }
  for (const [ip, owner] of Object.entries(block.allocations)) {
    if (!context.nodes.has(owner.node)) {
      return `${where}: ${ip} is on ${JSON.stringify(owner.node)}, no node of the cluster; not imported`;
    }
    if (context.claimed.has(ip)) {
      return `${where}: ${ip} is a floating IP buoy has a claim for; not imported`;
    }
  }
  const overlap = context.blocks.find((other) => {
    const inner = parsePrefix(other.cidr);
    if (!inner || other.cidr === block.cidr || inner.family !== prefix.family) return false;
    return inner.length <= prefix.length
      ? prefixContains(inner, base)
      : prefixContains(prefix, { family: inner.family, value: inner.base });
  });
  if (overlap) return `${where}: overlaps buoy's block ${overlap.cidr}; not imported`;
  return undefined;
}
