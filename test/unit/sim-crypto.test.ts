// The simulator's own PKCS#10 builder and PKCS#7 reader, checked against OpenSSL.
import { execFileSync, spawnSync } from 'node:child_process';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import {
  buildCsr, certificatesFromPkcs7, children, createCredentialContexts, decodeOid, integer, issuedFromEst, oid, pemToDer, readNode, splitPem,
} from '@enrolld/device-sim';
import type { DeviceCredentials } from '@enrolld/device-sim';
import { canonicalSerial } from '@enrolld/protocol';

const dir = mkdtempSync(join(tmpdir(), 'sim-crypto-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const openssl = (...args: string[]): string => execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
/** OpenSSL 3.0 `req -verify` exits 0 even on a bad signature; its verdict is on stderr. */
const reqVerify = (...args: string[]): string => spawnSync('openssl', ['req', ...args, '-verify', '-noout'], { encoding: 'utf8' }).stderr;

describe('PKCS#10 builder', () => {
  it('produces a CSR that `openssl req -verify` accepts, with CN and SAN URI of the device', () => {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const csr = buildCsr('sensor-0042', publicKey, privateKey);
    const path = join(dir, 'dev.csr');
    writeFileSync(path, csr.pem);
    expect(reqVerify('-in', path)).toMatch(/verify OK/);
    const text = openssl('req', '-in', path, '-noout', '-text');
    expect(text).toMatch(/Subject: CN\s?=\s?sensor-0042/);
    expect(text).toContain('URI:urn:enrolld:device:sensor-0042');
    expect(text).toContain('ecdsa-with-SHA256');
    expect(text).toContain('NIST CURVE: P-256');
    // the DER form (what EST sends) is the same request
    expect(pemToDer(csr.pem).equals(csr.der)).toBe(true);
  });

  it('a tampered CSR fails verification', () => {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const der = Buffer.from(buildCsr('sensor-1', publicKey, privateKey).der);
    const at = der.indexOf(Buffer.from('sensor-1'));
    der[at] = 'S'.charCodeAt(0);
    const path = join(dir, 'bad.der');
    writeFileSync(path, der);
    expect(reqVerify('-inform', 'DER', '-in', path)).toMatch(/verify failure/);
  });
});

describe('DER helpers', () => {
  it('encodes OIDs and integers the way X.690 wants', () => {
    expect(oid('1.2.840.10045.4.3.2').toString('hex')).toBe('06082a8648ce3d040302');
    expect(integer(0).toString('hex')).toBe('020100');
    expect(integer(128).toString('hex')).toBe('02020080');
    const node = readNode(oid('2.5.29.17'));
    expect(decodeOid(oid('2.5.29.17'), node)).toBe('2.5.29.17');
  });

  it('refuses truncated and indefinite-length input', () => {
    expect(() => readNode(Buffer.from([0x30, 0x05, 0x01]))).toThrow(/past the end/);
    expect(() => readNode(Buffer.from([0x30, 0x80, 0x00, 0x00]))).toThrow(/indefinite/);
    const seq = Buffer.from([0x30, 0x03, 0x02, 0x01, 0x07]);
    expect(children(seq, readNode(seq))).toHaveLength(1);
  });
});

describe('EST PKCS#7 certs-only reader', () => {
  it('finds the leaf for our key among the certs of an openssl-made PKCS#7, whatever their order', () => {
    const caKey = join(dir, 'ca.key');
    const caPem = join(dir, 'ca.pem');
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', caKey, '-out', caPem, '-subj', '/CN=Test CA', '-days', '1');
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    writeFileSync(join(dir, 'leaf.csr'), buildCsr('sensor-7', publicKey, privateKey).pem);
    openssl('x509', '-req', '-in', join(dir, 'leaf.csr'), '-CA', caPem, '-CAkey', caKey, '-set_serial', '0xa989e2d768acf5d87b54b8f2f6bc9cc89b453a', '-out', join(dir, 'leaf.pem'), '-days', '1');
    // CA first on purpose: the SET is unordered
    openssl('crl2pkcs7', '-nocrl', '-certfile', caPem, '-certfile', join(dir, 'leaf.pem'), '-outform', 'DER', '-out', join(dir, 'certs.p7'));
    const der = readFileSync(join(dir, 'certs.p7'));
    expect(certificatesFromPkcs7(der)).toHaveLength(2);
    const body = der.toString('base64').replace(/.{64}/g, '$&\r\n'); // RFC 8951 allows line breaks
    const issued = issuedFromEst(body, 'sensor-7', privateKey);
    const leaf = new X509Certificate(readFileSync(join(dir, 'leaf.pem')));
    // The serial's top bit is set: its canonical form keeps DER's leading 00, which Node's serialNumber drops.
    expect(issued.serial).toBe(canonicalSerial(leaf.serialNumber));
    expect(issued.chainPem).toHaveLength(1);
    expect(splitPem(issued.chainPem[0]!)[0]).toBe(splitPem(readFileSync(caPem, 'utf8'))[0]);
    expect(issued.notAfter).toBeGreaterThan(issued.notBefore);
  });

  it('rejects a reply with no cert for our key', () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const der = readFileSync(join(dir, 'certs.p7'));
    expect(() => issuedFromEst(der.toString('base64'), 'sensor-7', other.privateKey)).toThrow(/no certificate for our key/);
  });
});

describe('TLS context per certificate', () => {
  it('is built once per certificate, closed at once when released, and built anew if that certificate is used again', () => {
    const caKey = join(dir, 'ctx-ca.key');
    const caPem = join(dir, 'ctx-ca.pem');
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', caKey, '-out', caPem, '-subj', '/CN=Ctx CA', '-days', '1');
    const ca = readFileSync(caPem, 'utf8');
    const contexts = createCredentialContexts({ ca, sendChain: true });
    const creds = (n: number): DeviceCredentials => {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      writeFileSync(join(dir, 'ctx-leaf.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
      openssl('req', '-new', '-key', join(dir, 'ctx-leaf.key'), '-out', join(dir, 'ctx-leaf.csr'), '-subj', `/CN=dev-${n}`);
      openssl('x509', '-req', '-in', join(dir, 'ctx-leaf.csr'), '-CA', caPem, '-CAkey', caKey, '-CAcreateserial', '-out', join(dir, 'ctx-leaf.pem'), '-days', '1');
      const pem = readFileSync(join(dir, 'ctx-leaf.pem'), 'utf8');
      return { deviceId: `dev-${n}`, serial: `${n}`, certificatePem: pem, chainPem: [ca], notBefore: 0, notAfter: 1, privateKey };
    };
    // one device rotating 20 times: each certificate used, then released when its successor is in use
    let current = creds(0);
    const closed: number[] = [];
    for (let i = 1; i <= 20; i++) {
      const ctx = contexts(current);
      expect(contexts(current)).toBe(ctx);
      const native = (ctx as unknown as { context: { close(): void } }).context;
      const close = native.close.bind(native);
      native.close = () => (closed.push(i), close());
      const next = creds(i);
      contexts(next);
      contexts.release(current);
      expect(closed).toHaveLength(i);
      current = next;
    }
    // held: the current certificate's context only, however many rotations
    expect(contexts.held()).toBe(1);
    contexts.release(current);
    contexts.release(current);
    expect(contexts.held()).toBe(0);
    // a released certificate presented again gets a working context of its own
    const again = contexts(current);
    expect((again as unknown as { context: unknown }).context).not.toBeNull();
    expect(contexts.held()).toBe(1);
  });
});
