// `buoy completion bash|zsh`: prints the shell completion script, rendered
// from this program's commands and options (completion.ts).
import { Argument, type Command } from "commander";
import { renderCompletion, type CompletionNode, type Shell } from "../completion.js";
import { RESOURCE_TYPES, resourceTypeNames } from "../resource-type.js";
import type { Session } from "./session.js";

/** Commands whose first argument is a resource type. */
const TYPED = new Set(["get", "delete"]);

export function addCompletionCommand(program: Command, session: Session): void {
  program
    .command("completion")
    .description("Print a shell completion script for buoy (and kubectl-buoy)")
    .addArgument(new Argument("<shell>", "bash or zsh").choices(["bash", "zsh"]))
    .addHelpText(
      "after",
      `
Examples:
  source <(buoy completion bash)                 # this shell
  buoy completion bash > /etc/bash_completion.d/buoy
  echo 'source <(buoy completion zsh)' >> ~/.zshrc`,
    )
    .action((shell: Shell) => session.write(renderCompletion(treeOf(program), shell)));
}

function treeOf(command: Command): CompletionNode {
  const options = command.options.flatMap((option) =>
    [option.long, option.short].filter((flag): flag is string => flag !== undefined),
  );
  const choices = command.registeredArguments[0]?.argChoices;
  const words = TYPED.has(command.name())
    ? [
        ...resourceTypeNames(),
        ...RESOURCE_TYPES.filter((type) => !resourceTypeNames().includes(type)),
      ]
    : (choices ?? []);
  return {
    names: [command.name(), ...command.aliases()],
    options: [...options, ...(command.parent === null ? [] : ["--help"])],
    ...(words.length > 0 ? { words } : {}),
    commands: command.commands.map(treeOf),
  };
}
