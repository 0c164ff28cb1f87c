// The metric names the repo's dashboard and alert rules (monitoring/) use,
// and whether a /metrics text serves each, so a test can hold them to what
// buoy really exports.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { ROOT } from "./harness.js";

const NAME = /\b((?:buoy|process|nodejs)_[a-z0-9_]+)\b/g;

/** Every buoy_, process_ and nodejs_ name in the dashboard's and the rules' expressions. */
export function monitoredMetricNames(): string[] {
  const dashboard = JSON.parse(
    readFileSync(join(ROOT, "monitoring/buoy-dashboard.json"), "utf8"),
  ) as { panels: { targets: { expr: string }[] }[] };
  const rules = parse(readFileSync(join(ROOT, "monitoring/buoy-alerts.yaml"), "utf8")) as {
    spec: { groups: { rules: { expr: string }[] }[] };
  };
  const exprs = [
    ...dashboard.panels.flatMap((panel) => panel.targets.map((target) => target.expr)),
    ...rules.spec.groups.flatMap((group) => group.rules.map((rule) => rule.expr)),
  ];
  return [
    ...new Set(exprs.flatMap((expr) => [...expr.matchAll(NAME)].map((m) => m[1] ?? ""))),
  ].sort();
}

/** Whether `text` (Prometheus exposition) declares `name`, a histogram's series included. */
export function serves(text: string, name: string): boolean {
  const histogram = name.replace(/_(bucket|sum|count)$/, "");
  return (
    text.includes(`\n# TYPE ${name} `) ||
    text.startsWith(`# TYPE ${name} `) ||
    text.includes(`# TYPE ${histogram} histogram`)
  );
}
