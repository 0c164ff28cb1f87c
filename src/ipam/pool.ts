// IP pool validation and block geometry.
import { familyBits, formatPrefix, parsePrefix, prefixSize, type Prefix } from "../net/address.js";
import { VXLAN_MODES, type IpPool, type VxlanMode } from "../model/records.js";
import { REGION_LENGTH } from "./region.js";
import {
  parseSelector,
  selects,
  SelectorError,
  type Labels,
  type Selector,
} from "../model/selector.js";

export class PoolError extends Error {
  override readonly name = "PoolError";
}

export interface PoolSpec {
  cidr?: unknown;
  blockSize?: unknown;
  disabled?: unknown;
  nodeSelector?: unknown;
  namespaceSelector?: unknown;
  natOutgoing?: unknown;
  disableBGPExport?: unknown;
  vxlanMode?: unknown;
}

export const DEFAULT_BLOCK_SIZE = { 4: 26, 6: 122 } as const;

/** Validates a pool spec (Calico's field names) and fills Calico's defaults. */
export function validatePool(name: string, spec: PoolSpec): IpPool {
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name)) {
    throw new PoolError(`IP pool name '${name}' must be lower-case letters, digits, '-' and '.'`);
  }
  if (typeof spec.cidr !== "string") throw new PoolError(`IP pool ${name}: spec.cidr is required`);
  const prefix = parsePrefix(spec.cidr, true);
  if (!prefix) throw new PoolError(`IP pool ${name}: '${spec.cidr}' is not a CIDR`);
  const blockSize = spec.blockSize ?? DEFAULT_BLOCK_SIZE[prefix.family];
  // Calico's bounds (20..32, 116..128), and never larger than the pool: a
  // block lies inside one region (region.ts), which finds it by containment.
  const smallest = Math.max(prefix.length, REGION_LENGTH[prefix.family]);
  if (
    typeof blockSize !== "number" ||
    !Number.isInteger(blockSize) ||
    blockSize < smallest ||
    blockSize > familyBits(prefix.family)
  ) {
    throw new PoolError(
      `IP pool ${name}: blockSize must be an integer between ${smallest} and ${familyBits(prefix.family)}`,
    );
  }
  const nodeSelector = typeof spec.nodeSelector === "string" ? spec.nodeSelector.trim() : "all()";
  if (parseValidSelector(name, "nodeSelector", nodeSelector).op !== "all") {
    // Stored but ignored, it would silently give pods addresses meant for other nodes.
    throw new PoolError(
      `IP pool ${name}: nodeSelector '${nodeSelector}' is not supported yet; buoy assigns from every pool on every node (use all())`,
    );
  }
  const namespaceSelector = optionalSelector(name, spec.namespaceSelector);
  if (namespaceSelector !== undefined)
    parseValidSelector(name, "namespaceSelector", namespaceSelector);
  return {
    name,
    cidr: formatPrefix({ ...prefix, base: prefix.base }),
    blockSize,
    disabled: boolean(name, "disabled", spec.disabled),
    nodeSelector: "all()",
    ...(namespaceSelector !== undefined ? { namespaceSelector } : {}),
    natOutgoing: boolean(name, "natOutgoing", spec.natOutgoing),
    disableBGPExport: boolean(name, "disableBGPExport", spec.disableBGPExport),
    ...vxlanModeOf(name, spec.vxlanMode),
  };
}

/** Calico's vxlanMode, when given; absent (or empty) follows the agent's `--routing`. */
function vxlanModeOf(pool: string, value: unknown): { vxlanMode?: VxlanMode } {
  if (value === undefined || value === null || value === "") return {};
  if (!VXLAN_MODES.includes(value as VxlanMode)) {
    throw new PoolError(`IP pool ${pool}: vxlanMode must be one of ${VXLAN_MODES.join(", ")}`);
  }
  return { vxlanMode: value as VxlanMode };
}

/**
 * A pool as the datastore holds it (a Kubernetes object, which no webhook
 * checks yet): as validatePool() reads it, except that a namespaceSelector
 * that does not parse is kept rather than the pool dropped. Such a pool
 * selects no namespace (see namespaceSelectorProblem()).
 */
export function storedPool(name: string, spec: PoolSpec): IpPool {
  const { namespaceSelector, ...rest } = spec;
  const pool = validatePool(name, rest);
  const selector = optionalSelector(name, namespaceSelector);
  return selector === undefined ? pool : { ...pool, namespaceSelector: selector };
}

/** The selector text, trimmed; undefined when absent or empty (Calico: all()). */
function optionalSelector(pool: string, value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string")
    throw new PoolError(`IP pool ${pool}: spec.namespaceSelector must be a string`);
  return value.trim() === "" ? undefined : value.trim();
}

function parseValidSelector(pool: string, field: string, text: string): Selector {
  try {
    return parseSelector(text);
  } catch (error) {
    if (!(error instanceof SelectorError)) throw error;
    throw new PoolError(
      `IP pool ${pool}: ${field} '${text}' is not a valid selector: ${error.message}`,
    );
  }
}

const parsedSelectors = new Map<string, Selector | SelectorError>();

function namespaceSelectorOf(pool: IpPool): Selector | SelectorError {
  const text = pool.namespaceSelector ?? "all()";
  let parsed = parsedSelectors.get(text);
  if (parsed === undefined) {
    try {
      parsed = parseSelector(text);
    } catch (error) {
      if (!(error instanceof SelectorError)) throw error;
      parsed = error;
    }
    if (parsedSelectors.size > 1000) parsedSelectors.clear();
    parsedSelectors.set(text, parsed);
  }
  return parsed;
}

/**
 * Whether pods of a namespace with these labels may use the pool (pod
 * addresses and floating IPs). A pool without namespaceSelector selects every
 * namespace; one whose selector does not parse selects none (fail closed).
 */
export function poolSelectsNamespace(pool: IpPool, labels: Labels): boolean {
  const selector = namespaceSelectorOf(pool);
  return !(selector instanceof SelectorError) && selects(selector, labels);
}

/** Whether the answer of poolSelectsNamespace() depends on the namespace's labels. */
export function poolRestrictsNamespaces(pool: IpPool): boolean {
  const selector = namespaceSelectorOf(pool);
  return selector instanceof SelectorError || selector.op !== "all";
}

/** Why the pool's namespaceSelector selects no namespace at all, when it does not parse. */
export function namespaceSelectorProblem(pool: IpPool): string | undefined {
  const selector = namespaceSelectorOf(pool);
  if (!(selector instanceof SelectorError)) return undefined;
  return `IP pool ${pool.name}: namespaceSelector '${pool.namespaceSelector}' is not a valid selector: ${selector.message}; no namespace may use the pool`;
}

function boolean(pool: string, field: string, value: unknown): boolean {
  if (value === undefined) return false;
  if (typeof value !== "boolean")
    throw new PoolError(`IP pool ${pool}: spec.${field} must be a boolean`);
  return value;
}

export function poolPrefix(pool: IpPool): Prefix {
  const prefix = parsePrefix(pool.cidr);
  if (!prefix) throw new PoolError(`IP pool ${pool.name} has an invalid cidr '${pool.cidr}'`);
  return prefix;
}

/** The pool's blocks in address order, lazily (an IPv6 pool has very many). */
export function* blockPrefixes(pool: IpPool): Generator<Prefix> {
  const prefix = poolPrefix(pool);
  const step = 1n << BigInt(familyBits(prefix.family) - pool.blockSize);
  const end = prefix.base + prefixSize(prefix);
  for (let base = prefix.base; base < end; base += step) {
    yield { family: prefix.family, base, length: pool.blockSize };
  }
}

/** Whether a pool name or CIDR list selects this pool (empty list selects all). */
export function poolSelected(pool: IpPool, selectors: readonly string[]): boolean {
  if (selectors.length === 0) return true;
  return selectors.some((selector) => selector === pool.name || sameCidr(selector, pool.cidr));
}

function sameCidr(a: string, b: string): boolean {
  const left = parsePrefix(a);
  const right = parsePrefix(b);
  return (
    !!left &&
    !!right &&
    left.base === right.base &&
    left.length === right.length &&
    left.family === right.family
  );
}
