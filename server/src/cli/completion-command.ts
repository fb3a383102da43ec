import type { Command } from 'commander';
import { examples } from './program.js';

// `enrolld completion`: a bash completion script made from the command tree itself, so every command registered
// under cli/ completes without a list kept by hand.

/** Every command path ("", "token", "token create", …) with the words that may follow it: subcommands and options. */
function completions(command: Command, path: string[] = [], out = new Map<string, string[]>()): Map<string, string[]> {
  const subcommands = command.commands.map((c) => c.name());
  const options = command.options.flatMap((o) => [o.long, o.short]).filter((flag): flag is string => flag !== undefined);
  out.set(path.join(' '), [...subcommands, ...options, '--help']);
  for (const sub of command.commands) completions(sub, [...path, sub.name()], out);
  return out;
}

export function bashCompletion(program: Command): string {
  const table = [...completions(program)].map(([path, words]) => `    "${path}") words="${words.join(' ')}" ;;`).join('\n');
  const paths = [...completions(program).keys()].filter(Boolean).map((p) => `"${p}"`).join(' ');
  return `# enrolld bash completion (made by \`enrolld completion\`)
_enrolld() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" path="" next word i
  local -a known=(${paths})
  # The command path so far: the words that name a known subcommand of the path before them.
  for ((i = 1; i < COMP_CWORD; i++)); do
    next="\${path:+$path }\${COMP_WORDS[i]}"
    for word in "\${known[@]}"; do [[ "$word" == "$next" ]] && path="$next" && break; done
  done
  local words=""
  case "$path" in
${table}
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F _enrolld enrolld
`;
}

export function registerCompletionCommand(program: Command): void {
  const completion = program
    .command('completion')
    .description('print a bash completion script for enrolld (commands and options)')
    .action(() => {
      process.stdout.write(bashCompletion(program));
    });
  examples(completion, 'enrolld completion > ~/.local/share/bash-completion/completions/enrolld', 'source <(enrolld completion)   # this shell only');
}
