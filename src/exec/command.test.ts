import { describe, expect, it } from "vitest";
import { CommandError, runCommand } from "./command.js";

describe("runCommand()", () => {
  it("runCommand() passes stdin and returns stdout", async () => {
    expect((await runCommand(["cat"], { input: "hello\n" })).stdout).toBe("hello\n");
  });
  it("runCommand() throws a CommandError with argv, exit code and stderr", async () => {
    const error = await runCommand(["sh", "-c", "echo oops >&2; exit 3"]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CommandError);
    expect(error).toMatchObject({
      exitCode: 3,
      stderr: "oops\n",
      message: "sh -c echo oops >&2; exit 3: oops",
    });
  });
  it("runCommand() reports a missing program as a CommandError", async () => {
    await expect(runCommand(["/nonexistent/buoy-test"])).rejects.toBeInstanceOf(CommandError);
  });
  it("runCommand() passes the environment it is given", async () => {
    expect(
      (
        await runCommand(["sh", "-c", "echo $BUOY_X"], {
          env: { BUOY_X: "42", PATH: process.env.PATH },
        })
      ).stdout,
    ).toBe("42\n");
  });
  it("runCommand() kills a command that outlives its timeout", async () => {
    const started = Date.now();
    const error = await runCommand(["sleep", "5"], { timeoutMs: 200 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CommandError);
    expect((error as CommandError).message).toContain("timed out after 200 ms");
    expect(Date.now() - started).toBeLessThan(3000);
  });
});
