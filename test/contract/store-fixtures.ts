// Inputs the store contracts share: a fresh device id, token hash, canonical serial (protocol serial.ts: minimal
// DER content octets, here 16 octets with a first octet 0x10–0x1f) and an intent the stores can record.
import { createHash, randomBytes } from 'node:crypto';
import type { CertificateIntent, TokenGrant } from '@enrolld/core/ports.js';

let counter = 0;
export const newDeviceId = (prefix: string): string => `${prefix}-${process.pid}-${(counter++).toString(36)}-${randomBytes(3).toString('hex')}`;
export const newTokenHash = (): Buffer => randomBytes(32);
export const newSerial = (): string => `1${randomBytes(16).toString('hex').slice(1)}`;
export const sha256 = (text: string): Buffer => createHash('sha256').update(text).digest();

export function intentFor(grant: Pick<TokenGrant, 'deviceId' | 'profile'>, csrSha256: Buffer, options: { lifetimeMs?: number; predecessorSerial?: string } = {}): CertificateIntent {
  const notBefore = new Date(Date.now() - 60_000);
  return {
    serial: newSerial(),
    deviceId: grant.deviceId,
    profile: grant.profile,
    notBefore,
    notAfter: new Date(notBefore.getTime() + (options.lifetimeMs ?? 3600_000)),
    publicKeySha256: randomBytes(32),
    csrSha256,
    tbsDer: randomBytes(64),
    predecessorSerial: options.predecessorSerial,
  };
}
