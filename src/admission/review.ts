// The admission webhook's decisions (AdmissionReview admission.k8s.io/v1),
// from the request and what the shell read for it. IPPool create/update: the
// pool's fields as `buoy apply` checks them, then validatePoolChange(). Pod
// create/update: the floatingIPs annotation with ADD's checks and words
// (parse, bound, in a pool, a pool the namespace may use); holders are not
// checked here: a conflict is transient and ADD's to refuse. Pure.
import { parseFloatingIpSpec } from "../failover/floating-ip.js";
import { poolToAllocateFrom } from "../failover/pool-address.js";
import {
  FLOATING_IPS_ANNOTATION,
  FloatingIpError,
  parseFloatingIps,
} from "../floating/annotation.js";
import {
  poolNamespacesMatter,
  validateFloatingIpCount,
  validateInPools,
  validatePoolNamespaces,
} from "../floating/validate.js";
import { PoolError, storedPool, validatePool, type PoolSpec } from "../ipam/pool.js";
import { poolAllocations, validatePoolChange } from "../ipam/pool-change.js";
import type { IpPool, IpamBlock } from "../model/records.js";
import type { Labels } from "../model/selector.js";

/** The parts of an AdmissionRequest buoy reads. */
export interface AdmissionRequest {
  uid: string;
  kind?: { group?: string; version?: string; kind?: string };
  operation?: string;
  namespace?: string;
  name?: string;
  object?: unknown;
  oldObject?: unknown;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; reason: string; message: string };
}

export class AdmissionReviewError extends Error {
  override readonly name = "AdmissionReviewError";
}

/** Reads the AdmissionReview body; throws AdmissionReviewError for anything else. */
export function parseAdmissionReview(body: unknown): AdmissionRequest {
  if (
    !isRecord(body) ||
    body.apiVersion !== "admission.k8s.io/v1" ||
    body.kind !== "AdmissionReview"
  ) {
    throw new AdmissionReviewError("expected an AdmissionReview of admission.k8s.io/v1");
  }
  const request = body.request;
  if (!isRecord(request) || typeof request.uid !== "string") {
    throw new AdmissionReviewError("the AdmissionReview has no request with a uid");
  }
  return request as unknown as AdmissionRequest;
}

/** The AdmissionReview that answers `response`. */
export function renderAdmissionReview(response: AdmissionResponse): Record<string, unknown> {
  return { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response };
}

export function allow(request: AdmissionRequest): AdmissionResponse {
  return { uid: request.uid, allowed: true };
}

export function deny(request: AdmissionRequest, message: string): AdmissionResponse {
  return { uid: request.uid, allowed: false, status: { code: 403, reason: "Forbidden", message } };
}

// ---- IPPool ----------------------------------------------------------------------

/** What reviewing a pool reads: every stored pool and every block. */
export interface PoolContext {
  pools: readonly IpPool[];
  blocks: readonly IpamBlock[];
}

/** The pool object's name and spec, as the request carries it. */
function poolParts(object: unknown): { name: string; spec: PoolSpec } | undefined {
  if (!isRecord(object) || !isRecord(object.metadata)) return undefined;
  const name = object.metadata.name;
  if (typeof name !== "string") return undefined;
  return { name, spec: isRecord(object.spec) ? (object.spec as PoolSpec) : {} };
}

export function reviewPool(request: AdmissionRequest, context: PoolContext): AdmissionResponse {
  if (request.operation !== "CREATE" && request.operation !== "UPDATE") return allow(request);
  const parts = poolParts(request.object);
  if (!parts) return deny(request, "the IPPool has no metadata.name");
  let next: IpPool;
  try {
    next = validatePool(parts.name, parts.spec);
  } catch (error) {
    if (error instanceof PoolError) return deny(request, error.message);
    throw error;
  }
  const previous = request.operation === "UPDATE" ? previousPool(request.oldObject) : undefined;
  const allocations = previous
    ? poolAllocations(previous, context.blocks)
    : { blocks: 0, addresses: 0 };
  const refusal = validatePoolChange(next, context.pools, previous, allocations);
  return refusal === undefined ? allow(request) : deny(request, refusal);
}

/** The stored pool an update replaces, read as IPAM reads it (undefined if IPAM could not). */
function previousPool(object: unknown): IpPool | undefined {
  const parts = poolParts(object);
  if (!parts) return undefined;
  try {
    return storedPool(parts.name, parts.spec);
  } catch {
    return undefined;
  }
}

// ---- Pod -------------------------------------------------------------------------

/**
 * The floatingIPs annotation the review must check, or undefined when there
 * is nothing to check (no annotation; an update that leaves it as it was):
 * such a pod is admitted without reading anything.
 */
export function floatingIpsToReview(request: AdmissionRequest): string | undefined {
  if (request.operation !== "CREATE" && request.operation !== "UPDATE") return undefined;
  const value = annotationOf(request.object);
  if (value === undefined) return undefined;
  if (request.operation === "UPDATE" && annotationOf(request.oldObject) === value) return undefined;
  return value;
}

/** What reviewing a pod's floating IPs reads. `labels` only when namespaceLabelsNeeded() says so. */
export interface PodContext {
  maxFloatingIps: number;
  pools: readonly IpPool[];
  labels?: Labels;
}

/** The floating IPs, parsed and bounded; or the refusal. The shell reads pools after this. */
export function parsePodFloatingIps(
  value: string,
  maxFloatingIps: number,
): { ips: string[] } | { refusal: string } {
  try {
    const ips = parseFloatingIps(value);
    validateFloatingIpCount(ips, maxFloatingIps);
    return { ips };
  } catch (error) {
    if (error instanceof FloatingIpError) return { refusal: error.message };
    throw error;
  }
}

/** Whether the namespace's labels decide the review of these floating IPs. */
export function namespaceLabelsNeeded(ips: readonly string[], pools: readonly IpPool[]): boolean {
  return poolNamespacesMatter(ips, pools);
}

export function reviewPod(
  request: AdmissionRequest,
  ips: readonly string[],
  context: PodContext,
): AdmissionResponse {
  try {
    validateInPools(ips, context.pools);
    validatePoolNamespaces(
      ips,
      context.pools,
      request.namespace ?? "default",
      context.labels ?? {},
    );
    return allow(request);
  } catch (error) {
    if (error instanceof FloatingIpError) return deny(request, error.message);
    throw error;
  }
}

/**
 * A FloatingIP's spec as the controller reads it, or the refusal (issue 15):
 * the controller would only report the same as a condition, so `kubectl
 * apply` says it at once. Who holds the address is the controller's to find.
 */
export function parseFloatingIpToReview(
  request: AdmissionRequest,
): { address: string } | { pool: string } | { refusal: string } | undefined {
  if (request.operation !== "CREATE" && request.operation !== "UPDATE") return undefined;
  const spec = isRecord(request.object) ? request.object.spec : undefined;
  const parsed = parseFloatingIpSpec(spec);
  if ("problem" in parsed) return { refusal: parsed.problem };
  return parsed.pool !== undefined ? { pool: parsed.pool } : { address: parsed.address ?? "" };
}

/** A FloatingIP's spec.pool: a pool its namespace may use (which address is the controller's). */
export function reviewFloatingIpPool(
  request: AdmissionRequest,
  pool: string,
  pools: readonly IpPool[],
  labels: Labels | undefined,
): AdmissionResponse {
  try {
    poolToAllocateFrom(pool, pools, request.namespace ?? "default", labels ?? {});
    return allow(request);
  } catch (error) {
    if (error instanceof FloatingIpError) return deny(request, error.message);
    throw error;
  }
}

function annotationOf(object: unknown): string | undefined {
  if (!isRecord(object) || !isRecord(object.metadata)) return undefined;
  const annotations = object.metadata.annotations;
  if (!isRecord(annotations)) return undefined;
  const value = annotations[FLOATING_IPS_ANNOTATION];
  return typeof value === "string" ? value : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
