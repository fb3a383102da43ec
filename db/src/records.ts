// Shapes the stores take and return. They mirror the ports core declares (server/src/core/ports.ts):
// db may not import server, so the composition root checks the two agree structurally at compile time.

export interface CertificateIntentRecord {
  serial: string;
  deviceId: string;
  profile: string;
  notBefore: Date;
  notAfter: Date;
  publicKeySha256: Buffer;
  csrSha256: Buffer;
  tbsDer: Buffer;
  predecessorSerial?: string | undefined;
}

export interface IssuedCertificateRecord {
  serial: string;
  deviceId: string;
  der: Buffer;
  notBefore: Date;
  notAfter: Date;
}

export interface TokenGrantRecord {
  tokenId: string;
  deviceId: string;
  profile: string;
}

export type CertificateStatus = 'pending' | 'active' | 'expired' | 'revoked';
