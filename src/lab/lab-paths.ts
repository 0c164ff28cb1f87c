// Where the lab finds what it runs: the checkout's built executables
// (npm run build) and the probe asset. Found from this module's own location,
// which is src/lab/ when run from source and dist/ in the bundle.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export interface LabPaths {
  repo: string;
  /** The CLI bundle, run with Node.js: `node <buoy> ...`. */
  buoy: string;
  /** dist/cni: calico, calico-ipam (buoy's), ahead of the system's plugins. */
  cniDir: string;
  /** containernetworking-plugins (portmap). */
  systemCniDir: string;
  node: string;
  python: string;
  probe: string;
  etcd: string;
  bird: string;
  birdc: string;
}

export function findLabPaths(from: string = fileURLToPath(import.meta.url)): LabPaths {
  const repo = findRepo(dirname(from));
  return {
    repo,
    buoy: join(repo, "dist/buoy"),
    cniDir: join(repo, "dist/cni"),
    systemCniDir: "/usr/lib/cni",
    node: nodeRuntime(repo),
    // Not `python3` from PATH: that may be a version manager's shim.
    python: "/usr/bin/python3",
    probe: join(repo, "src/lab/lab-probe.py"),
    etcd: findOnPath("etcd") ?? "/usr/bin/etcd",
    bird: findOnPath("bird") ?? "/usr/sbin/bird",
    birdc: findOnPath("birdc") ?? "/usr/sbin/birdc",
  };
}

function findRepo(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest)) {
      const { name } = JSON.parse(readFileSync(manifest, "utf8")) as { name?: string };
      if (name === "buoy") return dir;
    }
    if (dirname(dir) === dir) {
      throw new Error(`cannot find the buoy checkout above ${start}`);
    }
  }
}

/** What is missing for a lab; empty when it can start. */
export function findMissing(paths: LabPaths, needBird: boolean): string[] {
  const wanted: [string, string][] = [
    [paths.buoy, "npm run build"],
    [join(paths.cniDir, "calico"), "npm run build"],
    [join(paths.systemCniDir, "portmap"), "apt-get install containernetworking-plugins"],
    [paths.python, "apt-get install python3"],
    [paths.probe, "a complete buoy checkout"],
    [paths.etcd, "apt-get install etcd-server"],
  ];
  if (needBird) {
    wanted.push([paths.bird, "apt-get install bird2"], [paths.birdc, "apt-get install bird2"]);
  }
  return wanted.filter(([path]) => !existsSync(path)).map(([path, fix]) => `${path} (${fix})`);
}

function findOnPath(name: string): string | undefined {
  const dirs = (process.env.PATH ?? "").split(":").filter(Boolean);
  for (const dir of [...dirs, "/usr/sbin", "/usr/bin", "/sbin", "/bin"]) {
    if (existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/**
 * The Node.js the lab runs buoy with: this process's, unless this is bun
 * (the benchmarks run their TypeScript on it), then the checkout's pinned
 * Node.js, so a benchmark measures the runtime buoy ships on.
 */
function nodeRuntime(repo: string): string {
  if (!("bun" in process.versions)) return process.execPath;
  const pinned = join(repo, "node_modules/.bin/node");
  return existsSync(pinned) ? pinned : process.execPath;
}
