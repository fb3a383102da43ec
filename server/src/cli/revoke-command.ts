import { Option, type Command } from 'commander';
import { canonicalSerial, isRevocationReason, isValidDeviceId, REVOCATION_REASON_NAMES, revokeResponseSchema, routes, type RevokeRequest } from '@enrolld/protocol';
import { bulkRevoke, isBulkRevoke, type BulkRevokeOptions } from './bulk-revoke-command.js';
import type { CliContext } from './context.js';
import { createCliContext } from './context.js';
import { note } from './output.js';
import { examples } from './program.js';
import { UsageError } from './usage-error.js';

export interface RevokeOptions {
  serial?: string | undefined;
  reason: string;
  json: boolean;
}

/** RFC 5280 §5.3.1 reasons an admin may give; holds and removals are not offered, revocation is permanent. */
export const OFFERED_REASONS = REVOCATION_REASON_NAMES.filter((r) => r !== 'removeFromCRL' && r !== 'certificateHold');

export function registerRevokeCommand(program: Command): void {
  const revoke = program
    .command('revoke')
    .description('revoke every unexpired certificate of a device, or one certificate by --serial; live sessions end at once')
    .argument('[deviceId]', 'the device to revoke (or give --serial instead)')
    .option('--serial <hex>', 'revoke only this certificate; any spelling an X.509 tool prints (default: none)')
    .addOption(new Option('--reason <reason>', 'the RFC 5280 §5.3.1 reason').choices(OFFERED_REASONS).default('unspecified'))
    .option('--json', 'print the API answer as JSON', false)
    // A bulk revocation: any of these selects the certificates, and the revocation runs as a job on the server.
    .option('--prefix <prefix>', 'bulk: every certificate of the devices whose id starts with this (default: none)')
    .option('--profile <profile>', 'bulk: every certificate of the devices of this profile (default: none)')
    .option('--issued-before <time>', 'bulk: certificates issued before this ISO 8601 time (default: none)')
    .option('--issued-after <time>', 'bulk: certificates issued at or after this ISO 8601 time (default: none)')
    .addOption(new Option('--status <status>', 'bulk: certificates in this state (default: unexpired ones)').choices(['active', 'pending', 'expired']))
    .option('--batch <id>', 'bulk: the certificates of the devices that enrolled with a token of this batch (the batchId `enrolld token create` prints; default: none)')
    .option('--serials-file <file>', 'bulk: the serials listed in this file, one a line (default: none)')
    .option('--dry-run', 'bulk: print how many certificates the selector takes, and the first 20, without revoking', false)
    .action((deviceId: string | undefined, options: RevokeOptions & BulkRevokeOptions) =>
      isBulkRevoke(options) ? bulkRevoke(deviceId, options, createCliContext()) : revokeCertificates(deviceId, options, createCliContext()),
    );
  examples(
    revoke,
    'enrolld revoke sensor-0001 --reason keyCompromise',
    'enrolld revoke --serial 00:e3:41:9a… --reason superseded',
    'enrolld revoke --prefix line-7- --dry-run',
    'enrolld revoke --prefix line-7- --reason keyCompromise   # a job, with a progress bar',
    'enrolld revoke --batch 0b9c6c1e-6f0e-4d43-9d1a-3a4f8e2b7c55 --dry-run',
  );
}

/** `enrolld revoke`: through the admin API, so every broker hears of it and the API process puts it in the next CRL. */
export async function revokeCertificates(deviceId: string | undefined, options: RevokeOptions, ctx: CliContext): Promise<void> {
  const reason = options.reason;
  if (!isRevocationReason(reason)) throw new UsageError(`--reason "${reason}" is not an RFC 5280 reason`);
  if (deviceId === undefined && options.serial === undefined) {
    throw new UsageError('what should be revoked? give a device id (enrolld revoke sensor-0001) or --serial HEX, or a bulk selector (--prefix line-7-)');
  }
  if (deviceId !== undefined && options.serial !== undefined) throw new UsageError('give a device id or --serial, not both');
  if (deviceId !== undefined && !isValidDeviceId(deviceId)) throw new UsageError(`"${deviceId}" is not a valid device id (^[a-z0-9][a-z0-9._-]{0,62}$)`);
  // The edge: any spelling an X.509 tool prints (colons, upper case, leading zeros) becomes the canonical serial here.
  const serial = options.serial === undefined ? undefined : canonicalSerial(options.serial);
  if (options.serial !== undefined && serial === undefined) throw new UsageError(`--serial "${options.serial}" is not a hexadecimal serial of at most 20 octets`);
  const api = await ctx.adminApi();
  try {
    const path = deviceId !== undefined ? routes.adminRevokeDevice(deviceId) : routes.adminRevokeCertificate(serial!);
    const request: RevokeRequest = { reason };
    const answer = await api.call(revokeResponseSchema, 'POST', path, request);
    if (options.json) {
      process.stdout.write(JSON.stringify(answer, null, 2) + '\n');
      return;
    }
    if (answer.outcome === 'already-revoked') {
      note(`${answer.deviceId}: nothing to revoke (already revoked or no unexpired certificate); no change`);
      return;
    }
    for (const serial of answer.serials) process.stdout.write(`${serial}\n`);
    note(`${answer.deviceId}: revoked ${answer.serials.length} certificate(s), reason ${answer.reason}; live sessions are being closed; the CRL lists them within CRL_MIN_INTERVAL`);
  } finally {
    api.close();
  }
}
