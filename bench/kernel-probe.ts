// When the kernel has a floating IP's change, both halves of it: its fip_dnat
// element (`nft -j monitor`) and its route (`ip -o monitor route`), each
// stamped as the kernel's notice arrives. The agent writes the two in
// parallel, so neither implies the other; polling (`ip route get`, `nft get
// element`, which loads the whole map) would also load the 2 cores the agent
// runs on. Independent of the agent's own monitor code on purpose.
import { spawn, type ChildProcess } from "node:child_process";
import { performance } from "node:perf_hooks";

interface Notice {
  at: number;
  half: "element" | "route";
  ip: string;
  present: boolean;
}

export class KernelProbe {
  #children: ChildProcess[] = [];
  #notices: Notice[] = [];

  start(routeProtocol: string): void {
    this.#read(["nft", "-j", "monitor"], (line) => {
      const match =
        /^\{"(add|delete)": \{"element": .*"name": "fip_dnat", "elem": \{"set": \[\["([^"]+)"/.exec(
          line,
        );
      if (match && line.includes('"table": "buoy"')) {
        this.#notices.push({
          at: performance.now(),
          half: "element",
          ip: match[2]!,
          present: match[1] === "add",
        });
      }
    });
    this.#read(["ip", "-o", "monitor", "route"], (line) => {
      if (!new RegExp(`\\bproto ${routeProtocol}\\b`).test(line)) return;
      const words = line.trim().split(/\s+/);
      const present = words[0] !== "Deleted";
      const dst = (present ? words[0] : words[1]) ?? "";
      this.#notices.push({
        at: performance.now(),
        half: "route",
        ip: dst.replace(/\/32$/, ""),
        present,
      });
    });
  }

  /** Forgets what was heard (before a change). */
  clear(): void {
    this.#notices = [];
  }

  /** When both halves of `ip` coming (present) or going were heard; undefined past the deadline. */
  async both(ip: string, present: boolean, deadline: number): Promise<number | undefined> {
    while (performance.now() < deadline) {
      const heard = (half: Notice["half"]) =>
        this.#notices.find((n) => n.half === half && n.ip === ip && n.present === present)?.at;
      const [element, route] = [heard("element"), heard("route")];
      if (element !== undefined && route !== undefined) return Math.max(element, route);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    return undefined;
  }

  stop(): void {
    for (const child of this.#children.splice(0)) child.kill("SIGTERM");
  }

  #read(argv: string[], onLine: (line: string) => void): void {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "inherit"] });
    let rest = "";
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (chunk: string) => {
      const lines = (rest + chunk).split("\n");
      rest = lines.pop() ?? "";
      for (const line of lines) onLine(line);
    });
    this.#children.push(child);
  }
}
