import { describe, expect, it } from "vitest";
import type { Datastore } from "../datastore/datastore.js";
import { webClaim } from "../../test/support/agent-records.js";
import { apiPaths as paths } from "./api-paths.js";
import { KubeApiError, type KubeHttp } from "./http.js";
import { claimToObject, type KubeObject } from "./objects.js";
import { claimSelector, releaseContainer } from "./release-container.js";

const CONTAINER = "0123456789abcdef".repeat(4);

/** A claim object as the API server holds it: uid and resourceVersion set. */
function stored(ip: string, containerID: string, uid: string, resourceVersion: string) {
  const object = claimToObject(webClaim(ip, containerID), undefined);
  return { ...object, metadata: { ...object.metadata, uid, resourceVersion } };
}

const notFound = () => new KubeApiError(404, "NotFound", "not found");

/**
 * A KubeHttp over `objects` by path, the claims list answering `listed`
 * and the endpoints list none; `onDelete` decides each delete. Records
 * every call.
 */
function fakeHttp(options: {
  objects?: Record<string, KubeObject>;
  listed?: KubeObject[];
  onDelete?: (path: string, preconditions?: { uid?: string; resourceVersion?: string }) => void;
}) {
  const calls: string[] = [];
  const objects = options.objects ?? {};
  const http: KubeHttp = {
    server: "https://fake",
    get<T>(path: string): Promise<T> {
      calls.push(`GET ${decodeURIComponent(path)}`);
      if (path.startsWith(`${paths.claims}?`)) {
        return Promise.resolve({ items: options.listed ?? [] } as T);
      }
      if (path.startsWith(paths.endpoints) && !path.startsWith(`${paths.endpoints}/`)) {
        return Promise.resolve({ items: [] } as T);
      }
      const object = objects[path];
      return object ? Promise.resolve(object as T) : Promise.reject(notFound());
    },
    create: () => Promise.reject(new Error("unexpected create")),
    replace: () => Promise.reject(new Error("unexpected replace")),
    patch: (path) => {
      calls.push(`PATCH ${path}`);
      return Promise.resolve(undefined as never);
    },
    delete(path, preconditions) {
      calls.push(
        `DELETE ${path} ${preconditions?.uid ?? ""}@${preconditions?.resourceVersion ?? ""}`,
      );
      try {
        options.onDelete?.(path, preconditions);
        return Promise.resolve();
      } catch (error) {
        return Promise.reject(error as Error);
      }
    },
  };
  return { http, calls };
}

/** No handle is released in these tests: IPAM's side is never reached. */
const noIpam = {} as Datastore;

describe("claimSelector()", () => {
  it.each([
    {
      desc: "a runtime's 64-digit ID: its label, cut to 63 characters",
      containerID: CONTAINER,
      selector: `buoy.dev/container=${CONTAINER.slice(0, 63)}`,
    },
    { desc: "a short ID: its label", containerID: "ctr-a", selector: "buoy.dev/container=ctr-a" },
    {
      desc: "an ID that cannot be a label value: the claims without a label",
      containerID: "has/slash",
      selector: "!buoy.dev/container",
    },
    {
      desc: "an empty ID: the claims without a label",
      containerID: "",
      selector: "!buoy.dev/container",
    },
  ])("claimSelector() selects $desc", ({ containerID, selector }) => {
    expect(claimSelector(containerID)).toBe(selector);
  });
});

describe("releaseContainer()", () => {
  it("releaseContainer() lists the container's claims by its label only, never every unlabelled claim", async () => {
    const own = stored("10.96.0.1", CONTAINER, "u1", "7");
    const { http, calls } = fakeHttp({ listed: [own] });
    const released = await releaseContainer(http, noIpam, {
      node: "node-1",
      containerID: CONTAINER,
      ifname: "eth0",
    });
    expect(released).toEqual({ addresses: [], floatingIps: ["10.96.0.1"] });
    const lists = calls.filter((call) => call.startsWith(`GET ${paths.claims}?`));
    expect(lists).toEqual([
      `GET ${paths.claims}?labelSelector=buoy.dev/container=${CONTAINER.slice(0, 63)}&resourceVersion=0`,
    ]);
    expect(calls).toContain(`DELETE ${paths.claim("10.96.0.1")} u1@7`);
  });

  it("releaseContainer() lists the unlabelled claims for an ID that cannot be a label, and deletes only its own", async () => {
    const own = stored("10.96.0.1", "has/slash", "u1", "7");
    const other = stored("10.96.0.2", "other/ctr", "u2", "8");
    const { http, calls } = fakeHttp({ listed: [own, other] });
    const released = await releaseContainer(http, noIpam, {
      node: "node-1",
      containerID: "has/slash",
    });
    expect(released.floatingIps).toEqual(["10.96.0.1"]);
    expect(calls.filter((call) => call.startsWith(`GET ${paths.claims}?`))).toEqual([
      `GET ${paths.claims}?labelSelector=!buoy.dev/container&resourceVersion=0`,
    ]);
    expect(calls.filter((call) => call.startsWith("DELETE"))).toEqual([
      `DELETE ${paths.claim("10.96.0.1")} u1@7`,
    ]);
  });

  it("releaseContainer() finds by name a claim its pod's annotation names that the label list misses", async () => {
    // An older buoy's claim (no label), or one the watch cache has not seen yet.
    const own = stored("10.96.0.1", CONTAINER, "u1", "7");
    const pod = {
      metadata: {
        name: "web",
        namespace: "shop",
        annotations: { "cni.projectcalico.org/floatingIPs": '["10.96.0.1"]' },
      },
    };
    const { http, calls } = fakeHttp({
      objects: { [paths.pod("shop", "web")]: pod, [paths.claim("10.96.0.1")]: own },
    });
    const released = await releaseContainer(http, noIpam, {
      node: "node-1",
      containerID: CONTAINER,
      ifname: "eth0",
      namespace: "shop",
      pod: "web",
    });
    expect(released.floatingIps).toEqual(["10.96.0.1"]);
    expect(calls).toContain(`DELETE ${paths.claim("10.96.0.1")} u1@7`);
  });

  it.each([
    {
      desc: "leaves a claim moved in place to another container since it was listed",
      // The FloatingIP controller moved it: same uid, new resourceVersion, new holder.
      now: stored("10.96.0.1", "new-holder", "u1", "9"),
      released: [],
      deletes: ["u1@7"],
    },
    {
      desc: "deletes its claim again after a conflict that left it its own (a status write)",
      now: stored("10.96.0.1", CONTAINER, "u1", "9"),
      released: ["10.96.0.1"],
      deletes: ["u1@7", "u1@9"],
    },
    {
      desc: "leaves a claim deleted and made again for another holder (another uid)",
      now: stored("10.96.0.1", CONTAINER, "u2", "9"),
      released: [],
      deletes: ["u1@7"],
    },
  ])("releaseContainer() $desc", async ({ now, released, deletes }) => {
    const { http, calls } = fakeHttp({
      listed: [stored("10.96.0.1", CONTAINER, "u1", "7")],
      objects: { [paths.claim("10.96.0.1")]: now },
      onDelete: (_, preconditions) => {
        if (preconditions?.uid !== now.metadata.uid || preconditions.resourceVersion !== "9") {
          throw new KubeApiError(409, "Conflict", "the object has been modified");
        }
      },
    });
    const target = { node: "node-1", containerID: CONTAINER, ifname: "eth0" };
    expect((await releaseContainer(http, noIpam, target)).floatingIps).toEqual(released);
    expect(calls.filter((call) => call.startsWith("DELETE"))).toEqual(
      deletes.map((version) => `DELETE ${paths.claim("10.96.0.1")} ${version}`),
    );
  });
});
