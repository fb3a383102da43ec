import { InvalidArgumentError, Option, type Command } from 'commander';
import { CERTIFICATE_STATUSES, deviceDetailSchema, deviceListResponseSchema, routes } from '@enrolld/protocol';
import type { DeviceSummary } from '@enrolld/protocol';
import type { CliContext } from './context.js';
import { createCliContext } from './context.js';
import { envOption } from './env-command.js';
import { note, table } from './output.js';
import { examples } from './program.js';
import { UsageError } from './usage-error.js';

export interface ListDevicesOptions {
  status?: string | undefined;
  prefix?: string | undefined;
  limit?: number | undefined;
  env?: string | undefined;
  json: boolean;
}

/** The admin API's largest page. */
const PAGE_SIZE = 1000;

function positiveInteger(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a whole number of at least 1');
  return n;
}

export function registerDevicesCommands(program: Command): void {
  const devices = program.command('devices').description('devices and their certificates, as the admin API reports them');
  examples(devices, 'enrolld devices list --status active', 'enrolld devices show sensor-0001');
  const list = devices
    .command('list')
    .description('list devices in id order, with their status and current certificate (a count by status goes to stderr)')
    .addOption(new Option('--status <status>', 'only devices in this status (default: every status)').choices(CERTIFICATE_STATUSES))
    .option('--prefix <prefix>', 'only device ids that start with this (default: every id)')
    .option('--env <name>', 'only devices of this environment (default: every environment)', envOption)
    .option('--limit <n>', 'print at most this many devices (default: all of them)', positiveInteger)
    .option('--json', 'print JSON instead of a table', false)
    .action((options: ListDevicesOptions) => listDevices(options, createCliContext()));
  examples(list, 'enrolld devices list --limit 20', 'enrolld devices list --status revoked --prefix sensor- --json | jq length', 'enrolld devices list --env dev');
  const show = devices
    .command('show')
    .description('one device with its certificate history (serials, states, revocation reasons, predecessors)')
    .argument('<deviceId>', 'the device id')
    .option('--json', 'print JSON instead of a table', false)
    .action((deviceId: string, options: { json: boolean }) => showDevice(deviceId, options, createCliContext()));
  examples(show, 'enrolld devices show sensor-0001');
}

export async function listDevices(options: ListDevicesOptions, ctx: CliContext): Promise<void> {
  const api = await ctx.adminApi();
  try {
    const all: DeviceSummary[] = [];
    const wanted = options.limit ?? Number.POSITIVE_INFINITY;
    let after: string | null = null;
    do {
      const query = new URLSearchParams({ limit: String(Math.min(PAGE_SIZE, wanted - all.length)) });
      if (after) query.set('after', after);
      if (options.status) query.set('status', options.status);
      if (options.prefix) query.set('prefix', options.prefix);
      if (options.env) query.set('env', options.env);
      const page = await api.call(deviceListResponseSchema, 'GET', `${routes.adminDevices}?${query}`);
      all.push(...page.devices);
      after = page.next;
      if (process.stderr.isTTY && after) process.stderr.write(`\rfetched ${all.length} devices…`);
    } while (after && all.length < wanted);
    if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
    if (options.json) {
      process.stdout.write(JSON.stringify(all, null, 2) + '\n');
      return;
    }
    const byStatus = new Map<string, number>();
    for (const d of all) byStatus.set(d.status, (byStatus.get(d.status) ?? 0) + 1);
    process.stdout.write(table(['device', 'environment', 'status', 'current serial', 'not after'], all.map((d) => [d.id, d.environment, d.status, d.currentSerial, d.notAfter])) + '\n');
    const more = after ? ` (more exist; --limit ${options.limit} stopped the list)` : '';
    note(`${all.length} devices: ${[...byStatus].map(([s, n]) => `${n} ${s}`).join(', ') || 'none'}${more}`);
  } finally {
    api.close();
  }
}

export async function showDevice(deviceId: string, options: { json: boolean }, ctx: CliContext): Promise<void> {
  if (!deviceId) throw new UsageError('devices show needs a device id');
  const api = await ctx.adminApi();
  try {
    const device = await api.call(deviceDetailSchema, 'GET', routes.adminDevice(deviceId));
    if (options.json) {
      process.stdout.write(JSON.stringify(device, null, 2) + '\n');
      return;
    }
    const group = device.group === null ? '' : `, group ${device.group}`;
    process.stdout.write(`${device.id}  ${device.status}  (environment ${device.environment}, profile ${device.profile}${group}, since ${device.createdAt})\n`);
    process.stdout.write(
      table(
        ['serial', 'status', 'not before', 'not after', 'revoked', 'reason', 'predecessor'],
        device.certificates.map((c) => [c.serial, c.status, c.notBefore, c.notAfter, c.revokedAt, c.revocationReason, c.predecessorSerial]),
      ) + '\n',
    );
  } finally {
    api.close();
  }
}
