// Lint rules keep the architecture honest (docs/architecture.md, "Source
// layout"): each kind of code has one home, and the fences below say which
// homes may reach which. Import cycles are found by madge (`npm run
// cycles`), which also sees type-only imports.
//
// - Processes are spawned by src/exec/command.ts only.
// - @kubernetes/client-node stays inside src/kube/ (MetalLB's rule: the rest
//   of the tree is ignorant of the client library).
// - etcd code lives in src/etcd/; outside it only the composition roots that
//   choose a datastore (the CNI's open-datastore.ts, the CLI's entry and
//   commands) reach into it.
// - The ports in src/datastore/ depend on the domain records only.
// - The pure cores (whole folders: model, floating, ipam, net, text, the
//   dataplane's planners and renderers above dataplane/shell/, the CLI's
//   planners and renderers above cli/commands/, plus the few pure files of the
//   I/O folders listed below) import no I/O: no node:* module, no process
//   runner, no datastore client, no logger.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

const childProcess = {
  name: "node:child_process",
  message: "spawn processes through src/exec/command.ts only",
};
const kubeClient = {
  name: "@kubernetes/client-node",
  message: "the Kubernetes client library stays inside src/kube/",
};
const etcdCode = {
  group: ["**/etcd/*"],
  message: "etcd code lives in src/etcd/; reach it from a composition root only",
};
const io = [
  { group: ["node:*"], message: "pure core: no I/O modules" },
  {
    group: ["**/exec/*", "**/shell/*", "**/etcd/*", "**/kube/*", "**/commands/*"],
    message: "pure core: no I/O",
  },
  { group: ["**/log/*"], allowTypeImports: true, message: "pure core: the core never logs" },
];

/** The rule for a set of files: ESLint replaces, never merges, a rule's options. */
function restrict({ paths = [childProcess, kubeClient], patterns = [etcdCode] } = {}) {
  return { "no-restricted-imports": ["error", { paths, patterns }] };
}

const tests = ["**/*.test.ts"];
const compositionRoots = [
  "src/etcd/**",
  "src/cni/open-datastore.ts",
  "src/cli/main.ts",
  "src/cli/run-cli.ts",
  "src/cli/commands/**",
];
const pureFolders = [
  "src/model/**",
  "src/floating/**",
  "src/ipam/**",
  "src/net/**",
  "src/text/**",
  "src/failover/**",
  "src/dataplane/*.ts",
  "src/cli/*.ts",
];
// Pure files that live beside the I/O of their folder.
const pureFiles = [
  "src/cni/netconf.ts",
  "src/cni/result.ts",
  "src/kube/kubeconfig.ts",
  "src/kube/names.ts",
  "src/install/render.ts",
  "src/install/placeholders.ts",
  "src/install/buoy-crds.ts",
  "src/admission/review.ts",
  "src/admission/cni-config-bound.ts",
];
const cliEntries = ["src/cli/main.ts", "src/cli/run-cli.ts"];

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "coverage/", ".bench/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ["**/*.ts"],
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
      ...restrict(),
    },
  },
  { files: compositionRoots, rules: restrict({ patterns: [] }) },
  { files: ["src/kube/**"], rules: restrict({ paths: [childProcess] }) },
  {
    files: ["src/datastore/**"],
    ignores: tests,
    rules: restrict({
      patterns: [
        { group: ["../*", "!../model"], message: "ports depend on the domain records only" },
      ],
    }),
  },
  {
    files: [...pureFolders, ...pureFiles],
    ignores: [...tests, ...cliEntries],
    rules: restrict({ paths: [kubeClient], patterns: io }),
  },
  {
    files: ["src/exec/command.ts", "test/**/*.ts", "bench/**", "scripts/**", ...tests],
    rules: { "no-restricted-imports": "off" },
  },
  {
    files: ["**/*.mjs", "**/*.js"],
    languageOptions: {
      globals: {
        process: "readonly",
        console: "readonly",
        URL: "readonly",
        setTimeout: "readonly",
        fetch: "readonly",
      },
    },
  },
);
