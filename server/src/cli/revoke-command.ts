import { parseArgs } from 'node:util';
import { canonicalSerial, isRevocationReason, isValidDeviceId, REVOCATION_REASON_NAMES, revokeResponseSchema, routes, type RevokeRequest } from '@enrolld/protocol';
import type { CliContext } from './context.js';
import { note } from './output.js';
import { UsageError } from './usage-error.js';

export const REVOKE_USAGE = `enrolld revoke DEVICE_ID [--reason keyCompromise]   revoke every unexpired cert of a device; its sessions end at once
enrolld revoke --serial HEX [--reason R]           revoke one certificate
  reasons (RFC 5280 §5.3.1): ${REVOCATION_REASON_NAMES.filter((r) => r !== 'removeFromCRL' && r !== 'certificateHold').join(', ')}`;

/** `enrolld revoke`: through the admin API, so every broker hears of it and the API process puts it in the next CRL. */
export async function revokeCommand(argv: string[], ctx: CliContext): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { reason: { type: 'string', default: 'unspecified' }, serial: { type: 'string' }, json: { type: 'boolean', default: false } },
    allowPositionals: true,
    strict: true,
  });
  const reason = values.reason;
  if (!isRevocationReason(reason)) throw new UsageError(`--reason "${reason}" is not an RFC 5280 reason`, REVOKE_USAGE);
  const deviceId = positionals[0];
  if ((deviceId === undefined) === (values.serial === undefined)) throw new UsageError('give a device id or --serial, not both', REVOKE_USAGE);
  if (deviceId !== undefined && !isValidDeviceId(deviceId)) throw new UsageError(`"${deviceId}" is not a valid device id (^[a-z0-9][a-z0-9._-]{0,62}$)`, REVOKE_USAGE);
  // The edge: any spelling an X.509 tool prints (colons, upper case, leading zeros) becomes the canonical serial here.
  const serial = values.serial === undefined ? undefined : canonicalSerial(values.serial);
  if (values.serial !== undefined && serial === undefined) throw new UsageError(`--serial "${values.serial}" is not a hexadecimal serial of at most 20 octets`, REVOKE_USAGE);
  const api = await ctx.adminApi();
  try {
    const path = deviceId !== undefined ? routes.adminRevokeDevice(deviceId) : routes.adminRevokeCertificate(serial!);
    const request: RevokeRequest = { reason };
    const answer = await api.call(revokeResponseSchema, 'POST', path, request);
    if (values.json) {
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
