import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config.js';
import { ApiError } from './api-client.js';
import { setAdminCertificateFlags, type AdminCertificateFlags } from './context.js';
import { interruptedExitCode } from './interrupted.js';
import { note } from './output.js';
import { UsageError } from './usage-error.js';

// The root of the enrolld command. Each command group lives in its own module under cli/ and exports a
// `register…(program)` function that adds its subcommands here (cli.ts lists them). Every command carries a
// description, every option its default, and at least one example (`examples()`); `--help` never runs an action.

const ENVIRONMENT_HELP = `
Admin commands authenticate with --cert/--key, else ENROLLD_HOME/admin.pem and admin.key, else ENROLLD_HOME/admin-token.

Environment (README "Configuration" has them all):
  ENROLLD_HOME  ./.enrolld               CA, server TLS, admin token, embedded Postgres data
  HTTPS_PORT    8443                     API port          MQTTS_PORT  8883   MQTT over mutual TLS
  DATABASE_URL  unset (embedded Postgres for \`enrolld up\`)
  ENROLLD_ENV   default                  the environment the broker serves (it trusts only that one's issuing CA)
  ENROLLD_URL   https://localhost:HTTPS_PORT   where the admin commands find the API
  NO_COLOR      set to any value for plain output (pipes are always plain)`;

function productVersion(): string {
  // src/cli.ts and dist/cli.js are both two levels below the repository root.
  const root = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return root.version;
}

export function createProgram(): Command {
  const program = new Command('enrolld')
    .description('IoT device enrollment server: bootstrap tokens, PKCS#10 enrollment, a private CA, an mTLS MQTT broker with revocation')
    .version(productVersion(), '-V, --version', 'print the enrolld version')
    .helpOption('-h, --help', 'print help for a command')
    .helpCommand('help [command]', 'print help for a command')
    // Settings below are inherited by every subcommand created with .command().
    .showHelpAfterError(true)
    .showSuggestionAfterError(true)
    .configureOutput({ outputError: (text, write) => write(text) })
    .exitOverride()
    // Program options are read before and after a subcommand: `enrolld devices list --cert a.pem --key a.key` works.
    .option('--cert <file>', 'admin client certificate (PEM) the admin commands present (default: ENROLLD_HOME/admin.pem if present, else the admin token)')
    .option('--key <file>', 'the private key of --cert (PEM) (default: ENROLLD_HOME/admin.key)');
  program.hook('preAction', (root) => setAdminCertificateFlags(root.opts<AdminCertificateFlags>()));
  program.addHelpText('after', ENVIRONMENT_HELP);
  examples(program, 'enrolld up', 'enrolld token create --device sensor-0001 --ttl 15m', 'enrolld devices list --limit 20');
  return program;
}

/** Adds an "Examples:" block to a command's help. */
export function examples(command: Command, ...lines: string[]): Command {
  return command.addHelpText('after', `\nExamples:\n${lines.map((line) => `  $ ${line}`).join('\n')}`);
}

/** Parses and runs; resolves with the exit code: 0 done or help, 2 a usage mistake, 1 a failure, 130/143 a signal during a role's start. */
export async function runProgram(program: Command, argv: string[]): Promise<number> {
  let running: Command = program;
  program.hook('preAction', (_root, actionCommand) => {
    running = actionCommand;
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (error) {
    return exitCodeOf(error, running);
  }
}

function exitCodeOf(error: unknown, running: Command): number {
  if (error instanceof CommanderError) {
    // --help, --version and `help`: asked for, so success. Help shown because no command was given: a usage mistake.
    if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return 0;
    if (error.code === 'commander.help' && error.exitCode === 0) return 0;
    return 2;
  }
  if (error instanceof UsageError) {
    try {
      running.error(`error: ${error.message}`, { exitCode: 2, code: 'enrolld.usage' });
    } catch {
      // error() printed the message and the command's help, then threw to end the parse.
    }
    return 2;
  }
  const interrupted = interruptedExitCode(error);
  if (interrupted !== undefined) {
    note(`enrolld: ${(error as Error).message}`);
    return interrupted;
  }
  if (error instanceof ConfigError || error instanceof ApiError) {
    note(`enrolld: ${error.message}`);
    return 1;
  }
  const e = error as Error;
  note(`enrolld: ${e.message ?? String(error)}`);
  return 1;
}
