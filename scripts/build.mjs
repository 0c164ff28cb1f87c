// Builds dist/: the CNI executable (self-contained, bun --compile) under its
// four names, the Node.js bundle of the CLI/agent/lab as dist/buoy, and the
// CLI self-contained as dist/bin/buoy (and kubectl-buoy).
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  linkSync,
  mkdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";

const bun = new URL("../node_modules/.bin/bun", import.meta.url).pathname;
const run = (args) => execFileSync(bun, args, { stdio: ["ignore", "ignore", "inherit"] });

rmSync("dist", { recursive: true, force: true });
mkdirSync("dist/cni", { recursive: true });
mkdirSync("dist/bin", { recursive: true });

// --bytecode skips parsing at every start (~8 ms per CNI call); it needs CommonJS output.
run([
  "build",
  "--compile",
  "--minify",
  "--bytecode",
  "--format=cjs",
  "--target=bun-linux-x64",
  "src/cni/main.ts",
  "--outfile",
  "dist/cni/buoy",
]);
for (const name of ["buoy-ipam", "calico", "calico-ipam"])
  linkSync("dist/cni/buoy", `dist/cni/${name}`);

if (existsSync("src/cli/main.ts")) {
  run(["build", "--target=node", "--format=esm", "src/cli/main.ts", "--outfile", "dist/buoy.mjs"]);
  const bundle = readFileSync("dist/buoy.mjs", "utf8").replace(/^#!.*\n/, "");
  writeFileSync("dist/buoy", "#!/usr/bin/env node\n" + bundle);
  rmSync("dist/buoy.mjs");
  chmodSync("dist/buoy", 0o755);
}
// The CLI as one self-contained executable for workstations (no Node.js
// needed), also installed as kubectl-buoy for `kubectl buoy ...`.
run([
  "build",
  "--compile",
  "--minify",
  "--target=bun-linux-x64",
  "src/cli/main.ts",
  "--outfile",
  "dist/bin/buoy",
]);
linkSync("dist/bin/buoy", "dist/bin/kubectl-buoy");
console.log(
  "built dist/cni/{buoy,buoy-ipam,calico,calico-ipam}, dist/bin/{buoy,kubectl-buoy}" +
    (existsSync("dist/buoy") ? " and dist/buoy" : ""),
);
