// `--log-level` of the long-running commands (agent, controller, webhook):
// its default is LOG_LEVEL from the environment (as in Calico's images and
// the manifests' env), else info; a level that is none of the four is an
// error, not a silent info.
import { Option } from "commander";

const LEVELS = ["debug", "info", "warn", "error"];

export function logLevelOption(env: NodeJS.ProcessEnv = process.env): Option {
  const fallback = (env.LOG_LEVEL ?? "info").toLowerCase();
  return new Option(
    "--log-level <level>",
    "debug, info, warn or error (default: LOG_LEVEL, else info)",
  )
    .choices(LEVELS)
    .default(LEVELS.includes(fallback) ? fallback : "info");
}
