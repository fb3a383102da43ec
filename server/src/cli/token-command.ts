import { fchmodSync, fstatSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import {
  createTokensResponseSchema, deviceTokensResponseSchema, isValidDeviceId, isValidGroup, routes, TOKEN_ISSUES, type CreateTokenRequest,
} from '@enrolld/protocol';
import type { CliContext } from './context.js';
import { createCliContext } from './context.js';
import { envOption } from './env-command.js';
import { note, startProgress, table } from './output.js';
import { examples } from './program.js';
import { UsageError } from './usage-error.js';

export interface CreateTokenOptions {
  device?: string | undefined;
  prefix?: string | undefined;
  count?: string | undefined;
  ttl?: string | undefined;
  service?: string | undefined;
  profile?: string | undefined;
  group?: string | undefined;
  replace: boolean;
  afterCompromise: boolean;
  out?: string | undefined;
  env?: string | undefined;
}

export function registerTokenCommands(program: Command): void {
  const token = program.command('token').description('bootstrap tokens: one-time secrets a device spends on its first enrollment');
  examples(token, 'enrolld token create --device sensor-0001 --ttl 15m');
  const create = token
    .command('create')
    .description('create a token for one device (prints only the token), or a batch as CSV (deviceId,token,expiresAt,issuedAs,batchId) on stdout')
    .option('--device <id>', 'the device the token enrolls, ^[a-z0-9][a-z0-9._-]{0,62}$ (default: none; give it or --prefix and --count)')
    .option('--prefix <prefix>', 'batch: device ids are <prefix>0001, <prefix>0002, … (default: none)')
    .option('--count <n>', 'batch: how many tokens, 1 to 100000 (default: none)')
    .option('--ttl <duration>', 'how long the token is valid, with a unit: 90s, 15m, 24h, 7d (default: the server\'s TOKEN_TTL, 24h)')
    .option('--service <name>', 'a token for a service identity instead of a device: it enrolls only as urn:enrolld:service:<name> (default: none)')
    .option('--profile <name>', 'the certificate profile, of the token\'s kind, in its environment (default: the built-in `device`, or `service` with --service)')
    .option('--group <name>', 'device tokens: the device group, ^[a-z0-9][a-z0-9._-]{0,62}$, written into the certificate; the profile ACL\'s {group} stands for it (default: none)')
    .option('--env <name>', 'the environment the identity enrolls in; an enrolled identity keeps its environment (default: `default`)', envOption)
    .option('--replace', 'allow ids that have a live certificate (re-issue); without it they are refused', false)
    .option('--after-compromise', 'allow ids whose certificates were revoked for keyCompromise; recorded with the token', false)
    .option('--out <file>', 'write the token or CSV to this new file, mode 0600 (default: stdout; a file it is redirected to is made 0600 too)')
    .action((options: CreateTokenOptions) => createTokens(options, createCliContext()));
  examples(
    create,
    'enrolld token create --device sensor-0001 --ttl 15m',
    'enrolld token create --prefix sensor- --count 1000 --ttl 7d --profile silver --out tokens.csv',
    'enrolld token create --device press-0001 --profile gold --group line-7   # gold reads fleet/line-7/…',
    'enrolld token create --device sensor-0001 --replace   # a new token for an enrolled device',
    'enrolld token create --service ingest',
    'enrolld token create --device sensor-dev-01 --env dev',
  );
  const show = token
    .command('show')
    .description('the tokens of a device: created, expires, state (unused, used, expired, withdrawn), and the certificate and request that used each')
    .argument('<deviceId>', 'the device id')
    .option('--json', 'print JSON instead of a table', false)
    .action((deviceId: string, options: { json: boolean }) => showTokens(deviceId, options, createCliContext()));
  show.addHelpText('after', `
Every invalid token gets the same 401 (so a guesser learns nothing). The device's answer carries a requestId; the server's
log line with that requestId says why (unknown, used, expired). This command shows the state of a device's tokens.`);
  examples(show, 'enrolld token show sensor-0001');
}

/** Secrets on disk are for the owner only: a new --out file is created 0600, and so is a file stdout is redirected to. */
async function emit(text: string, out: string | undefined): Promise<void> {
  if (out !== undefined) {
    await writeFile(out, text, { mode: 0o600, flag: 'wx' }).catch((error: NodeJS.ErrnoException) => {
      throw new Error(error.code === 'EEXIST' ? `${out} exists; tokens are never written over a file` : `cannot write ${out}: ${error.message}`);
    });
    return;
  }
  if (fstatSync(1).isFile()) fchmodSync(1, 0o600);
  process.stdout.write(text);
}

/** A token lifetime needs its unit: a bare "15" would silently mean 15 seconds. */
export function parseTtl(text: string): number {
  const match = /^(\d+)(s|m|h|d)$/.exec(text.trim());
  if (!match) {
    const hint = /^\d+$/.test(text.trim()) ? ` has no unit: write ${text}s, ${text}m, ${text}h or ${text}d` : ' is not a duration like 90s, 15m, 24h or 7d';
    throw new UsageError(`--ttl "${text}"${hint}`);
  }
  return Number(match[1]) * { s: 1, m: 60, h: 3600, d: 86_400 }[match[2] as 's' | 'm' | 'h' | 'd'];
}

export async function createTokens(options: CreateTokenOptions, ctx: CliContext): Promise<void> {
  const ttlSeconds = options.ttl === undefined ? undefined : parseTtl(options.ttl);
  const { profile, group } = options;
  if (group !== undefined) {
    if (options.service !== undefined) throw new UsageError('--group is for device tokens; a service has no group');
    if (!isValidGroup(group)) throw new UsageError(`"${group}" is not a valid group (^[a-z0-9][a-z0-9._-]{0,62}$)`);
  }
  if (options.device !== undefined || options.service !== undefined) {
    if (options.prefix !== undefined || options.count !== undefined || (options.device !== undefined && options.service !== undefined)) {
      throw new UsageError('use one of --device, --service or --prefix/--count');
    }
    const id = (options.device ?? options.service)!;
    if (!isValidDeviceId(id)) throw new UsageError(`"${id}" is not a valid ${options.device !== undefined ? 'device id' : 'service name'} (^[a-z0-9][a-z0-9._-]{0,62}$)`);
    const api = await ctx.adminApi();
    try {
      const request: CreateTokenRequest = options.device !== undefined
        ? { deviceId: id, profile, group, ttlSeconds, ...consent(options), environment: options.env }
        : { service: id, profile, ttlSeconds, ...consent(options), environment: options.env };
      const [created] = await api.call(createTokensResponseSchema, 'POST', routes.adminTokens, request);
      await emit(`${created!.token}\n`, options.out); // only the token, for scripts
      note(`token for ${created!.deviceId} (${created!.issuedAs}), expires ${created!.expiresAt}, batch ${created!.batchId}`);
    } finally {
      api.close();
    }
    return;
  }
  if (options.prefix === undefined || options.count === undefined) throw new UsageError('give --device, --service, or --prefix and --count');
  const count = Number(options.count);
  if (!Number.isInteger(count) || count < 1 || count > 100_000) throw new UsageError('--count must be an integer from 1 to 100000');
  const api = await ctx.adminApi();
  const progress = startProgress(`creating ${count} tokens`);
  try {
    // One request, one transaction on the server: the batch exists whole or not at all.
    const request: CreateTokenRequest = { prefix: options.prefix, count, profile, group, ttlSeconds, ...consent(options), environment: options.env };
    const csv = await api.text('POST', routes.adminTokens, request, 'text/csv');
    await emit(csv, options.out);
    progress.stop(`created ${count} tokens for ${options.prefix}…: ${issueCounts(csv)}`);
  } catch (error) {
    progress.stop();
    throw error;
  } finally {
    api.close();
  }
}

function consent(options: CreateTokenOptions): Pick<CreateTokenRequest, 'replace' | 'afterCompromise'> {
  return { ...(options.replace ? { replace: true } : {}), ...(options.afterCompromise ? { afterCompromise: true } : {}) };
}

/** "998 new, 2 re-issued; batch <uuid>" from the CSV's issuedAs and batchId columns (no cell of ours holds a comma). */
function issueCounts(csv: string): string {
  const [header = '', ...lines] = csv.trim().split('\n');
  const columns = header.split(',');
  const issuedAt = columns.indexOf('issuedAs');
  const batchAt = columns.indexOf('batchId');
  const counts = new Map<string, number>();
  let batch: string | undefined;
  for (const line of lines) {
    const cells = line.split(',');
    const issue = cells[issuedAt] ?? '';
    counts.set(issue, (counts.get(issue) ?? 0) + 1);
    batch ??= cells[batchAt];
  }
  const issues = TOKEN_ISSUES.filter((i) => counts.has(i)).map((i) => `${counts.get(i)} ${i}`).join(', ');
  return batch ? `${issues}; batch ${batch} (enrolld revoke --batch ${batch})` : issues;
}

export async function showTokens(deviceId: string, options: { json: boolean }, ctx: CliContext): Promise<void> {
  if (!isValidDeviceId(deviceId)) throw new UsageError(`"${deviceId}" is not a valid device id (^[a-z0-9][a-z0-9._-]{0,62}$)`);
  const api = await ctx.adminApi();
  try {
    const answer = await api.call(deviceTokensResponseSchema, 'GET', routes.adminDeviceTokens(deviceId));
    if (options.json) {
      process.stdout.write(JSON.stringify(answer, null, 2) + '\n');
      return;
    }
    process.stdout.write(
      table(
        ['created', 'by', 'issued as', 'expires', 'state', 'used', 'certificate', 'request'],
        answer.tokens.map((t) => [t.createdAt, t.createdBy, t.issuedAs, t.expiresAt, t.state, t.usedAt, t.serial, t.requestId]),
      ) + '\n',
    );
    note(`${answer.tokens.length} token(s) for ${answer.deviceId}`);
  } finally {
    api.close();
  }
}
