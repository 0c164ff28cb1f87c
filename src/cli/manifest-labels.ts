// Kubernetes' metadata.labels in a manifest: label keys (an optional
// DNS-subdomain prefix and a name) mapped to label values. Pure.
import { CliError } from "./cli-error.js";

const LABEL_KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

/** The labels, checked; `what` names the object in messages, `where` the document. */
export function decodeLabels(labels: unknown, what: string, where: string): Record<string, string> {
  if (labels !== undefined && labels !== null && !isMapping(labels)) {
    throw new CliError(`${where}: ${what}: metadata.labels must be a mapping`);
  }
  const decoded: Record<string, string> = {};
  for (const [key, value] of Object.entries(labels ?? {})) {
    if (!LABEL_KEY.test(key) || key.length > 317) {
      throw new CliError(`${where}: ${what}: '${key}' is not a label key`);
    }
    if (typeof value !== "string" || !LABEL_VALUE.test(value) || value.length > 63) {
      throw new CliError(
        `${where}: ${what}: label ${key} ${describe(value)} is not a label value (a string)`,
      );
    }
    decoded[key] = value;
  }
  return decoded;
}

export function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A value as messages show it: `'text'`, `a list`, `null`, `a mapping`, `number 7`. */
export function describe(value: unknown): string {
  if (typeof value === "string") return `'${value}'`;
  if (Array.isArray(value)) return "a list";
  if (value === null) return "null";
  return typeof value === "object" ? "a mapping" : `${typeof value} ${String(value)}`;
}
