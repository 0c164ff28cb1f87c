// Kubernetes' LabelSelector (matchLabels, matchExpressions with In, NotIn,
// Exists, DoesNotExist), as a FloatingIP's podSelector has it. Pure.
// `{}` selects every pod, as in a NetworkPolicy; the API server has checked
// the shape against the CRD schema, this checks what a schema cannot say.
import type { Labels } from "../model/selector.js";

import type { LabelSelector } from "../model/floating-ip-resource.js";
export type { LabelSelector, LabelSelectorRequirement } from "../model/floating-ip-resource.js";

const OPERATORS = new Set(["In", "NotIn", "Exists", "DoesNotExist"]);

/** What is wrong with `selector`, or undefined when it can be matched. */
export function labelSelectorProblem(selector: unknown): string | undefined {
  if (typeof selector !== "object" || selector === null || Array.isArray(selector)) {
    return "podSelector must be an object";
  }
  const { matchLabels, matchExpressions } = selector as Record<string, unknown>;
  if (matchLabels !== undefined) {
    if (typeof matchLabels !== "object" || matchLabels === null || Array.isArray(matchLabels))
      return "podSelector.matchLabels must be an object of strings";
    for (const value of Object.values(matchLabels)) {
      if (typeof value !== "string") return "podSelector.matchLabels must be an object of strings";
    }
  }
  if (matchExpressions === undefined) return undefined;
  if (!Array.isArray(matchExpressions)) return "podSelector.matchExpressions must be a list";
  for (const [index, item] of matchExpressions.entries()) {
    const where = `podSelector.matchExpressions[${index}]`;
    const { key, operator, values } = (item ?? {}) as Record<string, unknown>;
    if (typeof key !== "string" || key === "") return `${where}.key must be a label key`;
    if (typeof operator !== "string" || !OPERATORS.has(operator))
      return `${where}.operator must be In, NotIn, Exists or DoesNotExist`;
    const list = values ?? [];
    if (!Array.isArray(list) || list.some((value) => typeof value !== "string"))
      return `${where}.values must be a list of strings`;
    if ((operator === "In" || operator === "NotIn") && list.length === 0)
      return `${where}: ${operator} needs at least one value`;
    if ((operator === "Exists" || operator === "DoesNotExist") && list.length > 0)
      return `${where}: ${operator} takes no values`;
  }
  return undefined;
}

/** Whether `selector` (one labelSelectorProblem() accepts) selects these labels. */
export function matchesLabels(selector: LabelSelector, labels: Labels): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[key] !== value) return false;
  }
  return (selector.matchExpressions ?? []).every(({ key, operator, values = [] }) => {
    const has = Object.hasOwn(labels, key);
    switch (operator) {
      case "In":
        return has && values.includes(labels[key] as string);
      case "NotIn":
        return !has || !values.includes(labels[key] as string);
      case "Exists":
        return has;
      case "DoesNotExist":
        return !has;
    }
  });
}
