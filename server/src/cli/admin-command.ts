import { Argument, Option, type Command } from 'commander';
import { ADMIN_ROLES, adminListResponseSchema, createAdminResponseSchema, isValidDeviceId, revokeResponseSchema, routes, whoamiResponseSchema } from '@enrolld/protocol';
import type { AdminRole, CreateAdminRequest } from '@enrolld/protocol';
import type { CliContext } from './context.js';
import { createCliContext } from './context.js';
import { identityFiles, writeIdentityCertificate } from './identity-files.js';
import { note, table } from './output.js';
import { OFFERED_REASONS } from './revoke-command.js';
import { examples } from './program.js';
import { UsageError } from './usage-error.js';

// `enrolld admin …`: admins of the admin API by client certificate (urn:enrolld:admin:<name>). The role lives in the
// admin record on the server, so `admin role` changes it at once and the certificate stays as it is.

export interface CreateAdminOptions {
  role: AdminRole;
  out: string;
  csr?: string | undefined;
  replace: boolean;
}

function adminName(name: string): string {
  if (!isValidDeviceId(name)) throw new UsageError(`"${name}" is not a valid admin name (^[a-z0-9][a-z0-9._-]{0,62}$)`);
  return name;
}

const roleOption = () => new Option('--role <role>', 'viewer reads; operator also creates tokens and revokes; owner also manages profiles, environments and admins (default: none; required)').choices(ADMIN_ROLES).makeOptionMandatory();

export function registerAdminCommands(program: Command): void {
  const admin = program.command('admin').description('admins of the admin API: client certificates with a role (viewer, operator, owner)');
  examples(admin, 'enrolld admin create alice --role owner --out ./certs', 'enrolld admin list');

  const create = admin
    .command('create')
    .description('create an admin with a role and write <out>/<name>.pem (certificate then chain) and, unless --csr is given, <out>/<name>.key (0600)')
    .argument('<name>', 'the admin name, ^[a-z0-9][a-z0-9._-]{0,62}$; it shares one namespace with device ids and service names')
    .addOption(roleOption())
    .requiredOption('--out <dir>', 'the directory to write the files to, created if missing (default: none; required)')
    .option('--csr <file>', 'sign this PEM or DER CSR instead of making a key (default: a new EC P-256 key)')
    .option('--replace', 'issue a new certificate for an admin whose certificate is still live (the old one stays valid until revoked or expired)', false)
    .action((name: string, options: CreateAdminOptions) => createAdmin(name, options, createCliContext()));
  examples(create, 'enrolld admin create alice --role owner --out ./certs', 'enrolld --cert certs/alice.pem --key certs/alice.key admin create bob --role viewer --out ./certs');

  const list = admin
    .command('list')
    .description('every admin with its role, status and current certificate')
    .option('--json', 'print JSON instead of a table', false)
    .action((options: { json: boolean }) => listAdmins(options, createCliContext()));
  examples(list, 'enrolld admin list', 'enrolld admin list --json | jq ".admins[] | select(.role == \\"owner\\")"');

  const role = admin
    .command('role')
    .description('change the role of an admin; it applies from the next request, with the same certificate')
    .argument('<name>', 'the admin name')
    .addArgument(new Argument('<role>', 'the new role').choices(ADMIN_ROLES))
    .action((name: string, newRole: AdminRole) => setAdminRole(name, newRole, createCliContext()));
  examples(role, 'enrolld admin role bob operator');

  const revoke = admin
    .command('revoke')
    .description('end an admin: the API refuses it from now on and every certificate of it is revoked (create it again to give it a new one)')
    .argument('<name>', 'the admin name')
    .addOption(new Option('--reason <reason>', 'the RFC 5280 §5.3.1 reason').choices(OFFERED_REASONS).default('cessationOfOperation'))
    .action((name: string, options: { reason: string }) => revokeAdmin(name, options, createCliContext()));
  examples(revoke, 'enrolld admin revoke bob', 'enrolld admin revoke bob --reason keyCompromise');

  const whoami = admin
    .command('whoami')
    .description('who the API takes this CLI for: the actor the audit trail names, its role and its credential')
    .action(() => whoAmI(createCliContext()));
  examples(whoami, 'enrolld admin whoami', 'enrolld --cert certs/alice.pem --key certs/alice.key admin whoami');
}

export async function createAdmin(name: string, options: CreateAdminOptions, ctx: CliContext): Promise<void> {
  adminName(name);
  const issued = await writeIdentityCertificate(name, options, ctx, (api, csr) => {
    const request: CreateAdminRequest = { name, role: options.role, csr, ...(options.replace ? { replace: true } : {}) };
    return api.call(createAdminResponseSchema, 'POST', routes.adminAdmins, request);
  });
  note(`admin ${name} (${issued.role}): certificate ${issued.serial}, valid until ${issued.notAfter}, written to ${identityFiles(options.out, name).pem}`);
}

export async function listAdmins(options: { json: boolean }, ctx: CliContext): Promise<void> {
  const api = await ctx.adminApi();
  try {
    const { admins } = await api.call(adminListResponseSchema, 'GET', routes.adminAdmins);
    if (options.json) {
      process.stdout.write(JSON.stringify({ admins }, null, 2) + '\n');
      return;
    }
    process.stdout.write(table(['admin', 'role', 'status', 'current serial', 'not after', 'changed by'], admins.map((a) => [a.name, a.role, a.status, a.currentSerial, a.notAfter, a.updatedBy])) + '\n');
  } finally {
    api.close();
  }
}

export async function setAdminRole(name: string, role: AdminRole, ctx: CliContext): Promise<void> {
  adminName(name);
  const api = await ctx.adminApi();
  try {
    await api.text('PUT', routes.adminAdminRole(name), { role });
    note(`admin ${name} is now ${role}`);
  } finally {
    api.close();
  }
}

export async function revokeAdmin(name: string, options: { reason: string }, ctx: CliContext): Promise<void> {
  adminName(name);
  const api = await ctx.adminApi();
  try {
    const result = await api.call(revokeResponseSchema, 'POST', routes.adminAdminRevoke(name), { reason: options.reason });
    for (const serial of result.serials) process.stdout.write(serial + '\n');
    note(result.outcome === 'revoked' ? `admin ${name} revoked: ${result.serials.length} certificate(s), reason ${result.reason}` : `admin ${name} revoked; no live certificate was left to revoke`);
  } finally {
    api.close();
  }
}

export async function whoAmI(ctx: CliContext): Promise<void> {
  const api = await ctx.adminApi();
  try {
    const me = await api.call(whoamiResponseSchema, 'GET', routes.adminWhoami);
    process.stdout.write(`${me.actor} ${me.role} (${me.credential})\n`);
  } finally {
    api.close();
  }
}
