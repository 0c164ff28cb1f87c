// When the kernel has a floating IP's change, both halves of it: its fip_dnat
// element (`nft -j monitor`) and its route (`ip -o monitor route`), each
// stamped as the kernel's notice arrives. The agent writes the two in
// parallel, so neither implies the other; polling (`ip route get`, `nft get
// element`, which loads the whole map) would also load the 2 cores the agent
// runs on. Independent of the agent's own monitor code on purpose.
//
// `ready()` waits until both monitors have printed a canary of the probe's
// own: `nft monitor` first lists the whole ruleset (100k elements: ~0.4 s of
// CPU on a quiet machine, seconds under load) and starts that listing over
// whenever the ruleset changes meanwhile, so a change made during it is never
// printed. A fixed wait before the first change (500 ms) lost the first
// change at 100k bindings in every run. The canaries are a table
// `buoy_probe` (the agent reads only table `buoy`'s notices) and a blackhole
// route in table 203, proto 203 (it reads only proto 202 in main).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { performance } from "node:perf_hooks";

interface Notice {
  at: number;
  half: "element" | "route";
  ip: string;
  present: boolean;
}

const CANARY_TABLE = "buoy_probe";
const CANARY_ROUTE = ["blackhole", "192.0.2.1/32", "proto", "203", "table", "203"];

export class KernelProbe {
  #children: ChildProcess[] = [];
  #notices: Notice[] = [];
  #canaries = { nft: 0, ip: 0 };

  start(routeProtocol: string): void {
    this.#read(["nft", "-j", "monitor"], (line) => {
      if (line.includes(`"${CANARY_TABLE}"`)) this.#canaries.nft += 1;
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
      if (/\b192\.0\.2\.1\b.*\bproto 203\b/.test(line)) this.#canaries.ip += 1;
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

  /**
   * Resolves with the ms it took once both monitors have printed a canary;
   * rejects after `timeoutMs`. Each round waits twice as long as the last
   * before it writes again: a canary written while nft lists the ruleset
   * makes it start over.
   */
  async ready(timeoutMs: number): Promise<number> {
    const started = performance.now();
    for (let waitMs = 250; performance.now() - started < timeoutMs; waitMs *= 2) {
      const seen = { ...this.#canaries };
      if (seen.nft === 0) {
        run(["nft", "add", "table", "ip", CANARY_TABLE]);
        run(["nft", "delete", "table", "ip", CANARY_TABLE]);
      }
      if (seen.ip === 0) {
        run(["ip", "-4", "route", "add", ...CANARY_ROUTE]);
        run(["ip", "-4", "route", "del", ...CANARY_ROUTE]);
      }
      const until = performance.now() + waitMs;
      while (performance.now() < until) {
        if (this.#canaries.nft > 0 && this.#canaries.ip > 0) return performance.now() - started;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    }
    throw new Error(
      `kernel probe: no canary heard in ${timeoutMs} ms (nft ${this.#canaries.nft}, ip ${this.#canaries.ip})`,
    );
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

function run(argv: string[]): void {
  const result = spawnSync(argv[0]!, argv.slice(1), { stdio: ["ignore", "ignore", "pipe"] });
  if (result.status !== 0) {
    throw new Error(`${argv.join(" ")}: ${result.stderr?.toString().trim() || result.status}`);
  }
}
