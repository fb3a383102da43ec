import type { AdminRole, IdentityKind } from '@enrolld/protocol';

// Ports of the admin records (docs/architecture.md §9c). db/src/admin-store.ts implements them.

export interface AdminRecord {
  name: string;
  role: AdminRole;
  status: 'active' | 'revoked';
  createdAt: Date;
  createdBy: string;
  updatedAt: Date;
  updatedBy: string;
  /** Its newest live certificate (issued, unrevoked, unexpired). */
  currentSerial: string | null;
  notAfter: Date | null;
}

/** The stored certificate of a serial, with what the admin API needs to know of its identity. */
export interface StoredClientCertificate {
  kind: IdentityKind;
  /** The identity's id (an admin's name). */
  name: string;
  /** Null while the certificate is an intent that was never signed. */
  der: Buffer | null;
  notBefore: Date;
  notAfter: Date;
  revokedAt: Date | null;
  /** The admin record of that identity; undefined for a device or a service, or an admin identity without a record. */
  admin: { role: AdminRole; revoked: boolean } | undefined;
}

/**
 * `keepAnOwner`: refuse ('last-owner') when the change would leave no other active owner with a live certificate
 * (ADMIN_BEARER=off, where nothing else could act as owner). The check and the change are one transaction.
 */
export interface AdminChangeOptions {
  keepAnOwner: boolean;
}

export type AdminRoleChange = { outcome: 'updated'; from: AdminRole } | { outcome: 'unchanged' } | { outcome: 'missing' } | { outcome: 'last-owner' };
export type AdminRevocationMark = { outcome: 'revoked' } | { outcome: 'already-revoked' } | { outcome: 'missing' } | { outcome: 'last-owner' };

export interface AdminStore {
  /** The certificate stored under a canonical serial; undefined when there is none. */
  certificate(serial: string): Promise<StoredClientCertificate | undefined>;
  /** Creates the admin record of an admin identity, or makes a revoked one active again, with this role (audit `admin.created`). */
  activate(name: string, role: AdminRole, actor: string): Promise<void>;
  /** The role of an active admin (audit `admin.role-changed`); 'missing' for no record or a revoked one. */
  setRole(name: string, role: AdminRole, actor: string, options: AdminChangeOptions): Promise<AdminRoleChange>;
  /** Ends an admin (audit `admin.revoked`): the record grants nothing from the commit on. Its certificates are revoked apart. */
  markRevoked(name: string, actor: string, options: AdminChangeOptions): Promise<AdminRevocationMark>;
  /** Every admin record, by name. */
  list(): Promise<AdminRecord[]>;
}
