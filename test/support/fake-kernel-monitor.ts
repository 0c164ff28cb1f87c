// The kernel's change notices for unit tests, behind the KernelMonitor port
// (src/dataplane/shell/kernel-monitor.ts): what FakeNft and FakeRoutes change,
// as `nft -j monitor` and `ip monitor` would tell it, from start() to stop().
// `lose()` is a monitor that stopped (or fell behind).
import type {
  KernelMonitor,
  KernelMonitorHandlers,
} from "../../src/dataplane/shell/kernel-monitor.js";
import type { FakeNft } from "./fake-nft.js";
import type { FakeRoutes } from "./fake-routes.js";

export class FakeKernelMonitor implements KernelMonitor {
  #handlers: KernelMonitorHandlers | undefined;
  /** How many times start() was called. */
  starts = 0;
  /** Refuse to start, as when `nft` is missing. */
  refuseStart = false;

  constructor(
    private readonly nft: FakeNft,
    private readonly routes: FakeRoutes,
  ) {}

  async start(handlers: KernelMonitorHandlers): Promise<Map<number, string>> {
    this.stop();
    this.starts += 1;
    if (this.refuseStart) throw new Error("nft: command not found");
    this.#handlers = handlers;
    const deliver = (events: Parameters<KernelMonitorHandlers["onEvents"]>[0]) =>
      this.#handlers?.onEvents(events);
    this.nft.onNotice = deliver;
    this.routes.onNotice = deliver;
    return this.links();
  }

  async links(): Promise<Map<number, string>> {
    return this.routes.links();
  }

  stop(): void {
    this.#handlers = undefined;
    this.nft.onNotice = undefined;
    this.routes.onNotice = undefined;
  }

  /** The monitor stops, as if `nft monitor` had died. */
  lose(reason = "nft monitor: killed by SIGKILL"): void {
    const handlers = this.#handlers;
    this.stop();
    handlers?.onLost(reason);
  }

  get running(): boolean {
    return this.#handlers !== undefined;
  }
}
