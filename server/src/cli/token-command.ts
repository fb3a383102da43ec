import { parseArgs } from 'node:util';
import { createTokensResponseSchema, isValidDeviceId, routes, type CreateTokenRequest } from '@enrolld/protocol';
import { parseDuration } from '../config.js';
import type { CliContext } from './context.js';
import { note, startProgress } from './output.js';
import { UsageError } from './usage-error.js';

export const TOKEN_USAGE = `enrolld token create --device ID [--ttl 15m]        print one bootstrap token
enrolld token create --prefix P --count N [--ttl 24h]  print a CSV (deviceId,token,expiresAt) of N tokens`;

export async function tokenCommand(argv: string[], ctx: CliContext): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub !== 'create') throw new UsageError(`unknown token command "${sub ?? ''}"`, TOKEN_USAGE);
  const { values } = parseArgs({
    args: rest,
    options: { device: { type: 'string' }, prefix: { type: 'string' }, count: { type: 'string' }, ttl: { type: 'string' } },
    strict: true,
  });
  let ttlSeconds: number | undefined;
  if (values.ttl !== undefined) {
    ttlSeconds = parseDuration(values.ttl);
    if (!ttlSeconds) throw new UsageError(`--ttl "${values.ttl}" is not a duration like 15m, 24h or 7d`, TOKEN_USAGE);
  }
  if (values.device !== undefined) {
    if (values.prefix !== undefined || values.count !== undefined) throw new UsageError('use either --device or --prefix/--count', TOKEN_USAGE);
    if (!isValidDeviceId(values.device)) throw new UsageError(`"${values.device}" is not a valid device id (^[a-z0-9][a-z0-9._-]{0,62}$)`, TOKEN_USAGE);
    const api = await ctx.adminApi();
    try {
      const request: CreateTokenRequest = { deviceId: values.device, ttlSeconds };
      const [created] = await api.call(createTokensResponseSchema, 'POST', routes.adminTokens, request);
      process.stdout.write(`${created!.token}\n`); // only the token on stdout, for scripts
      note(`token for ${created!.deviceId}, expires ${created!.expiresAt}`);
    } finally {
      api.close();
    }
    return;
  }
  if (values.prefix === undefined || values.count === undefined) throw new UsageError('give --device, or --prefix and --count', TOKEN_USAGE);
  const count = Number(values.count);
  if (!Number.isInteger(count) || count < 1 || count > 100_000) throw new UsageError('--count must be an integer from 1 to 100000', TOKEN_USAGE);
  const api = await ctx.adminApi();
  const progress = startProgress(`creating ${count} tokens`);
  try {
    // One request, one transaction on the server: the batch exists whole or not at all.
    const request: CreateTokenRequest = { prefix: values.prefix, count, ttlSeconds };
    const csv = await api.text('POST', routes.adminTokens, request, 'text/csv');
    process.stdout.write(csv);
    progress.stop(`created ${count} tokens for ${values.prefix}…`);
  } catch (error) {
    progress.stop();
    throw error;
  } finally {
    api.close();
  }
}
