import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { describeIssues, profileListResponseSchema, profileSchema, profileSpecSchema, routes } from '@enrolld/protocol';
import type { Profile, ProfileSpec } from '@enrolld/protocol';
import type { CliContext } from './context.js';
import { createCliContext } from './context.js';
import { envOption } from './env-command.js';
import { note, table } from './output.js';
import { examples } from './program.js';
import { UsageError } from './usage-error.js';

// `enrolld profile …`: certificate profiles over the admin API. A profile file is JSON or YAML (by content: JSON is
// YAML); the server validates it and names the offending rule. Profiles are per environment: --env picks one (the same
// file may be created in several), `default` without it.

const ENV_HELP = 'the environment whose profiles these are (default: `default`)';

/** `?env=<name>` for a path, nothing for the default environment. */
const inEnv = (path: string, env: string | undefined) => (env === undefined ? path : `${path}?${new URLSearchParams({ env })}`);

export function registerProfileCommands(program: Command): void {
  const profile = program.command('profile').description('certificate profiles: kind, lifetime, key types and the topic ACL of the certificates issued under them');
  examples(profile, 'enrolld profile list', 'enrolld profile create gold.yaml');
  const list = profile
    .command('list')
    .description('every profile at its current version')
    .option('--json', 'print JSON instead of a table', false)
    .option('--env <name>', ENV_HELP, envOption)
    .action((options: { json: boolean; env?: string }) => listProfiles(options, createCliContext()));
  examples(list, 'enrolld profile list --json', 'enrolld profile list --env dev');
  const show = profile
    .command('show')
    .description('one profile, with its ACL rules in order')
    .argument('<name>', 'the profile name')
    .option('--env <name>', ENV_HELP, envOption)
    .action((name: string, options: { env?: string }) => showProfile(name, createCliContext(), options.env));
  examples(show, 'enrolld profile show device');
  const create = profile
    .command('create')
    .description('create a profile (version 1) from a JSON or YAML file')
    .argument('<file>', 'the profile: name, kind, acl, and optionally lifetimeSeconds, renewalWindowFraction, keyTypes, access (when it may be connected), description')
    .option('--env <name>', ENV_HELP, envOption)
    .action((file: string, options: { env?: string }) => writeProfile('create', file, createCliContext(), options.env));
  examples(create, 'enrolld profile create bronze.yaml', 'enrolld profile create bronze.yaml --env dev');
  const update = profile
    .command('update')
    .description('store the next version of a profile; connected clients using it get the new ACL and access window at once')
    .argument('<file>', 'the whole profile, as for create (its kind cannot change)')
    .option('--env <name>', ENV_HELP, envOption)
    .action((file: string, options: { env?: string }) => writeProfile('update', file, createCliContext(), options.env));
  examples(update, 'enrolld profile update silver.yaml');
  const remove = profile
    .command('delete')
    .description('delete a profile that no live certificate or unspent token uses (409 otherwise)')
    .argument('<name>', 'the profile name')
    .option('--env <name>', ENV_HELP, envOption)
    .action((name: string, options: { env?: string }) => deleteProfile(name, createCliContext(), options.env));
  examples(remove, 'enrolld profile delete bronze');
}

/** Reads a profile file (JSON or YAML) and checks its shape before it is sent. */
export async function readProfileFile(file: string): Promise<ProfileSpec> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read ${file}: ${(error as Error).message}`);
  }
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (error) {
    throw new UsageError(`${file} is neither JSON nor YAML: ${(error as Error).message.split('\n')[0]}`);
  }
  const spec = profileSpecSchema.safeParse(document);
  if (!spec.success) throw new UsageError(`${file}: ${describeIssues(spec.error, 'profile')}`);
  return spec.data;
}

function summary(p: Profile): Array<string | number> {
  return [p.name, p.version, p.kind, p.acl.length, p.lifetimeSeconds ?? 'default', p.builtin ? 'yes' : ''];
}

export async function listProfiles(options: { json: boolean; env?: string | undefined }, ctx: CliContext): Promise<void> {
  const api = await ctx.adminApi();
  try {
    const { profiles } = await api.call(profileListResponseSchema, 'GET', inEnv(routes.adminProfiles, options.env));
    if (options.json) process.stdout.write(JSON.stringify(profiles, null, 2) + '\n');
    else process.stdout.write(table(['name', 'version', 'kind', 'rules', 'lifetime (s)', 'built-in'], profiles.map(summary)) + '\n');
  } finally {
    api.close();
  }
}

export async function showProfile(name: string, ctx: CliContext, env?: string): Promise<void> {
  const api = await ctx.adminApi();
  try {
    const profile = await api.call(profileSchema, 'GET', inEnv(routes.adminProfile(name), env));
    process.stdout.write(JSON.stringify(profile, null, 2) + '\n');
  } finally {
    api.close();
  }
}

export async function writeProfile(action: 'create' | 'update', file: string, ctx: CliContext, env?: string): Promise<void> {
  const spec = await readProfileFile(file);
  const api = await ctx.adminApi();
  try {
    const stored = action === 'create'
      ? await api.call(profileSchema, 'POST', inEnv(routes.adminProfiles, env), spec)
      : await api.call(profileSchema, 'PUT', inEnv(routes.adminProfile(spec.name), env), spec);
    process.stdout.write(JSON.stringify(stored, null, 2) + '\n');
    note(`profile ${stored.name} is at version ${stored.version}`);
  } finally {
    api.close();
  }
}

export async function deleteProfile(name: string, ctx: CliContext, env?: string): Promise<void> {
  const api = await ctx.adminApi();
  try {
    await api.text('DELETE', inEnv(routes.adminProfile(name), env));
    note(`profile ${name} deleted`);
  } finally {
    api.close();
  }
}
