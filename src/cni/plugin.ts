// The CNI entry: one program, two roles chosen by the executable's name
// (`calico`/`buoy` the main plugin, `calico-ipam`/`buoy-ipam` the IPAM plugin).
// Takes { env, stdin }, returns { stdout, exitCode }; every error is turned
// into the CNI error JSON here and nowhere else. Each command lives in its
// own module (add.ts, del.ts, check.ts, status-gc.ts); this one dispatches.
import { DatastoreUnavailableError } from "../datastore/unavailable-error.js";
import { FloatingIpError } from "../floating/annotation.js";
import { IpamExhaustedError } from "../ipam/ipam.js";
import { createFileLogger, parseLogLevel, silentLogger, type Logger } from "../log/logger.js";
import { nodeNameProblem } from "../model/identifiers.js";
import { truncateEcho } from "../floating/truncate-echo.js";
import { add } from "./add.js";
import type { CniRole } from "./agent-wire.js";
import { check } from "./check.js";
import type { CniContext, CniDeps } from "./context.js";
import { del } from "./del.js";
import { CniCode, CniError } from "./errors.js";
import { parseCniEnv } from "./env.js";
import { ipamAdd, ipamDel } from "./ipam-plugin.js";
import { decodeNetConfJson, parseNetConf } from "./netconf.js";
import { renderResult } from "./result.js";
import { gc, status } from "./status-gc.js";
import {
  LATEST_VERSION,
  SUPPORTED_VERSIONS,
  compareVersions,
  configVersion,
  isSupportedVersion,
} from "./versions.js";

export type { CniRole } from "./agent-wire.js";
export type { CniDeps } from "./context.js";

export interface CniRequest {
  role: CniRole;
  env: Readonly<Record<string, string | undefined>>;
  stdin: string;
}

export interface CniResponse {
  stdout: string;
  exitCode: number;
}

export async function runCni(request: CniRequest, deps: CniDeps): Promise<CniResponse> {
  let version: string | undefined;
  let logger: Logger = deps.logger ?? silentLogger;
  try {
    if (request.env.CNI_COMMAND === "VERSION") return versionResponse(request.stdin);
    const env = parseCniEnv(request.env);
    const raw = decodeNetConfJson(request.stdin);
    if (typeof raw.cniVersion === "string") version = raw.cniVersion;
    const conf = parseNetConf(raw);
    version = conf.cniVersion;
    logger =
      deps.logger ??
      createFileLogger(
        conf.logFilePath,
        parseLogLevel(conf.logLevel),
        {
          command: env.command,
          containerID: env.containerID,
          role: request.role,
          ...(deps.served ? { via: deps.served } : {}),
        },
        // Errors on stderr too, where the runtime logs them; the resident
        // server's stderr is the agent's.
        { rotation: conf.logRotation, stderrFd: 2 },
      );
    requireVersion(env.command, conf.cniVersion);
    const node = conf.nodename || hostnameAsNode(deps.hostname());
    const context: CniContext = {
      env,
      conf,
      store: await deps.openDatastore(conf, node, request.env),
      node,
      logger,
      deps,
      rawEnv: request.env,
      stdin: request.stdin,
    };
    const result = await dispatch(request.role, context);
    logger.flush();
    return { stdout: result === undefined ? "" : JSON.stringify(result) + "\n", exitCode: 0 };
  } catch (error) {
    const cniError = toCniError(error);
    logger.log("error", "cni.error", { code: cniError.code, msg: cniError.message });
    logger.flush();
    // An error in the environment comes before the config is read: still in its version.
    version ??= configVersion(request.stdin);
    const outVersion = version && isSupportedVersion(version) ? version : LATEST_VERSION;
    return { stdout: JSON.stringify(cniError.toJSON(outVersion)) + "\n", exitCode: 1 };
  }
}

async function dispatch(role: CniRole, context: CniContext): Promise<unknown> {
  const { env, conf, store, node, logger } = context;
  if (role === "ipam") {
    switch (env.command) {
      case "ADD":
        return renderResult(await ipamAdd(store, conf, env, node, logger), conf.cniVersion);
      case "DEL":
        return ipamDel(store, conf, env, node, logger);
      case "CHECK":
        return undefined;
      case "STATUS":
        return status(context, false);
      case "GC":
        return gc(context, false);
    }
  }
  switch (env.command) {
    case "ADD":
      return renderResult(await add(context), conf.cniVersion);
    case "DEL":
      return del(context);
    case "CHECK":
      return check(context);
    case "STATUS":
      return status(context);
    case "GC":
      return gc(context);
  }
  return undefined;
}

function versionResponse(stdin: string): CniResponse {
  let requested: string = LATEST_VERSION;
  try {
    const parsed = JSON.parse(stdin || "{}") as { cniVersion?: unknown };
    if (typeof parsed.cniVersion === "string" && isSupportedVersion(parsed.cniVersion)) {
      requested = parsed.cniVersion;
    }
  } catch {
    // VERSION needs no config.
  }
  const body = { cniVersion: requested, supportedVersions: SUPPORTED_VERSIONS };
  return { stdout: JSON.stringify(body) + "\n", exitCode: 0 };
}

/**
 * The hostname as the node's name when the config names none, lower-cased and
 * trimmed as Calico and the kubelet take it; it reaches datastore keys.
 */
function hostnameAsNode(hostname: string): string {
  const name = hostname.trim().toLowerCase();
  const problem = nodeNameProblem(name);
  if (problem !== undefined) {
    throw new CniError(
      CniCode.invalidConfig,
      `invalid network config: no key 'nodename', and the hostname ${JSON.stringify(truncateEcho(hostname))} is no node name: ${problem}`,
    );
  }
  return name;
}

function requireVersion(command: string, version: string): void {
  const since: Record<string, string> = { CHECK: "0.4.0", GC: "1.1.0", STATUS: "1.1.0" };
  const minimum = since[command];
  if (minimum && compareVersions(version, minimum) < 0) {
    throw new CniError(
      CniCode.incompatibleVersion,
      `${command} needs CNI version ${minimum} or later; config is "${version}"`,
    );
  }
}

// ---- errors -------------------------------------------------------------

function toCniError(error: unknown): CniError {
  if (error instanceof CniError) return error;
  if (error instanceof FloatingIpError)
    return new CniError(CniCode.floatingIpRefused, error.message);
  if (error instanceof IpamExhaustedError)
    return new CniError(CniCode.ipamExhausted, error.message);
  if (error instanceof DatastoreUnavailableError)
    return new CniError(CniCode.tryAgainLater, error.message);
  const message = error instanceof Error ? error.message : String(error);
  return new CniError(CniCode.internal, message);
}
