// Runs the openssl CLI on generated material in a private temp dir: an independent verifier for every issued cert.
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface OpensslResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runOpenssl(args: string[]): Promise<OpensslResult> {
  return new Promise((resolve) => {
    execFile('openssl', args, { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs `fn` with a fresh temp dir that is removed afterwards. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), 'enrolld-openssl-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g;

/** Splits a PEM chain into the self-signed root and the rest (intermediates). */
export function splitChain(chainPem: string): { rootPem: string; untrustedPem: string } {
  const blocks = chainPem.match(PEM_BLOCK) ?? [];
  let rootPem = '';
  const rest: string[] = [];
  for (const block of blocks) {
    const cert = new X509Certificate(block);
    if (!rootPem && cert.subject === cert.issuer && cert.verify(cert.publicKey)) rootPem = block.endsWith('\n') ? block : `${block}\n`;
    else rest.push(block.endsWith('\n') ? block : `${block}\n`);
  }
  if (!rootPem) throw new Error('chain has no self-signed root');
  return { rootPem, untrustedPem: rest.join('') };
}

/**
 * `openssl verify -x509_strict -purpose sslclient -CAfile root.pem -untrusted issuing.pem leaf.pem`.
 * Returns openssl's result without throwing.
 */
export async function opensslVerify(
  leafPem: string,
  chainPem: string,
  options: { purpose?: 'sslclient' | 'sslserver'; extraArgs?: string[]; crlPem?: string } = {},
): Promise<OpensslResult> {
  const { rootPem, untrustedPem } = splitChain(chainPem);
  return withTempDir(async (dir) => {
    const root = path.join(dir, 'root.pem');
    const issuing = path.join(dir, 'issuing.pem');
    const leaf = path.join(dir, 'leaf.pem');
    await writeFile(root, rootPem);
    await writeFile(issuing, untrustedPem);
    await writeFile(leaf, leafPem);
    const args = ['verify', '-x509_strict', '-purpose', options.purpose ?? 'sslclient', ...(options.extraArgs ?? []), '-CAfile', root];
    if (untrustedPem) args.push('-untrusted', issuing);
    if (options.crlPem) {
      const crl = path.join(dir, 'crl.pem');
      await writeFile(crl, options.crlPem);
      args.push('-crl_check', '-CRLfile', crl);
    }
    args.push(leaf);
    return runOpenssl(args);
  });
}

/** Resolves when openssl accepts the device cert as an sslclient under -x509_strict; rejects with its output otherwise. */
export async function opensslVerifyClientCert(leafPem: string, chainPem: string): Promise<void> {
  const result = await opensslVerify(leafPem, chainPem);
  if (result.code !== 0 || !/: OK\s*$/.test(result.stdout)) {
    throw new Error(`openssl verify failed (${result.code}): ${result.stdout}${result.stderr}`);
  }
}

/** `openssl <kind> -inform DER -text -noout` on a DER object (crl, x509, req). */
export async function opensslText(kind: 'crl' | 'x509' | 'req', der: Buffer): Promise<OpensslResult> {
  return withTempDir(async (dir) => {
    const file = path.join(dir, `object.der`);
    await writeFile(file, der);
    return runOpenssl([kind, '-inform', 'DER', '-in', file, '-text', '-noout']);
  });
}
