import { defineConfig } from "vitest/config";

// The tests run on the Node.js buoy runs on: the project's Node.js 24
// (node_modules/.bin/node, first on the PATH of npm scripts and npx), not an
// older system node that happens to start vitest.
const major = Number(process.versions.node.split(".")[0]);
if (major < 24) {
  throw new Error(
    `vitest runs on Node.js ${process.version} (${process.execPath}); buoy needs 24: ` +
      "run it through npm (npm run test:unit, npx vitest) after scripts/setup.sh",
  );
}

export default defineConfig({
  test: {
    include: ["**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
