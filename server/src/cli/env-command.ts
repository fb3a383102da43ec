import { InvalidArgumentError, type Command } from 'commander';
import { environmentListResponseSchema, environmentNameSchema, environmentSchema, routes } from '@enrolld/protocol';
import type { CreateEnvironmentRequest, EnvironmentBody } from '@enrolld/protocol';
import type { CliContext } from './context.js';
import { createCliContext } from './context.js';
import { note, table } from './output.js';
import { examples } from './program.js';
import { UsageError } from './usage-error.js';

// `enrolld env …`: environments over the admin API. Each has its own issuing CA (under the shared root, or a root of its
// own with --own-root); a broker started with ENROLLD_ENV=<name> trusts only that CA, so one environment's certificates
// never reach another's broker.

/** A name the identity rule accepts, or a usage error naming it (exit 2). */
export function environmentName(name: string): string {
  if (!environmentNameSchema.safeParse(name).success) throw new UsageError(`"${name}" is not a valid environment name (^[a-z0-9][a-z0-9._-]{0,62}$)`);
  return name;
}

/** Commander's parser of `--env <name>`: a bad name is a usage mistake (exit 2) before anything is sent. */
export function envOption(name: string): string {
  if (!environmentNameSchema.safeParse(name).success) throw new InvalidArgumentError('must be an environment name, ^[a-z0-9][a-z0-9._-]{0,62}$');
  return name;
}

export function registerEnvCommands(program: Command): void {
  const env = program.command('env').description('environments: each has its own issuing CA, and its broker (ENROLLD_ENV) trusts only that one');
  examples(env, 'enrolld env create dev', 'enrolld env list');
  const create = env
    .command('create')
    .description('create an environment with a new issuing CA under the shared root (or its own root); prints its record')
    .argument('<name>', 'the environment name, ^[a-z0-9][a-z0-9._-]{0,62}$')
    .option('--own-root', 'give it a root CA of its own instead of an issuing CA under the shared root', false)
    .option('--json', 'print JSON instead of text', false)
    .action((name: string, options: { ownRoot: boolean; json: boolean }) => createEnvironment(name, options, createCliContext()));
  examples(create, 'enrolld env create dev', 'enrolld env create lab --own-root');
  create.addHelpText('after', `
The new CA's keys are written 0600 under ENROLLD_HOME/envs/<name>/ of the API that serves the request. Its devices get
their certificates from the same API (a token made with --env <name>) and trust GET /v1/ca?env=<name>; run its broker
with ENROLLD_ENV=<name>.`);
  const list = env
    .command('list')
    .description('every environment: its root (shared or own), the fingerprints of its CAs, when and by whom it was made')
    .option('--json', 'print JSON instead of a table', false)
    .action((options: { json: boolean }) => listEnvironments(options, createCliContext()));
  examples(list, 'enrolld env list', 'enrolld env list --json | jq -r ".[].name"');
  const show = env
    .command('show')
    .description('one environment; --chain prints only its chain (issuing CA then root, PEM), what its devices trust')
    .argument('<name>', 'the environment name')
    .option('--json', 'print JSON instead of text', false)
    .option('--chain', 'print the chain PEM only', false)
    .action((name: string, options: { json: boolean; chain: boolean }) => showEnvironment(name, options, createCliContext()));
  examples(show, 'enrolld env show dev', 'enrolld env show dev --chain > dev-chain.pem');
  const remove = env
    .command('delete')
    .description('delete an environment no live certificate or unspent token belongs to (409 with their count otherwise); `default` stays')
    .argument('<name>', 'the environment name')
    .action((name: string) => deleteEnvironment(name, createCliContext()));
  examples(remove, 'enrolld env delete dev');
}

function describe(e: EnvironmentBody): string {
  return [
    `${e.name}  (${e.ownRoot ? 'its own root' : 'the shared root'})`,
    `  issuing CA  sha256 ${e.issuingFingerprint}`,
    `  root CA     sha256 ${e.rootFingerprint}`,
    `  created     ${e.createdAt} by ${e.createdBy}`,
  ].join('\n') + '\n';
}

export async function createEnvironment(name: string, options: { ownRoot: boolean; json: boolean }, ctx: CliContext): Promise<void> {
  const request: CreateEnvironmentRequest = { name: environmentName(name), ...(options.ownRoot ? { ownRoot: true } : {}) };
  const api = await ctx.adminApi();
  try {
    const created = await api.call(environmentSchema, 'POST', routes.adminEnvironments, request);
    process.stdout.write(options.json ? JSON.stringify(created, null, 2) + '\n' : describe(created));
    note(`environment ${created.name} created: make its tokens with --env ${created.name}, run its broker with ENROLLD_ENV=${created.name}`);
  } finally {
    api.close();
  }
}

export async function listEnvironments(options: { json: boolean }, ctx: CliContext): Promise<void> {
  const api = await ctx.adminApi();
  try {
    const { environments } = await api.call(environmentListResponseSchema, 'GET', routes.adminEnvironments);
    if (options.json) {
      process.stdout.write(JSON.stringify(environments, null, 2) + '\n');
      return;
    }
    process.stdout.write(
      table(
        ['environment', 'root', 'issuing CA (sha256)', 'created', 'by'],
        environments.map((e) => [e.name, e.ownRoot ? 'own' : 'shared', e.issuingFingerprint.slice(0, 16), e.createdAt, e.createdBy]),
      ) + '\n',
    );
  } finally {
    api.close();
  }
}

export async function showEnvironment(name: string, options: { json: boolean; chain: boolean }, ctx: CliContext): Promise<void> {
  if (options.json && options.chain) throw new UsageError('use one of --json and --chain');
  const api = await ctx.adminApi();
  try {
    const environment = await api.call(environmentSchema, 'GET', routes.adminEnvironment(environmentName(name)));
    process.stdout.write(options.chain ? environment.chain : options.json ? JSON.stringify(environment, null, 2) + '\n' : describe(environment));
  } finally {
    api.close();
  }
}

export async function deleteEnvironment(name: string, ctx: CliContext): Promise<void> {
  const api = await ctx.adminApi();
  try {
    await api.text('DELETE', routes.adminEnvironment(environmentName(name)));
    note(`environment ${name} deleted`);
  } finally {
    api.close();
  }
}
