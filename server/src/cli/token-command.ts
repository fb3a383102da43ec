import type { Command } from 'commander';
import { createTokensResponseSchema, isValidDeviceId, routes, type CreateTokenRequest } from '@enrolld/protocol';
import type { CliContext } from './context.js';
import { createCliContext } from './context.js';
import { note, startProgress } from './output.js';
import { examples } from './program.js';
import { UsageError } from './usage-error.js';

export interface CreateTokenOptions {
  device?: string | undefined;
  prefix?: string | undefined;
  count?: string | undefined;
  ttl?: string | undefined;
}

export function registerTokenCommands(program: Command): void {
  const token = program.command('token').description('bootstrap tokens: one-time secrets a device spends on its first enrollment');
  examples(token, 'enrolld token create --device sensor-0001 --ttl 15m');
  const create = token
    .command('create')
    .description('create a token for one device (prints only the token), or a batch as CSV (deviceId,token,expiresAt) on stdout')
    .option('--device <id>', 'the device the token enrolls, ^[a-z0-9][a-z0-9._-]{0,62}$ (default: none; give it or --prefix and --count)')
    .option('--prefix <prefix>', 'batch: device ids are <prefix>0001, <prefix>0002, … (default: none)')
    .option('--count <n>', 'batch: how many tokens, 1 to 100000 (default: none)')
    .option('--ttl <duration>', 'how long the token is valid, with a unit: 90s, 15m, 24h, 7d (default: the server\'s TOKEN_TTL, 24h)')
    .action((options: CreateTokenOptions) => createTokens(options, createCliContext()));
  examples(create, 'enrolld token create --device sensor-0001 --ttl 15m', 'enrolld token create --prefix sensor- --count 1000 --ttl 7d > tokens.csv');
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
  if (options.device !== undefined) {
    if (options.prefix !== undefined || options.count !== undefined) throw new UsageError('use either --device or --prefix/--count');
    if (!isValidDeviceId(options.device)) throw new UsageError(`"${options.device}" is not a valid device id (^[a-z0-9][a-z0-9._-]{0,62}$)`);
    const api = await ctx.adminApi();
    try {
      const request: CreateTokenRequest = { deviceId: options.device, ttlSeconds };
      const [created] = await api.call(createTokensResponseSchema, 'POST', routes.adminTokens, request);
      process.stdout.write(`${created!.token}\n`); // only the token on stdout, for scripts
      note(`token for ${created!.deviceId}, expires ${created!.expiresAt}`);
    } finally {
      api.close();
    }
    return;
  }
  if (options.prefix === undefined || options.count === undefined) throw new UsageError('give --device, or --prefix and --count');
  const count = Number(options.count);
  if (!Number.isInteger(count) || count < 1 || count > 100_000) throw new UsageError('--count must be an integer from 1 to 100000');
  const api = await ctx.adminApi();
  const progress = startProgress(`creating ${count} tokens`);
  try {
    // One request, one transaction on the server: the batch exists whole or not at all.
    const request: CreateTokenRequest = { prefix: options.prefix, count, ttlSeconds };
    const csv = await api.text('POST', routes.adminTokens, request, 'text/csv');
    process.stdout.write(csv);
    progress.stop(`created ${count} tokens for ${options.prefix}…`);
  } catch (error) {
    progress.stop();
    throw error;
  } finally {
    api.close();
  }
}
