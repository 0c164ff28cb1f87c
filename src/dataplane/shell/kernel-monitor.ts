// The kernel's change notices for buoy's dataplane: `nft -j monitor` (buoy's
// tables) and `ip -o monitor label link route` (interfaces, buoy's routes),
// two resident processes read line by line (dataplane/kernel-events.ts reads
// the lines). Anything that says notices may have been lost (either process
// ending, a line on standard error, a line nft prints that is not JSON, such
// as its ENOBUFS warning) stops both and reports the monitor lost: the agent
// then reads the kernel back as it did without one.
import { runCommand, startStream, type Stream } from "../../exec/command.js";
import { parseIpMonitorLine, parseNftMonitorLine, type KernelEvent } from "../kernel-events.js";

export interface KernelMonitorHandlers {
  onEvents(events: KernelEvent[]): void;
  /** The notices stopped or may have gaps; the monitor is stopped. */
  onLost(reason: string): void;
}

export interface KernelMonitor {
  /**
   * Starts the monitors; resolves with the interfaces (by index) listed once
   * they run. A notice of a change made before they subscribed may be
   * missing: the caller reads the kernel back once after a start.
   */
  start(handlers: KernelMonitorHandlers): Promise<Map<number, string>>;
  /** The interfaces by index now (to set the baseline again at a read-back). */
  links(): Promise<Map<number, string>>;
  stop(): void;
}

export class LinuxKernelMonitor implements KernelMonitor {
  #streams: Stream[] = [];

  async start(handlers: KernelMonitorHandlers): Promise<Map<number, string>> {
    this.stop();
    let lost = false;
    const lose = (reason: string) => {
      if (lost) return;
      lost = true;
      this.stop();
      handlers.onLost(reason);
    };
    const deliver = (events: KernelEvent[]) => {
      if (!lost && events.length > 0) handlers.onEvents(events);
    };
    const streams = this.#streams;
    streams.push(
      await startStream(["nft", "-j", "monitor"], {
        onLine: (line) => {
          if (line.startsWith("{")) deliver(parseNftMonitorLine(line));
          else if (line.trim()) lose(`nft monitor: ${line.trim()}`);
        },
        onExit: lose,
        onStderr: (text) => lose(`nft monitor: ${text.trim()}`),
      }),
      await startStream(["ip", "-o", "monitor", "label", "link", "route"], {
        onLine: (line) => deliver(parseIpMonitorLine(line)),
        onExit: lose,
        onStderr: (text) => lose(`ip monitor: ${text.trim()}`),
      }),
    );
    try {
      return await this.links();
    } catch (error) {
      this.stop();
      throw error;
    }
  }

  async links(): Promise<Map<number, string>> {
    const { stdout } = await runCommand(["ip", "-json", "link", "show"]);
    const links = JSON.parse(stdout || "[]") as { ifindex: number; ifname: string }[];
    return new Map(links.map((link) => [link.ifindex, link.ifname]));
  }

  stop(): void {
    for (const stream of this.#streams.splice(0)) void stream.stop();
  }
}
