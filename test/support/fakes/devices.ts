// In-memory DeviceStore (core/src/ports.ts) over the shared tables: the same summaries and histories as
// db/src/device-store.ts, checked by test/contract/devices.contract.ts.
import { REVOCATION_REASON_NAMES, REVOCATION_REASONS } from '@enrolld/protocol';
import type { CertificateStatus, DeviceDetail, DeviceSummary } from '@enrolld/protocol';
import type { DeviceQuery, DeviceStore } from '@enrolld/core/ports.js';
import type { CertificateRow, MemoryTables } from './memory-tables.js';

const reasonName = (code: number | null): string | null =>
  code === null ? null : (REVOCATION_REASON_NAMES.find((n) => REVOCATION_REASONS[n] === code) ?? String(code));

export function createMemoryDeviceStore(tables: MemoryTables): DeviceStore {
  function statusOf(cert: CertificateRow, now: Date): CertificateStatus {
    if (cert.revokedAt) return 'revoked';
    if (!cert.der) return 'pending';
    return cert.notAfter < now ? 'expired' : 'active';
  }

  /** A device's state is its newest issued certificate's; a device with none yet is pending. */
  function summary(id: string, now: Date): DeviceSummary {
    const device = tables.devices.get(id)!;
    let current: CertificateRow | undefined;
    for (const cert of tables.certificates.values()) {
      if (cert.deviceId !== id || !cert.issuedAt) continue;
      if (!current || cert.issuedAt >= current.issuedAt!) current = cert;
    }
    return {
      id,
      environment: device.environment,
      profile: device.profile,
      group: device.group,
      tokenBatch: device.tokenBatch ?? null,
      createdAt: device.createdAt.toISOString(),
      status: current ? statusOf(current, now) : 'pending',
      currentSerial: current?.serial ?? null,
      notAfter: current?.notAfter.toISOString() ?? null,
    };
  }

  return {
    async list(query: DeviceQuery): Promise<DeviceSummary[]> {
      const now = tables.clock.now();
      return [...tables.devices.keys()]
        .filter((id) => tables.devices.get(id)!.kind !== 'admin')
        .filter((id) => (query.after === undefined || id > query.after) && (query.prefix === undefined || id.startsWith(query.prefix)))
        .filter((id) => query.environment === undefined || tables.devices.get(id)!.environment === query.environment)
        .sort()
        .map((id) => summary(id, now))
        .filter((s) => query.status === undefined || s.status === query.status)
        .slice(0, query.limit);
    },

    async get(deviceId: string): Promise<DeviceDetail | undefined> {
      // Admins are identities of the same table but not of the fleet (db/src/device-store.ts).
      const kind = tables.devices.get(deviceId)?.kind;
      if (kind === undefined || kind === 'admin') return undefined;
      const now = tables.clock.now();
      const certificates = [...tables.certificates.values()]
        .filter((c) => c.deviceId === deviceId)
        .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime())
        .map((c) => ({
          serial: c.serial,
          status: statusOf(c, now),
          notBefore: c.notBefore.toISOString(),
          notAfter: c.notAfter.toISOString(),
          issuedAt: c.issuedAt?.toISOString() ?? null,
          revokedAt: c.revokedAt?.toISOString() ?? null,
          revocationReason: reasonName(c.revocationReason),
          predecessorSerial: c.predecessorSerial,
        }));
      return { ...summary(deviceId, now), certificates };
    },
  };
}
