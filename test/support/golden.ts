// Golden files: a test's output compared with a file checked in next to it.
// UPDATE_GOLDEN=1 rewrites the files instead (then review the diff).
import { readFileSync, writeFileSync } from "node:fs";
import { expect } from "vitest";

/**
 * Compares `actual` with `<dir>/<name>.golden`, `dir` a URL of the test's
 * testdata directory (`new URL("./testdata/", import.meta.url)`);
 * UPDATE_GOLDEN=1 rewrites it.
 */
export function expectGolden(dir: URL, name: string, actual: string): void {
  const path = new URL(`${name}.golden`, dir);
  if (process.env.UPDATE_GOLDEN) writeFileSync(path, actual);
  expect(actual).toBe(readFileSync(path, "utf8"));
}
