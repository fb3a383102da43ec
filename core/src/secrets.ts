import { createHash, randomBytes } from 'node:crypto';

// 32 bytes = 256 bits of CSPRNG output (RFC 8555 §11.3 asks ≥ 128). The prefix lets secret scanners and
// humans tell a bootstrap token (ebt_) from an admin token (eat_); neither is ever logged.
const BOOTSTRAP_PREFIX = 'ebt_';
const ADMIN_PREFIX = 'eat_';

export function newBootstrapToken(): string {
  return BOOTSTRAP_PREFIX + randomBytes(32).toString('base64url');
}

export function newAdminToken(): string {
  return ADMIN_PREFIX + randomBytes(32).toString('base64url');
}

/**
 * Tokens are stored and looked up only as SHA-256. Looking a hash up in an index leaks nothing useful about
 * the token through timing, since the attacker cannot choose hash prefixes.
 */
export function hashSecret(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

/** The start of a token, safe for logs and audit rows. */
export function secretHint(secret: string): string {
  return secret.slice(0, 8) + '…';
}
