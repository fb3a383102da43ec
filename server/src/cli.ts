#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config.js';
import { ApiError } from './cli/api-client.js';
import { AUDIT_USAGE, AuditChainBroken, auditListCommand, auditVerifyCommand } from './cli/audit-command.js';
import { createCliContext } from './cli/context.js';
import { DEVICES_USAGE, devicesCommand } from './cli/devices-command.js';
import { note } from './cli/output.js';
import { BULK_REVOKE_USAGE, bulkRevokeCommand } from './cli/bulk-revoke-command.js';
import { REVOKE_USAGE, revokeCommand } from './cli/revoke-command.js';
import { loadRoleCommands } from './cli/role-loader.js';
import { TOKEN_USAGE, tokenCommand } from './cli/token-command.js';
import { UsageError } from './cli/usage-error.js';

const USAGE = `usage:
enrolld up                                  API, broker and jobs in one process; embedded Postgres when DATABASE_URL is unset
enrolld api                                 the API alone (needs DATABASE_URL; replicas share one Postgres and ENROLLD_HOME)
enrolld broker                              the MQTT broker alone (needs DATABASE_URL and the ENROLLD_HOME of an \`enrolld up\`)
enrolld worker                              background jobs alone (rotation sweep, hints, grace supersession); run \`enrolld up\` with JOBS=off
enrolld ca init                             create the root and issuing CA and the server certificate under ENROLLD_HOME
${TOKEN_USAGE}
${DEVICES_USAGE}
${REVOKE_USAGE}
${BULK_REVOKE_USAGE}
${AUDIT_USAGE}

Environment: ENROLLD_HOME (./.enrolld), HTTPS_PORT (8443), MQTTS_PORT (8883), DATABASE_URL, REDIS_URL, SERVER_NAMES,
CERT_LIFETIME (30d), TOKEN_TTL (24h), LOG_LEVEL (info); ENROLLD_URL for CLI commands (https://localhost:HTTPS_PORT).
Rotation: RENEWAL_WINDOW (0.333), ROTATION_SWEEP_INTERVAL (5m), ROTATION_HINT_JITTER (10m), SUPERSEDE_GRACE (24h),
RENEW_EXPIRED (refuse|grace|token), RENEW_EXPIRED_GRACE (7d), EST_POP_LINKING (if-present|required|off), JOBS (in-process|off).`;

type Command = (argv: string[]) => Promise<void>;

/** Any of these makes `enrolld revoke` a bulk revocation. */
const BULK_SELECTOR_FLAGS = ['--prefix', '--profile', '--issued-before', '--issued-after', '--status', '--serials-file'];

const commands: Record<string, Command> = {
  up: async () => (await loadRoleCommands()).upCommand(loadConfig()),
  api: async () => (await loadRoleCommands()).apiCommand(loadConfig()),
  broker: async () => (await loadRoleCommands()).brokerCommand(loadConfig()),
  worker: async () => (await loadRoleCommands()).workerCommand(loadConfig()),
  ca: async ([sub]) => {
    if (sub !== 'init') throw new UsageError(`unknown ca command "${sub ?? ''}"`, 'enrolld ca init');
    await (await loadRoleCommands()).caInitCommand(loadConfig());
  },
  token: (argv) => tokenCommand(argv, createCliContext()),
  devices: (argv) => devicesCommand(argv, createCliContext()),
  revoke: async (argv) => {
    if (!argv.some((a) => BULK_SELECTOR_FLAGS.some((flag) => a === flag || a.startsWith(`${flag}=`)))) return revokeCommand(argv, createCliContext());
    const { values } = parseArgs({
      args: argv,
      options: {
        prefix: { type: 'string' },
        profile: { type: 'string' },
        'issued-before': { type: 'string' },
        'issued-after': { type: 'string' },
        status: { type: 'string' },
        'serials-file': { type: 'string' },
        reason: { type: 'string', default: 'unspecified' },
        'dry-run': { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
      },
      strict: true,
    });
    return bulkRevokeCommand(
      {
        prefix: values.prefix,
        profile: values.profile,
        issuedBefore: values['issued-before'],
        issuedAfter: values['issued-after'],
        status: values.status,
        serialsFile: values['serials-file'],
        reason: values.reason,
        dryRun: values['dry-run'],
        json: values.json,
      },
      createCliContext(),
    );
  },
  audit: async ([sub, ...rest]) => {
    const { values } = parseArgs({
      args: rest,
      options: {
        action: { type: 'string' },
        actor: { type: 'string' },
        device: { type: 'string' },
        limit: { type: 'string', default: '50' },
        json: { type: 'boolean', default: false },
      },
      strict: true,
    });
    if (sub === 'verify') return auditVerifyCommand({ json: values.json }, createCliContext());
    if (sub !== 'list') throw new UsageError(`unknown audit command "${sub ?? ''}"`, AUDIT_USAGE);
    const limit = Number(values.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new UsageError('--limit must be an integer from 1 to 1000', AUDIT_USAGE);
    return auditListCommand({ action: values.action, actor: values.actor, device: values.device, limit, json: values.json }, createCliContext());
  },
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(USAGE + '\n');
    return name ? 0 : 2;
  }
  const command = commands[name];
  if (!command) {
    note(`enrolld: unknown command "${name}"\n\n${USAGE}`);
    return 2;
  }
  try {
    await command(rest);
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      note(`enrolld: ${error.message}\n\n${error.usage}`);
      return 2;
    }
    if (error instanceof ConfigError || error instanceof ApiError || error instanceof AuditChainBroken) {
      note(`enrolld: ${error.message}`);
      return 1;
    }
    const e = error as NodeJS.ErrnoException;
    // parseArgs reports unknown or malformed flags with these codes.
    if (e.code?.startsWith('ERR_PARSE_ARGS')) {
      note(`enrolld: ${e.message}`);
      return 2;
    }
    note(`enrolld: ${e.message ?? String(error)}`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
