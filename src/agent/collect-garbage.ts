// A full garbage collection on request (issue 14). A complete read, a
// complete sync and a whole read-back of the kernel at 100k bindings each
// leave hundreds of MiB of garbage (pages as decoded, 100k-line nft and ip
// outputs parsed, plans and maps of every binding) that V8 keeps: its heap
// grows with the rate of allocation, and its old generation was collected
// only ~60 s after a start, after the next read-back had added its own on
// top (peak RSS 774-869 MiB at 100k bindings, ~220 MiB live). These phases
// are rare (a start, a failure, a tick whose kernel notices were lost), so
// the agent collects right after each, and returns the memory then.
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

let gc: (() => void) | null | undefined;

/** Collects now; a no-op where the runtime gives no collector. */
export function collectGarbage(): void {
  if (gc === undefined) {
    // Exposes `gc` to contexts made from here on, without a command-line flag.
    setFlagsFromString("--expose-gc");
    const found: unknown = runInNewContext("typeof gc === 'function' ? gc : undefined");
    gc = typeof found === "function" ? (found as () => void) : null;
  }
  gc?.();
}
