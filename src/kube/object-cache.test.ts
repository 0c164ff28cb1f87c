import { describe, expect, it } from "vitest";
import { ObjectCache } from "./object-cache.js";
import type { KubeObject } from "./objects.js";

const object = (name: string, version: string, labels?: Record<string, string>): KubeObject => ({
  metadata: { name, resourceVersion: version, ...(labels ? { labels } : {}) },
});
const versions = (cache: ObjectCache) =>
  cache.list().map((o) => `${o.metadata.name}@${o.metadata.resourceVersion}`);

describe("ObjectCache", () => {
  it("replace() then apply() follows a list and its watch", () => {
    const cache = new ObjectCache();
    cache.replace([object("a", "1"), object("b", "2")]);
    cache.apply({ type: "MODIFIED", object: object("a", "3") });
    cache.apply({ type: "DELETED", object: object("b", "4") });
    cache.apply({ type: "ADDED", object: object("c", "5") });
    cache.apply({ type: "BOOKMARK", object: object("", "6") });
    expect(versions(cache)).toEqual(["a@3", "c@5"]);
  });

  it("put() of a write: a late event of the version written on does not bring it back", () => {
    const cases = [
      { desc: "the event of the old version arrives late", late: ["1"], want: "a@2" },
      { desc: "the write's own event arrives", late: ["2"], want: "a@2" },
      { desc: "another writer's newer version arrives", late: ["1", "2", "7"], want: "a@7" },
    ];
    for (const { desc, late, want } of cases) {
      const cache = new ObjectCache();
      cache.replace([object("a", "1")]);
      cache.put(object("a", "2"), "1");
      for (const version of late) cache.apply({ type: "MODIFIED", object: object("a", version) });
      expect(versions(cache), desc).toEqual([want]);
    }
  });

  it("put() of two writes in a row: neither earlier version comes back", () => {
    const cache = new ObjectCache();
    cache.put(object("a", "2"));
    cache.put(object("a", "3"), "2");
    cache.apply({ type: "ADDED", object: object("a", "2") });
    expect(versions(cache)).toEqual(["a@3"]);
  });

  it("put() of an object the selector no longer selects removes it", () => {
    const cache = new ObjectCache((o) => o.metadata.labels?.mine !== undefined);
    cache.replace([object("a", "1", { mine: "" })]);
    cache.put(object("a", "2", {}), "1");
    expect(cache.list()).toEqual([]);
  });

  it("remove() forgets an object a read by name did not find", () => {
    const cache = new ObjectCache();
    cache.replace([object("a", "1")]);
    cache.remove("a");
    expect(cache.get("a")).toBeUndefined();
  });
});
