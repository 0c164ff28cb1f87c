import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { renderCompletion, type CompletionNode } from "./completion.js";

const tree: CompletionNode = {
  names: ["buoy"],
  options: ["--etcd-endpoints", "--help", "-h"],
  commands: [
    {
      names: ["get"],
      options: ["--output", "-o"],
      words: ["ippools", "floatingips"],
      commands: [],
    },
    {
      names: ["floatingip", "fip"],
      options: [],
      commands: [{ names: ["add"], options: ["--max"], commands: [] }],
    },
  ],
};

/** What bash offers at the end of `line`, with the script loaded. */
function complete(line: string): string[] {
  const words = line.split(" ");
  const script = `${renderCompletion(tree, "bash")}
COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")})
COMP_CWORD=${words.length - 1}
_buoy
printf '%s\\n' "\${COMPREPLY[@]}"`;
  const result = spawnSync("bash", ["-c", script], { encoding: "utf8" });
  expect(result.status, result.stderr).toBe(0);
  return result.stdout.split("\n").filter(Boolean);
}

describe("renderCompletion", () => {
  it("completes commands, aliases, a command's words and options, in real bash", () => {
    expect(complete("buoy g")).toEqual(["get"]);
    expect(complete("buoy get f")).toEqual(["floatingips"]);
    expect(complete("buoy get -o json --o")).toEqual(["--output"]);
    expect(complete("buoy fip a")).toEqual(["add"]);
    expect(complete("buoy floatingip add --m")).toEqual(["--max"]);
    expect(complete("buoy --e")).toEqual(["--etcd-endpoints"]);
  });

  it("registers both names, and zsh loads bash's completion first", () => {
    expect(renderCompletion(tree, "bash")).toContain("complete -F _buoy buoy kubectl-buoy");
    expect(renderCompletion(tree, "zsh").split("\n")[1]).toBe(
      "autoload -U +X bashcompinit && bashcompinit",
    );
  });
});
