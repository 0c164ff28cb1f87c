// A list and a watch of one collection (a selector keeps it small) kept in
// an ObjectCache over plain HTTPS (http.ts: the CNI side loads no client
// library). Lists from the API server's watch cache (`resourceVersion=0`:
// a quorum list with a label selector makes the server read the whole
// collection from etcd), watches from the list's version, watches again
// where the last one ended, and lists again after `410 Gone`; on any other
// failure it is out of sync until a list succeeds again, retried with
// backoff. While out of sync, the caller reads the API server itself.
import type { Logger } from "../log/logger.js";
import type { KubeStream, KubeStreamingHttp } from "./http.js";
import { ObjectCache, type WatchEvent } from "./object-cache.js";
import type { KubeList, KubeObject } from "./objects.js";

const RESTART_MS = [200, 500, 1000, 2000, 5000];
/** The server ends each watch after this long; a new one starts where it ended. */
const WATCH_SECONDS = 60;

export interface WatchedCollection {
  readonly cache: ObjectCache;
  /** Whether the cache holds a list and its watch is up. */
  synced(): boolean;
  stop(): void;
}

/**
 * Starts listing and watching `path` (a collection) with `query` (its
 * selectors); `resource` names it in log lines.
 */
export function watchCollection(
  http: KubeStreamingHttp,
  resource: string,
  path: string,
  query: Record<string, string>,
  cache: ObjectCache,
  logger: Logger,
): WatchedCollection {
  let synced = false;
  let stopped = false;
  let current: KubeStream | undefined;
  let timer: NodeJS.Timeout | undefined;
  const url = (extra: Record<string, string>) =>
    `${path}?${new URLSearchParams({ ...query, ...extra }).toString()}`;

  const run = async (failures: number): Promise<void> => {
    try {
      const list = await http.get<KubeList<KubeObject>>(url({ resourceVersion: "0" }));
      if (stopped) return;
      cache.replace(list.items);
      let version = list.metadata.resourceVersion ?? "";
      synced = true;
      failures = 0;
      for (;;) {
        let gone = false;
        let failure: Error | undefined;
        current = http.stream(
          url({
            watch: "1",
            resourceVersion: version,
            allowWatchBookmarks: "true",
            timeoutSeconds: String(WATCH_SECONDS),
          }),
          (line) => {
            // Called from the response's events: a failure ends the stream, never throws.
            if (gone || failure) return;
            const event = parseEvent(line);
            if (event instanceof Error) failure = event;
            else if (event.type === "ERROR") {
              gone = event.object.code === 410;
              if (!gone) failure = new Error(`watch error: ${event.object.message ?? line}`);
            }
            if (gone || failure || event instanceof Error) return current?.abort();
            cache.apply(event);
            version = event.object.metadata.resourceVersion ?? version;
          },
          (WATCH_SECONDS + 30) * 1000,
        );
        await current.done.catch((error: unknown) => {
          if (!gone && !failure) throw error;
        });
        if (failure) throw failure;
        if (stopped) return;
        if (gone) {
          logger.log("info", "cni.watch", { resource, state: "relisted" });
          return await run(0);
        }
      }
    } catch (error) {
      synced = false;
      if (stopped) return;
      const delay = RESTART_MS[Math.min(failures, RESTART_MS.length - 1)] as number;
      logger.log("warn", "cni.watch", {
        resource,
        error: (error as Error).message,
        retryInMs: delay,
      });
      timer = setTimeout(() => void run(failures + 1), delay);
    }
  };
  void run(0);
  return {
    cache,
    synced: () => synced && !stopped,
    stop() {
      stopped = true;
      synced = false;
      clearTimeout(timer);
      current?.abort();
    },
  };
}

function parseEvent(line: string): WatchEvent | Error {
  try {
    return JSON.parse(line) as WatchEvent;
  } catch {
    return new Error(`watch sent a line that is no JSON: ${line.slice(0, 100)}`);
  }
}
