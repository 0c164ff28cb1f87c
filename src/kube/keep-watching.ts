// Keeps client-node ListWatch caches watching until a signal aborts: each is
// started, restarted with backoff when its watch fails or the API server goes
// away (the library relists after 410 Gone itself), and reported up or down.
// The agent's caches (list-watch-caches.ts) and the FloatingIP controller's
// (failover-caches.ts) both run through here.
import type { KubernetesObject, ListWatch } from "@kubernetes/client-node";
import type { LogEvent, Logger } from "../log/logger.js";
import { describeKubeError } from "./describe-kube-error.js";

const RESTART_MS = [200, 500, 1000, 2000, 5000];

export interface KeepWatchingHooks {
  /** A cache's watch is established (up) or failed (down). */
  state(name: string, up: boolean): void;
  /** An object was added, changed or deleted. */
  event(name: string, type: "add" | "update" | "delete", object: KubernetesObject): void;
  /** The event name logged when a watch fails ("agent.watch", "controller.watch"). */
  logEvent: LogEvent;
}

/** Runs `caches` until `signal` aborts, then stops them. */
export async function keepWatching(
  caches: readonly (readonly [string, ListWatch<KubernetesObject>])[],
  signal: AbortSignal,
  logger: Logger,
  hooks: KeepWatchingHooks,
): Promise<void> {
  const timers = new Set<NodeJS.Timeout>();
  const stopped = new Promise<void>((resolve) =>
    signal.addEventListener("abort", () => resolve(), { once: true }),
  );
  signal.addEventListener(
    "abort",
    () => {
      for (const timer of timers) clearTimeout(timer);
    },
    { once: true },
  );
  for (const [name, cache] of caches) {
    let failures = 0;
    let failed = false;
    let timer: NodeJS.Timeout | undefined;
    for (const type of ["add", "update", "delete"] as const) {
      cache.on(type, (object: KubernetesObject) => hooks.event(name, type, object));
    }
    const fail = (error: unknown) => {
      failed = true;
      hooks.state(name, false);
      failures += 1;
      const delay = RESTART_MS[Math.min(failures - 1, RESTART_MS.length - 1)] as number;
      logger.log("warn", hooks.logEvent, {
        resource: name,
        error: describeKubeError(error),
        retryInMs: delay,
      });
      if (timer) timers.delete(timer);
      clearTimeout(timer);
      if (signal.aborted) return;
      timer = setTimeout(() => void start(), delay);
      timers.add(timer);
    };
    cache.on("error", fail);
    const start = async () => {
      if (signal.aborted) return;
      failed = false;
      try {
        await cache.start();
      } catch (error) {
        if (!failed) fail(error); // thrown outside the library's own error path
        return;
      }
      if (failed || signal.aborted) return;
      failures = 0;
      hooks.state(name, true);
    };
    void start();
  }
  await stopped;
  await Promise.all(caches.map(([, cache]) => cache.stop()));
}
