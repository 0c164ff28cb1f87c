// Renders manifests/ from the Helm chart (charts/buoy, the source): `helm
// template` with the chart's defaults, one file per template, and the CRDs
// as the chart has them. `--check` writes nothing and exits 1 naming each
// file that differs from the render (the tests run it: manifests/ never
// drifts from the chart). helm is the pinned devDependency (docs/dependencies.md).
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";

const helm = new URL("../node_modules/.bin/helm", import.meta.url).pathname;
const root = new URL("..", import.meta.url).pathname;
const check = process.argv.includes("--check");

const rendered = execFileSync(
  helm,
  ["template", "buoy", `${root}charts/buoy`, "--namespace", "kube-system"],
  { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] },
);
const files = new Map();
for (const part of rendered.split(/^---\n/m)) {
  const source = /^# Source: buoy\/templates\/(.+)\n/.exec(part);
  if (!source) continue;
  const body = part.slice(source[0].length);
  files.set(source[1], [...(files.get(source[1]) ?? []), body]);
}
const header = (from) =>
  `# Rendered from charts/buoy/${from} by scripts/render-manifests.mjs (npm run\n` +
  `# manifests): edit the chart, not this file.\n`;
const wanted = new Map(
  [...files].map(([name, docs]) => [name, header(`templates/${name}`) + docs.join("---\n")]),
);
wanted.set(
  "crds.yaml",
  header("crds/crds.yaml") + readFileSync(`${root}charts/buoy/crds/crds.yaml`, "utf8"),
);

const stale = [];
for (const [name, text] of wanted) {
  const path = `${root}manifests/${name}`;
  let current;
  try {
    current = readFileSync(path, "utf8");
  } catch {
    current = undefined;
  }
  if (current === text) continue;
  stale.push(`manifests/${name}`);
  if (!check) writeFileSync(path, text);
}
// Files of manifests/ the chart does not render, but the two kept by hand.
const own = new Set(["kustomization.yaml", "uninstall.yaml"]);
for (const name of readdirSync(`${root}manifests`)) {
  if (!wanted.has(name) && !own.has(name))
    stale.push(`manifests/${name} (not rendered: remove it)`);
}
if (check && stale.length > 0) {
  console.error(`not as charts/buoy renders them (npm run manifests): ${stale.join(", ")}`);
  process.exit(1);
}
console.log(
  check ? "manifests/ is the chart's render" : `rendered ${wanted.size} files into manifests/`,
);
