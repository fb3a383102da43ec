// PKCS#10 CSRs built by hand at run time (never committed): well-formed ones for every test that enrolls, and
// hostile ones (wrong algorithms, bad keys, requested extensions, broken encodings) for the CSR-* tests.
import { constants, createPrivateKey, createPublicKey, generateKeyPairSync, generatePrimeSync, randomBytes, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import {
  derBitString,
  derBoolean,
  derExplicit,
  derImplicit,
  derInteger,
  derNull,
  derOctetString,
  derOid,
  derSequence,
  derSet,
  derUtf8String,
  toPem,
} from '@enrolld/core/ca/der.js';
import { OID } from '@enrolld/core/ca/oids.js';
import { EnrollError } from '@enrolld/core/errors.js';
import type { ProblemKind } from '@enrolld/protocol';

export type TestKeyKind =
  | 'P-256'
  | 'P-384'
  | 'P-224'
  | 'P-521'
  | 'secp256k1'
  | 'brainpoolP256r1'
  | 'ed25519'
  | { rsa: number; publicExponent?: number };

const CURVE_NAMES: Record<string, string> = {
  'P-256': 'prime256v1',
  'P-384': 'secp384r1',
  'P-224': 'secp224r1',
  'P-521': 'secp521r1',
  secp256k1: 'secp256k1',
  brainpoolP256r1: 'brainpoolP256r1',
};

export interface TestKeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
  spkiDer: Buffer;
}

export function generateTestKey(kind: TestKeyKind = 'P-256'): TestKeyPair {
  let pair: { privateKey: KeyObject; publicKey: KeyObject };
  if (typeof kind === 'object') {
    pair = generateKeyPairSync('rsa', { modulusLength: kind.rsa, publicExponent: kind.publicExponent ?? 65537 });
  } else if (kind === 'ed25519') {
    pair = generateKeyPairSync('ed25519');
  } else {
    pair = generateKeyPairSync('ec', { namedCurve: CURVE_NAMES[kind]! });
  }
  return { ...pair, spkiDer: pair.publicKey.export({ format: 'der', type: 'spki' }) };
}

export type SanSpec =
  | { type: 'uri' | 'dns' | 'email'; value: string }
  | { type: 'ip'; value: string }
  | { type: 'other'; der: Buffer };

export interface CsrSpec {
  /** Signing key (private); default a fresh P-256 key. */
  key?: KeyObject;
  /** Subject CN; absent means no CN. */
  cn?: string;
  /** Further subject attributes, each in its own RDN. */
  subjectAttributes?: Array<{ oid: string; value: string }>;
  /** Raw subject Name DER (overrides cn/subjectAttributes). */
  subjectDer?: Buffer;
  sans?: SanSpec[];
  /** Raw Extension DERs requested besides the SAN (CSR-08). */
  extensions?: Buffer[];
  /** Raw Attribute DERs appended to the attributes. */
  attributes?: Buffer[];
  /** Leave out the [0] attributes field entirely. */
  omitAttributesField?: boolean;
  /** SubjectPublicKeyInfo to put in the CSR instead of the signing key's. */
  spkiDer?: Buffer;
  /** Raw AlgorithmIdentifier DER for the signature (default follows the key type). */
  signatureAlgorithmDer?: Buffer;
  /** Custom signer over the CertificationRequestInfo DER. */
  signer?: (cri: Buffer) => Buffer;
}

export interface BuiltCsr {
  der: Buffer;
  pem: string;
  /** The CertificationRequestInfo DER (what the signature covers). */
  cri: Buffer;
  privateKey: KeyObject;
  spkiDer: Buffer;
}

export const algorithmId = (oid: string, params?: Buffer): Buffer => (params ? derSequence(derOid(oid), params) : derSequence(derOid(oid)));

export function sanExtension(sans: SanSpec[]): Buffer {
  const names = sans.map((s) => {
    switch (s.type) {
      case 'email':
        return derImplicit(1, Buffer.from(s.value, 'ascii'));
      case 'dns':
        return derImplicit(2, Buffer.from(s.value, 'ascii'));
      case 'uri':
        return derImplicit(6, Buffer.from(s.value, 'ascii'));
      case 'ip':
        return derImplicit(7, ipBytes(s.value));
      case 'other':
        return s.der;
    }
  });
  return extension(OID.subjectAltName, false, derSequence(...names));
}

export function extension(oid: string, critical: boolean, value: Buffer): Buffer {
  return critical ? derSequence(derOid(oid), derBoolean(true), derOctetString(value)) : derSequence(derOid(oid), derOctetString(value));
}

export function extensionRequestAttribute(extensions: Buffer[]): Buffer {
  return derSequence(derOid(OID.extensionRequest), derSet(derSequence(...extensions)));
}

function ipBytes(ip: string): Buffer {
  if (ip.includes(':')) {
    const [head = '', tail = ''] = ip.split('::');
    const h = head ? head.split(':') : [];
    const t = tail ? tail.split(':') : [];
    const groups = [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t];
    const out = Buffer.alloc(16);
    groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
    return out;
  }
  return Buffer.from(ip.split('.').map(Number));
}

function defaultAlgorithm(key: KeyObject): { algId: Buffer; signer: (cri: Buffer) => Buffer } {
  if (key.asymmetricKeyType === 'ec') {
    const p384 = key.asymmetricKeyDetails?.namedCurve === 'secp384r1';
    const hash = p384 ? 'sha384' : 'sha256';
    return { algId: algorithmId(p384 ? OID.ecdsaWithSha384 : OID.ecdsaWithSha256), signer: (cri) => sign(hash, cri, key) };
  }
  if (key.asymmetricKeyType === 'rsa') {
    return {
      algId: algorithmId(OID.sha256WithRsa, derNull()),
      signer: (cri) => sign('sha256', cri, { key, padding: constants.RSA_PKCS1_PADDING }),
    };
  }
  if (key.asymmetricKeyType === 'ed25519') return { algId: algorithmId(OID.ed25519), signer: (cri) => sign(null, cri, key) };
  throw new Error(`no default signature algorithm for ${key.asymmetricKeyType}`);
}

export function subjectName(spec: Pick<CsrSpec, 'cn' | 'subjectAttributes' | 'subjectDer'>): Buffer {
  if (spec.subjectDer) return spec.subjectDer;
  const rdns: Buffer[] = [];
  if (spec.cn !== undefined) rdns.push(derSet(derSequence(derOid(OID.commonName), derUtf8String(spec.cn))));
  for (const a of spec.subjectAttributes ?? []) rdns.push(derSet(derSequence(derOid(a.oid), derUtf8String(a.value))));
  return derSequence(...rdns);
}

/** Builds a CSR synchronously. */
export function buildCsr(spec: CsrSpec = {}): BuiltCsr {
  const privateKey = spec.key ?? generateTestKey('P-256').privateKey;
  const spkiDer = spec.spkiDer ?? createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  const extensions = [...(spec.sans && spec.sans.length > 0 ? [sanExtension(spec.sans)] : []), ...(spec.extensions ?? [])];
  const attributes = [...(extensions.length > 0 ? [extensionRequestAttribute(extensions)] : []), ...(spec.attributes ?? [])];
  const cri = derSequence(
    derInteger(0),
    subjectName(spec),
    spkiDer,
    ...(spec.omitAttributesField ? [] : [derExplicit(0, ...attributes)]),
  );
  const def = spec.signatureAlgorithmDer && spec.signer ? undefined : defaultAlgorithm(privateKey);
  const algId = spec.signatureAlgorithmDer ?? def!.algId;
  const signature = (spec.signer ?? def!.signer)(cri);
  const der = derSequence(cri, algId, derBitString(signature));
  return { der, pem: toPem('CERTIFICATE REQUEST', der), cri, privateKey, spkiDer };
}

export interface MakeCsrOptions {
  /** Private key; default a fresh P-256 key. */
  key?: KeyObject;
  /** Subject CN, usually the device id. Absent: empty subject (also accepted by the identity rule). */
  cn?: string;
  sans?: SanSpec[];
}

/** A well-formed CSR for a device: P-256 key by default, CN=<cn>, optional SANs. Used by every enrollment test. */
export async function makeCsr(options: MakeCsrOptions = {}): Promise<{ pem: string; der: Buffer; privateKey: KeyObject; spkiDer: Buffer }> {
  const built = buildCsr({
    ...(options.key ? { key: options.key } : {}),
    ...(options.cn !== undefined ? { cn: options.cn } : {}),
    ...(options.sans ? { sans: options.sans } : {}),
  });
  return { pem: built.pem, der: built.der, privateKey: built.privateKey, spkiDer: built.spkiDer };
}

/** A random device id in the protocol's charset. */
export function randomDeviceId(prefix = 'dev'): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

/**
 * Runs fn and returns the EnrollError it threw; throws if fn returned or threw anything else. A client fault must
 * surface as its 4xx kind, never as a plain Error (which the HTTP layer would turn into a 500).
 */
export function enrollErrorOf(fn: () => unknown): EnrollError {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  if (!(thrown instanceof EnrollError)) {
    throw new Error(`expected an EnrollError, got ${thrown === undefined ? 'no error' : String(thrown)}`);
  }
  return thrown;
}

/** `{ kind, detail }` of the EnrollError fn throws, for one `toEqual`/`toMatchObject` per case. */
export function rejectionOf(fn: () => unknown): { kind: ProblemKind; detail: string } {
  const error = enrollErrorOf(fn);
  return { kind: error.kind, detail: error.detail };
}

/** An EC SubjectPublicKeyInfo with any curve OID (or raw parameters) and any point bytes. */
export function ecSpki(curve: string | Buffer | null, point: Buffer): Buffer {
  const params = curve === null ? [] : [typeof curve === 'string' ? derOid(curve) : curve];
  return derSequence(derSequence(derOid(OID.ecPublicKey), ...params), derBitString(point));
}

/** An RSA SubjectPublicKeyInfo with any modulus and exponent. */
export function rsaSpki(n: bigint, e: bigint, params: Buffer | null = derNull()): Buffer {
  return derSequence(
    params ? derSequence(derOid(OID.rsaEncryption), params) : derSequence(derOid(OID.rsaEncryption)),
    derBitString(derSequence(derInteger(n), derInteger(e))),
  );
}

/** A random odd integer of exactly `bits` bits. */
export function randomOddInteger(bits: number): bigint {
  const bytes = randomBytes(Math.ceil(bits / 8));
  let n = BigInt('0x' + bytes.toString('hex'));
  n &= (1n << BigInt(bits)) - 1n;
  n |= 1n << BigInt(bits - 1);
  return n | 1n;
}

function modInverse(a: bigint, m: bigint): bigint {
  let [oldR, r] = [((a % m) + m) % m, m];
  let [oldS, s] = [1n, 0n];
  while (r !== 0n) {
    const q = oldR / r;
    [oldR, r] = [r, oldR - q * r];
    [oldS, s] = [s, oldS - q * s];
  }
  if (oldR !== 1n) throw new Error('not invertible');
  return ((oldS % m) + m) % m;
}

const toB64url = (v: bigint): string => {
  let hex = v.toString(16);
  if (hex.length % 2) hex = '0' + hex;
  return Buffer.from(hex, 'hex').toString('base64url');
};

/**
 * An RSA key whose modulus has exactly `bits` bits (OpenSSL's generator rounds odd sizes such as 2049 down to
 * 2048), with e = 65537, built from two primes of about bits/2.
 */
export function rsaKeyOfExactBits(bits: number): TestKeyPair {
  const e = 65537n;
  for (;;) {
    const p = generatePrimeSync(Math.ceil(bits / 2), { bigint: true });
    // OpenSSL sets the top two bits of each prime, so ceil(b/2)- and floor(b/2)-bit primes give exactly b bits.
    const q = generatePrimeSync(Math.floor(bits / 2), { bigint: true });
    const n = p * q;
    if (p === q || n.toString(2).length !== bits) continue;
    const phi = (p - 1n) * (q - 1n);
    if (phi % e === 0n) continue;
    const d = modInverse(e, phi);
    const privateKey = createPrivateKey({
      key: {
        kty: 'RSA',
        n: toB64url(n),
        e: toB64url(e),
        d: toB64url(d),
        p: toB64url(p),
        q: toB64url(q),
        dp: toB64url(d % (p - 1n)),
        dq: toB64url(d % (q - 1n)),
        qi: toB64url(modInverse(q, p)),
      },
      format: 'jwk',
    });
    const publicKey = createPublicKey(privateKey);
    return { privateKey, publicKey, spkiDer: publicKey.export({ format: 'der', type: 'spki' }) };
  }
}

/** A fresh CA hierarchy and its issuing CA, for tests that issue certificates (loaded lazily: @peculiar/x509). */
export async function createTestIssuingCa(options: { now?: Date; serverNames?: string[] } = {}) {
  const { createCaMaterial, createIssuingCa } = await import('@enrolld/core/ca/index.js');
  const material = await createCaMaterial({ now: options.now ?? new Date(), serverNames: options.serverNames ?? [] });
  const ca = createIssuingCa({
    issuingCertificatePem: material.issuingCertPem,
    issuingPrivateKey: createPrivateKey(material.issuingKeyPem),
    rootCertificatePem: material.rootCertPem,
  });
  return { material, ca };
}
