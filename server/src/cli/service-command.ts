import type { Command } from 'commander';
import { enrollResponseSchema, isValidDeviceId, routes } from '@enrolld/protocol';
import type { CreateServiceRequest } from '@enrolld/protocol';
import type { CliContext } from './context.js';
import { createCliContext } from './context.js';
import { identityFiles, writeIdentityCertificate } from './identity-files.js';
import { note } from './output.js';
import { examples } from './program.js';
import { UsageError } from './usage-error.js';

// `enrolld service create`: a backend service identity (urn:enrolld:service:<name>) and its certificate, written as
// identity-files.ts does for admins too.

export interface CreateServiceOptions {
  profile?: string | undefined;
  out: string;
  csr?: string | undefined;
  replace: boolean;
}

export function registerServiceCommands(program: Command): void {
  const service = program.command('service').description('backend services: identities that read device telemetry and send commands over the broker');
  examples(service, 'enrolld service create ingest --out ./certs');
  const create = service
    .command('create')
    .description('create a service and write <out>/<name>.pem (certificate then chain) and, unless --csr is given, <out>/<name>.key (0600)')
    .argument('<name>', 'the service name, ^[a-z0-9][a-z0-9._-]{0,62}$; it shares one namespace with device ids')
    .option('--profile <name>', 'a service profile (default: the built-in `service`)')
    .requiredOption('--out <dir>', 'the directory to write the files to, created if missing (default: none; required)')
    .option('--csr <file>', 'sign this PEM or DER CSR instead of making a key (default: a new EC P-256 key)')
    .option('--replace', 'issue a new certificate for a service whose certificate is still live', false)
    .action((name: string, options: CreateServiceOptions) => createService(name, options, createCliContext()));
  examples(create, 'enrolld service create ingest --out ./certs', 'enrolld service create dashboard --profile readonly --out ./certs --csr dashboard.csr');
}

export async function createService(name: string, options: CreateServiceOptions, ctx: CliContext): Promise<void> {
  if (!isValidDeviceId(name)) throw new UsageError(`"${name}" is not a valid service name (^[a-z0-9][a-z0-9._-]{0,62}$)`);
  const issued = await writeIdentityCertificate(name, options, ctx, (api, csr) => {
    const request: CreateServiceRequest = { name, profile: options.profile, csr, ...(options.replace ? { replace: true } : {}) };
    return api.call(enrollResponseSchema, 'POST', routes.adminServices, request);
  });
  note(`service ${name}: certificate ${issued.serial}, valid until ${issued.notAfter}, written to ${identityFiles(options.out, name).pem}`);
}
