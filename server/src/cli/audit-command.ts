import { InvalidArgumentError, type Command } from 'commander';
import { auditListResponseSchema, auditVerificationSchema, routes } from '@enrolld/protocol';
import type { CliContext } from './context.js';
import { createCliContext } from './context.js';
import { note, startProgress, table } from './output.js';
import { examples } from './program.js';

function pageSize(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new InvalidArgumentError('must be a whole number from 1 to 1000');
  return n;
}

export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('the hash-chained audit trail: read it, and check that no row was altered, inserted or deleted');
  examples(audit, 'enrolld audit list --device sensor-0001', 'enrolld audit verify');
  const list = audit
    .command('list')
    .description('audit events, newest first')
    .option('--action <action>', 'only this action, e.g. certificate.revoked (default: every action)')
    .option('--actor <name>', 'only this actor (default: every actor)')
    .option('--device <id>', 'only events about this device (default: every device)')
    .option('--limit <n>', 'at most this many events, 1 to 1000', pageSize, 50)
    .option('--json', 'print JSON instead of a table', false)
    .action((options: AuditListOptions) => auditListCommand(options, createCliContext()));
  examples(list, 'enrolld audit list --action certificate.revoked --limit 20');
  const verify = audit
    .command('verify')
    .description('walk the audit hash chain; exits 1 naming the first row altered, inserted or deleted')
    .option('--json', 'print the verification as JSON', false)
    .action((options: AuditVerifyOptions) => auditVerifyCommand(options, createCliContext()));
  examples(verify, 'enrolld audit verify');
}

/** The chain is broken: exit 1 with what verify found. */
export class AuditChainBroken extends Error {
  override name = 'AuditChainBroken';
}

export interface AuditVerifyOptions {
  json: boolean;
}

export async function auditVerifyCommand(options: AuditVerifyOptions, ctx: CliContext): Promise<void> {
  const api = await ctx.adminApi();
  const progress = options.json ? undefined : startProgress('verifying the audit chain');
  try {
    const result = await api.call(auditVerificationSchema, 'GET', routes.adminAuditVerify);
    progress?.stop();
    if (options.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    if (result.firstBreak) throw new AuditChainBroken(`audit chain broken after ${result.rows} intact row(s): ${result.firstBreak.message}`);
    if (!options.json) {
      process.stdout.write(`audit chain intact: ${result.rows} rows${result.head ? `, head seq ${result.head.seq} hash ${result.head.hash}` : ''}\n`);
    }
  } finally {
    progress?.stop();
    api.close();
  }
}

export interface AuditListOptions {
  action?: string | undefined;
  actor?: string | undefined;
  device?: string | undefined;
  limit: number;
  json: boolean;
}

export async function auditListCommand(options: AuditListOptions, ctx: CliContext): Promise<void> {
  const api = await ctx.adminApi();
  try {
    const query = new URLSearchParams({ limit: String(options.limit) });
    if (options.action) query.set('action', options.action);
    if (options.actor) query.set('actor', options.actor);
    if (options.device) query.set('deviceId', options.device);
    const page = await api.call(auditListResponseSchema, 'GET', `${routes.adminAudit}?${query}`);
    if (options.json) {
      process.stdout.write(JSON.stringify(page.events, null, 2) + '\n');
      return;
    }
    process.stdout.write(table(['seq', 'at', 'action', 'actor', 'device', 'serial'], page.events.map((e) => [e.seq, e.at, e.action, e.actor, e.deviceId, e.serial])) + '\n');
    note(`${page.events.length} event(s)${page.next ? `; older ones before seq ${page.next}` : ''}`);
  } finally {
    api.close();
  }
}
