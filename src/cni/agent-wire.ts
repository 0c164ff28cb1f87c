// The CNI executable's request to the resident agent and its reply (ADR 0013):
// one JSON line each way over a unix socket. Pure: the client (cni/forward.ts)
// and the server (agent/cni-socket.ts) encode and decode with these, and the
// server trusts nothing it decodes beyond its shape.
/** The main plugin (`calico`, `buoy`) or the IPAM plugin (`calico-ipam`, `buoy-ipam`). */
export type CniRole = "plugin" | "ipam";

/** What the executable received, as it received it, plus what only it can see. */
export interface ForwardRequest {
  role: CniRole;
  env: Record<string, string>;
  stdin: string;
  /** The executable's network namespace (`readlink /proc/self/ns/net`): the agent serves only its own. */
  netns: string;
  /** The executable's hostname: the node's name when the config names none. */
  hostname: string;
}

export type ForwardReply =
  | { kind: "done"; stdout: string; exitCode: number }
  /** Nothing was done: the executable does the work itself. */
  | { kind: "fallback"; reason: string };

/** A request line longer than this is refused (a CNI config with a prevResult is a few KiB). */
export const MAX_REQUEST_BYTES = 4 * 1024 * 1024;

const WIRE_VERSION = 1;

export function encodeRequest(request: ForwardRequest): string {
  return JSON.stringify({ v: WIRE_VERSION, ...request }) + "\n";
}

/** The request in `line`, or why it is none (the server answers a fallback naming it). */
export function decodeRequest(line: string): ForwardRequest | { problem: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return { problem: "the request is not JSON" };
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return { problem: "the request is not a JSON object" };
  }
  const { v, role, env, stdin, netns, hostname } = parsed as Record<string, unknown>;
  if (v !== WIRE_VERSION)
    return { problem: `wire version ${JSON.stringify(v)} is not ${WIRE_VERSION}` };
  if (role !== "plugin" && role !== "ipam") return { problem: "role must be plugin or ipam" };
  if (typeof stdin !== "string") return { problem: "stdin must be a string" };
  if (typeof netns !== "string") return { problem: "netns must be a string" };
  if (typeof hostname !== "string") return { problem: "hostname must be a string" };
  if (typeof env !== "object" || env === null || Array.isArray(env)) {
    return { problem: "env must be an object" };
  }
  const strings: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (typeof value !== "string") return { problem: `env ${name} must be a string` };
    strings[name] = value;
  }
  return { role, env: strings, stdin, netns, hostname };
}

export function encodeReply(reply: ForwardReply): string {
  return JSON.stringify(reply) + "\n";
}

/** The reply in `line`; throws on anything else (the client reports it as a CNI error). */
export function decodeReply(line: string): ForwardReply {
  const parsed = JSON.parse(line) as Partial<Record<string, unknown>> | null;
  if (parsed?.kind === "fallback" && typeof parsed.reason === "string") {
    return { kind: "fallback", reason: parsed.reason };
  }
  if (
    parsed?.kind === "done" &&
    typeof parsed.stdout === "string" &&
    typeof parsed.exitCode === "number"
  ) {
    return { kind: "done", stdout: parsed.stdout, exitCode: parsed.exitCode };
  }
  throw new Error("the agent's reply is not a CNI result");
}

/** Where buoy's DaemonSet runs the server; a conflist without `agent_socket` tries it. */
export const DEFAULT_AGENT_SOCKET = "/var/run/buoy/cni/cni.sock";

/**
 * The conflist's `agent_socket` (buoy's key): where the resident server
 * listens; absent, DEFAULT_AGENT_SOCKET; "" (or anything but an absolute
 * path): none, the executable does all the work itself. Read with JSON.parse
 * alone, before anything else is loaded; the full config check (a
 * non-string is code 7) happens where the work is done.
 */
export function agentSocketOf(stdin: string): string | undefined {
  try {
    const parsed = JSON.parse(stdin) as { agent_socket?: unknown } | null;
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined;
    const path = parsed.agent_socket ?? DEFAULT_AGENT_SOCKET;
    return typeof path === "string" && path.startsWith("/") ? path : undefined;
  } catch {
    return undefined;
  }
}
