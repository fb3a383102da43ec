// Inputs the store contracts share: a fresh device id, token hash, canonical serial (protocol serial.ts: minimal
// DER content octets, here 16 octets with a first octet 0x10–0x1f), an intent the stores can record, and a
// certificate made through the enrollment ports, as in production.
import { createHash, randomBytes } from 'node:crypto';
import type { IdentityKind } from '@enrolld/protocol';
import type { CertificateIntent, EnrollmentStore, TokenGrant, TokenStore } from '@enrolld/core/ports.js';

let counter = 0;
export const newDeviceId = (prefix: string): string => `${prefix}-${process.pid}-${(counter++).toString(36)}-${randomBytes(3).toString('hex')}`;
export const newTokenHash = (): Buffer => randomBytes(32);
export const newSerial = (): string => `1${randomBytes(16).toString('hex').slice(1)}`;
export const sha256 = (text: string): Buffer => createHash('sha256').update(text).digest();

export interface IntentOptions {
  lifetimeMs?: number;
  predecessorSerial?: string;
  publicKeySha256?: Buffer;
}

export function intentFor(
  grant: Pick<TokenGrant, 'kind' | 'deviceId' | 'profile'> & { environment?: string; profileTerms?: TokenGrant['profileTerms']; group?: string | undefined },
  csrSha256: Buffer,
  options: IntentOptions = {},
): CertificateIntent {
  const notBefore = new Date(Date.now() - 60_000);
  return {
    serial: newSerial(),
    kind: grant.kind,
    deviceId: grant.deviceId,
    environment: grant.environment ?? 'default',
    profile: grant.profile,
    profileVersion: grant.profileTerms?.version ?? 1,
    group: grant.group,
    notBefore,
    notAfter: new Date(notBefore.getTime() + (options.lifetimeMs ?? 3600_000)),
    publicKeySha256: options.publicKeySha256 ?? randomBytes(32),
    csrSha256,
    tbsDer: randomBytes(64),
    predecessorSerial: options.predecessorSerial,
  };
}

/**
 * A certificate of `deviceId` made with a token of its own (the identity row, of `kind`, default device, is created with
 * the first token; the profile defaults to the built-in one of the kind); signed unless `signed` is false. notBefore is 60 s back, so a `lifetimeMs` under that gives an expired one.
 */
export async function enrollCertificate(
  stores: { tokens: TokenStore; enrollment: EnrollmentStore },
  deviceId: string,
  options: { lifetimeMs?: number; signed?: boolean; profile?: string; kind?: IdentityKind; group?: string; environment?: string; batchId?: string } = {},
): Promise<CertificateIntent> {
  const tokenHash = newTokenHash();
  const kind = options.kind ?? 'device';
  await stores.tokens.createTokens(
    [{ kind, deviceId, tokenHash, expiresAt: new Date(Date.now() + 3600_000), profile: options.profile ?? kind, group: options.group, environment: options.environment, batchId: options.batchId }],
    'contract',
  );
  const csr = randomBytes(32);
  const begun = await stores.enrollment.begin({ tokenHash, csrSha256: csr, retryWindowSeconds: 60, inFlightSeconds: 0, buildIntent: (g) => intentFor(g, csr, options) });
  if (begun.outcome !== 'begun') throw new Error(`expected begun, got ${begun.outcome}`);
  if (options.signed !== false) await stores.enrollment.complete(begun.intent.serial, Buffer.from(`signed-${begun.intent.serial}`));
  return begun.intent;
}
