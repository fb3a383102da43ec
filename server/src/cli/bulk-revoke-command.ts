import { readFile } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import {
  bulkDryRunResponseSchema,
  bulkRevocationJobSchema,
  canonicalSerial,
  routes,
  type BulkRevocationJobBody,
  type BulkRevocationRequest,
} from '@enrolld/protocol';
import type { CliContext } from './context.js';
import { note, table } from './output.js';
import { UsageError } from './usage-error.js';

/** The `enrolld revoke` options of a bulk revocation (registered in revoke-command.ts). */
export interface BulkRevokeOptions {
  prefix?: string | undefined;
  profile?: string | undefined;
  issuedBefore?: string | undefined;
  issuedAfter?: string | undefined;
  status?: string | undefined;
  /** A token batch id (the batchId of `enrolld token create`). */
  batch?: string | undefined;
  /** A file with one serial per line, any spelling. */
  serialsFile?: string | undefined;
  serial?: string | undefined;
  reason: string;
  dryRun: boolean;
  json: boolean;
}

export function isBulkRevoke(o: BulkRevokeOptions): boolean {
  return [o.prefix, o.profile, o.issuedBefore, o.issuedAfter, o.status, o.batch, o.serialsFile].some((v) => v !== undefined) || o.dryRun;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** How often the progress is read while a job runs. */
const POLL_MS = 250;
const BAR_WIDTH = 30;

async function selectorOf(options: BulkRevokeOptions): Promise<BulkRevocationRequest['selector']> {
  let serials: string[] | undefined;
  if (options.serialsFile !== undefined) {
    const lines = (await readFile(options.serialsFile, 'utf8')).split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
    serials = lines.map((line) => {
      const serial = canonicalSerial(line);
      if (serial === undefined) throw new UsageError(`${options.serialsFile}: "${line}" is not a hexadecimal serial`);
      return serial;
    });
  }
  const selector = {
    prefix: options.prefix,
    profile: options.profile,
    issuedBefore: options.issuedBefore,
    issuedAfter: options.issuedAfter,
    status: options.status as 'active' | 'pending' | 'expired' | undefined,
    serials,
    tokenBatch: options.batch,
  };
  if (Object.values(selector).every((v) => v === undefined)) throw new UsageError('--dry-run needs a bulk selector (--prefix, --profile, --issued-before, --issued-after, --status, --batch or --serials-file)');
  if (options.batch !== undefined && !UUID.test(options.batch)) throw new UsageError(`--batch "${options.batch}" is not a token batch id (the UUID \`enrolld token create\` prints)`);
  return selector;
}

function bar(job: BulkRevocationJobBody): string {
  const share = job.total === 0 ? 1 : job.done / job.total;
  const filled = Math.round(share * BAR_WIDTH);
  return `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${job.done}/${job.total} (${Math.floor(share * 100)}%) revoked ${job.revoked}`;
}

/** `enrolld revoke --prefix …`: a dry run prints the count; otherwise the job runs on the server and this follows it. */
export async function bulkRevoke(deviceId: string | undefined, options: BulkRevokeOptions, ctx: CliContext): Promise<void> {
  if (deviceId !== undefined || options.serial !== undefined) throw new UsageError('a bulk selector revokes many certificates: give it without a device id or --serial');
  const selector = await selectorOf(options);
  const api = await ctx.adminApi();
  try {
    const request: BulkRevocationRequest = { selector, reason: options.reason, dryRun: options.dryRun };
    if (options.dryRun) {
      const preview = await api.call(bulkDryRunResponseSchema, 'POST', routes.adminBulkRevocations, request);
      if (options.json) {
        process.stdout.write(JSON.stringify(preview, null, 2) + '\n');
        return;
      }
      process.stdout.write(`${preview.count}\n`);
      if (preview.sample.length > 0) note(table(['device', 'serial'], preview.sample.map((t) => [t.deviceId, t.serial])));
      note(`dry run: ${preview.count} certificate(s) would be revoked; nothing changed`);
      return;
    }
    let job = await api.call(bulkRevocationJobSchema, 'POST', routes.adminBulkRevocations, request);
    note(`bulk revocation ${job.id}: ${job.total} certificate(s), reason ${job.reason}`);
    const tty = process.stderr.isTTY;
    let shown = '';
    while (job.status === 'queued' || job.status === 'running') {
      const line = bar(job);
      if (tty) process.stderr.write(`\r${line}`);
      else if (line !== shown) note(line);
      shown = line;
      await delay(POLL_MS);
      job = await api.call(bulkRevocationJobSchema, 'GET', routes.adminBulkRevocation(job.id));
    }
    if (tty) process.stderr.write(`\r${bar(job)}\n`);
    if (options.json) process.stdout.write(JSON.stringify(job, null, 2) + '\n');
    if (job.status === 'failed') throw new Error(`bulk revocation ${job.id} failed after ${job.done}/${job.total}: ${job.error ?? 'unknown error'}`);
    note(`bulk revocation ${job.id} done: ${job.revoked} revoked, ${job.done - job.revoked} already revoked; live sessions closed, the CRL follows within CRL_MIN_INTERVAL`);
  } finally {
    api.close();
  }
}
