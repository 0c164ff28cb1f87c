// Lint rules keep the architecture honest: process spawning lives only in the
// exec shell module, and the pure cores import no I/O at all.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

const pureCores = [
  "src/floating/annotation.ts",
  "src/floating/validate.ts",
  "src/ipam/block.ts",
  "src/ipam/pool.ts",
  "src/net/address.ts",
  "src/cni/netconf.ts",
  "src/cni/result.ts",
  "src/dataplane/pod-network.ts",
  "src/dataplane/nat-plan.ts",
  "src/dataplane/nft-script.ts",
  "src/dataplane/node-routes.ts",
  "src/dataplane/routing-plan.ts",
  "src/dataplane/bird-config.ts",
  "src/kube/kubeconfig.ts",
  "src/kube/names.ts",
  "src/install/render.ts",
  "src/install/placeholders.ts",
  "src/install/buoy-crds.ts",
];

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "coverage/", ".bench/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ["**/*.ts"],
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
      "no-restricted-imports": [
        "error",
        {
          paths: [
            {
              name: "node:child_process",
              message: "spawn processes through src/exec/command.ts only",
            },
          ],
        },
      ],
    },
  },
  {
    files: ["src/exec/command.ts", "test/**/*.ts", "bench/**", "scripts/**"],
    rules: { "no-restricted-imports": "off" },
  },
  {
    files: pureCores,
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            { group: ["node:*"], message: "pure core: no I/O modules" },
            { group: ["**/exec/*", "**/datastore/etcd-*"], message: "pure core: no I/O" },
          ],
        },
      ],
    },
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
