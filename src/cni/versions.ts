// CNI spec versions buoy speaks, oldest first.
export const SUPPORTED_VERSIONS = [
  "0.1.0",
  "0.2.0",
  "0.3.0",
  "0.3.1",
  "0.4.0",
  "1.0.0",
  "1.1.0",
] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];

/** Calico treats a config without cniVersion as 0.2.0. */
export const IMPLICIT_VERSION: CniVersion = "0.2.0";
export const LATEST_VERSION: CniVersion = "1.1.0";

export function isSupportedVersion(version: string): version is CniVersion {
  return (SUPPORTED_VERSIONS as readonly string[]).includes(version);
}

/** Compares two dotted versions numerically. */
export function compareVersions(a: string, b: string): number {
  const left = a.split(".").map(Number);
  const right = b.split(".").map(Number);
  for (let i = 0; i < 3; i++) {
    const diff = (left[i] ?? 0) - (right[i] ?? 0);
    if (diff !== 0) return diff;
  }
  return 0;
}

/** The config's `cniVersion` if stdin is JSON that has one (for errors only). */
export function configVersion(stdin: string): string | undefined {
  try {
    const parsed = JSON.parse(stdin) as { cniVersion?: unknown } | null;
    return typeof parsed?.cniVersion === "string" ? parsed.cniVersion : undefined;
  } catch {
    return undefined;
  }
}
