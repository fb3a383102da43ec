import type { Command } from 'commander';
import { loadConfig } from '../config.js';
import { examples } from './program.js';
import { loadRoleCommands } from './role-loader.js';

// The commands that run a server role (`up`, `api`, `broker`, `worker`) or create the CA (`ca init`). Their settings
// come from the environment (config.ts); the heavy server code loads only when one of them runs, never for --help.

const ROLE_SETTINGS = `
Settings are environment variables, validated before anything starts (README "Configuration"):
  ENROLLD_HOME (./.enrolld), LISTEN_HOST (0.0.0.0), HTTPS_PORT (8443), MQTTS_PORT (8883),
  DATABASE_URL (unset: embedded Postgres, \`enrolld up\` only), REDIS_URL (redis://127.0.0.1:6379), LOG_LEVEL (info)`;

export function registerServerCommands(program: Command): void {
  const up = program
    .command('up')
    .description('run the API, the MQTT broker and the jobs in one process; starts an embedded Postgres when DATABASE_URL is unset')
    .action(async () => (await loadRoleCommands()).upCommand(loadConfig()));
  up.addHelpText('after', ROLE_SETTINGS);
  examples(up, 'enrolld up', 'HTTPS_PORT=9443 MQTTS_PORT=9883 ENROLLD_HOME=/var/lib/enrolld enrolld up');

  const api = program
    .command('api')
    .description('run the API alone (needs DATABASE_URL and an ENROLLD_HOME with the CA; replicas share both)')
    .action(async () => (await loadRoleCommands()).apiCommand(loadConfig()));
  api.addHelpText('after', ROLE_SETTINGS);
  examples(api, 'DATABASE_URL=postgres://enrolld@db/enrolld enrolld api');

  const broker = program
    .command('broker')
    .description('run the MQTT broker alone (needs DATABASE_URL and the ENROLLD_HOME of an `enrolld up` or `enrolld api`)')
    .action(async () => (await loadRoleCommands()).brokerCommand(loadConfig()));
  broker.addHelpText('after', ROLE_SETTINGS);
  examples(broker, 'DATABASE_URL=postgres://enrolld@db/enrolld MQTTS_PORT=8883 enrolld broker');

  const worker = program
    .command('worker')
    .description('run the background jobs alone (rotation sweep, hints, grace supersession), beside an `enrolld up` with JOBS=off')
    .action(async () => (await loadRoleCommands()).workerCommand(loadConfig()));
  worker.addHelpText('after', ROLE_SETTINGS);
  examples(worker, 'DATABASE_URL=postgres://enrolld@db/enrolld REDIS_URL=redis://redis:6379 enrolld worker');

  const ca = program.command('ca').description('the private CA under ENROLLD_HOME');
  examples(ca, 'enrolld ca init');
  const init = ca
    .command('init')
    .description('create the root CA, the issuing CA and the server certificate under ENROLLD_HOME (nothing changes if they exist)')
    .action(async () => (await loadRoleCommands()).caInitCommand(loadConfig()));
  init.addHelpText('after', '\nSettings: ENROLLD_HOME (./.enrolld), SERVER_NAMES (extra DNS names/IPs for the server certificate; none).');
  examples(init, 'ENROLLD_HOME=/var/lib/enrolld SERVER_NAMES=enroll.example.com enrolld ca init');
}
