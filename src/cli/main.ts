// The `buoy` CLI executable, bundled by scripts/build.mjs into dist/buoy (run
// with Node.js). Nothing here runs before main().
import { EtcdKv } from "../etcd/etcd-kv.js";
import { runCli } from "./run-cli.js";

export async function main(): Promise<void> {
  // `buoy get ... | head`: a reader that goes away early is not an error.
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code !== "EPIPE") throw error;
  });
  process.exitCode = await runCli({
    argv: process.argv.slice(2),
    env: process.env,
    stdout: process.stdout,
    stderr: process.stderr,
    openKv: (config) => new EtcdKv({ endpoints: config.endpoints }),
    readStdin,
    onShutdown: (stop) => {
      process.once("SIGTERM", stop);
      process.once("SIGINT", stop);
    },
    ...(process.stdout.isTTY ? { helpWidth: process.stdout.columns } : {}),
  });
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

await main();
