// What a list and its watch say a collection holds, by name, with the
// holder's own writes put in as soon as the API server answers them (the
// resident CNI server's cache: kube-watch.ts, node-cache.ts). Pure.
//
// Versions are compared only for equality (ADR 0006). An event can arrive
// after the write that replaced it: a version this cache was told is
// superseded (the one a write was made on) is ignored when an event brings
// it back. An event of a version neither held nor known to be superseded is
// taken: newer, or older than a write the holder did not make; older only
// costs the next write a conflict, never a wrong result (every write is on
// resourceVersion).
import type { KubeObject } from "./objects.js";

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";

export interface WatchEvent {
  type: WatchEventType;
  object: KubeObject & { code?: number; reason?: string; message?: string };
}

export class ObjectCache {
  readonly #objects = new Map<string, KubeObject>();
  /** By name: versions known to be older than the one held. */
  readonly #superseded = new Map<string, Set<string>>();
  /** Whether an object belongs here (a label selector the write may have changed). */
  readonly #selects: (object: KubeObject) => boolean;

  constructor(selects: (object: KubeObject) => boolean = () => true) {
    this.#selects = selects;
  }

  /** Everything, as a list (or relist) gave it. */
  replace(items: readonly KubeObject[]): void {
    this.#objects.clear();
    this.#superseded.clear();
    for (const object of items) this.#objects.set(object.metadata.name, object);
  }

  /** Applies a watch event; BOOKMARK and ERROR change nothing here. */
  apply({ type, object }: WatchEvent): void {
    const name = object.metadata.name;
    const version = object.metadata.resourceVersion ?? "";
    if (type !== "ADDED" && type !== "MODIFIED" && type !== "DELETED") return;
    if (this.#superseded.get(name)?.has(version)) return;
    const held = this.#objects.get(name);
    // The watch has caught up with what this cache holds: nothing older can follow.
    if (held?.metadata.resourceVersion === version) this.#superseded.delete(name);
    if (type === "DELETED") {
      this.#objects.delete(name);
      this.#superseded.delete(name);
    } else {
      this.#objects.set(name, object);
    }
  }

  /**
   * The object as a write (or a read by name after a conflict) returned it;
   * `supersedes`: the version it replaced, which a late event must not bring
   * back. An object the selector no longer selects leaves the cache.
   */
  put(object: KubeObject, supersedes?: string): void {
    const name = object.metadata.name;
    const held = this.#objects.get(name)?.metadata.resourceVersion;
    const older = this.#superseded.get(name) ?? new Set<string>();
    for (const version of [supersedes, held]) {
      if (version !== undefined && version !== object.metadata.resourceVersion) older.add(version);
    }
    this.#superseded.set(name, older);
    if (this.#selects(object)) this.#objects.set(name, object);
    else this.#objects.delete(name);
  }

  /** `name` is gone (a read by name found nothing). */
  remove(name: string): void {
    this.#objects.delete(name);
  }

  get(name: string): KubeObject | undefined {
    return this.#objects.get(name);
  }

  list(): KubeObject[] {
    return [...this.#objects.values()];
  }
}
