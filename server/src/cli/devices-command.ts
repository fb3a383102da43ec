import { parseArgs } from 'node:util';
import { CERTIFICATE_STATUSES, deviceDetailSchema, deviceListResponseSchema, routes } from '@enrolld/protocol';
import type { DeviceSummary } from '@enrolld/protocol';
import type { CliContext } from './context.js';
import { note, table } from './output.js';
import { UsageError } from './usage-error.js';

export const DEVICES_USAGE = `enrolld devices list [--status ${CERTIFICATE_STATUSES.join('|')}] [--prefix P] [--json]
enrolld devices show ID [--json]`;

export async function devicesCommand(argv: string[], ctx: CliContext): Promise<void> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    options: { status: { type: 'string' }, prefix: { type: 'string' }, json: { type: 'boolean', default: false } },
    allowPositionals: true,
    strict: true,
  });
  const api = await ctx.adminApi();
  try {
    if (sub === 'list') {
      const all: DeviceSummary[] = [];
      let after: string | null = null;
      do {
        const query = new URLSearchParams({ limit: '1000' });
        if (after) query.set('after', after);
        if (values.status) query.set('status', values.status);
        if (values.prefix) query.set('prefix', values.prefix);
        const page = await api.call(deviceListResponseSchema, 'GET', `${routes.adminDevices}?${query}`);
        all.push(...page.devices);
        after = page.next;
        if (process.stderr.isTTY && after) process.stderr.write(`\rfetched ${all.length} devices…`);
      } while (after);
      if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
      if (values.json) {
        process.stdout.write(JSON.stringify(all, null, 2) + '\n');
        return;
      }
      const byStatus = new Map<string, number>();
      for (const d of all) byStatus.set(d.status, (byStatus.get(d.status) ?? 0) + 1);
      process.stdout.write(table(['device', 'status', 'current serial', 'not after'], all.map((d) => [d.id, d.status, d.currentSerial, d.notAfter])) + '\n');
      note(`${all.length} devices: ${[...byStatus].map(([s, n]) => `${n} ${s}`).join(', ') || 'none'}`);
      return;
    }
    if (sub === 'show') {
      const id = positionals[0];
      if (!id) throw new UsageError('devices show needs a device id', DEVICES_USAGE);
      const device = await api.call(deviceDetailSchema, 'GET', routes.adminDevice(id));
      if (values.json) {
        process.stdout.write(JSON.stringify(device, null, 2) + '\n');
        return;
      }
      process.stdout.write(`${device.id}  ${device.status}  (profile ${device.profile}, since ${device.createdAt})\n`);
      process.stdout.write(
        table(
          ['serial', 'status', 'not before', 'not after', 'revoked', 'reason', 'predecessor'],
          device.certificates.map((c) => [c.serial, c.status, c.notBefore, c.notAfter, c.revokedAt, c.revocationReason, c.predecessorSerial]),
        ) + '\n',
      );
      return;
    }
    throw new UsageError(`unknown devices command "${sub ?? ''}"`, DEVICES_USAGE);
  } finally {
    api.close();
  }
}
