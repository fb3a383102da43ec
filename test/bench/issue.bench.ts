// `npm run bench:issue`: issuance-core throughput against a plain pkijs + native WebCrypto loop over the same CSRs,
// in the same process and run. One JSON line per figure: {"metric","value","unit","baseline","ratio"}, where ratio
// is oriented so that > 1 means better than the baseline. Run pinned for a per-core figure:
//   taskset -c 0 npm run bench:issue
// Environment: BENCH_SECONDS (per measured loop, default 2), BENCH_ROUNDS (alternating rounds, default 5),
// BENCH_CSRS (distinct CSRs, default 2000).
import { X509Certificate, hash as nodeHash, webcrypto } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import {
  assertCsrNamesIdentity,
  decodeCsr,
  generateSerial,
  importPublicKey,
  importPublicKeyFast,
  parseCsr,
  parseCsrAsync,
  verifyCsrSignature,
} from '@enrolld/core/ca/index.js';
import type { DeviceCertificateSpec, DeviceIssuingCa, ParsedCsr } from '@enrolld/core/ca/index.js';
import { fromPem } from '@enrolld/core/ca/der.js';
import { buildCsr, createTestIssuingCa } from '../support/csr-factory.js';

export interface Figure {
  metric: string;
  value: number;
  unit: string;
  baseline: number | null;
  ratio: number | null;
}

export function printFigure(figure: Figure): void {
  process.stdout.write(`${JSON.stringify(figure)}\n`);
}

const round = (v: number, digits = 1): number => Number(v.toFixed(digits));
const median = (values: number[]): number => {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

interface LoopLimits {
  maxMs: number;
  maxIterations: number;
}

interface Rate {
  /** Operations per wall-clock second. */
  wall: number;
  /** Operations per second of process CPU time (all threads): robust when the VM is shared and we get descheduled. */
  cpu: number;
}

/** Runs `fn` over the inputs in order, time-bounded and iteration-capped. */
async function measureRate(fn: (i: number) => unknown, limits: LoopLimits): Promise<Rate> {
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  let n = 0;
  // Check the clock every 16 iterations: cheap, and a bound of a few ms over maxMs is irrelevant.
  while (n < limits.maxIterations) {
    await fn(n);
    n++;
    if ((n & 15) === 0 && performance.now() - start >= limits.maxMs) break;
  }
  const elapsed = performance.now() - start;
  const cpu = process.cpuUsage(cpu0);
  return { wall: (n / elapsed) * 1000, cpu: (n / (cpu.user + cpu.system)) * 1e6 };
}

// ─────────────── baseline: plain pkijs 4 + native WebCrypto ───────────────

interface BaselineIssuer {
  issue(csrPem: string, deviceId: string, notBefore: Date, notAfter: Date): Promise<Buffer>;
}

async function createPkijsBaseline(issuingCertPem: string, issuingKeyPem: string): Promise<BaselineIssuer> {
  const crypto = webcrypto as unknown as ConstructorParameters<typeof pkijs.CryptoEngine>[0]['crypto'];
  // Native WebCrypto (@peculiar/webcrypto re-decodes the key per sign on Node 20: 6–10× slower).
  pkijs.setEngine('native', new pkijs.CryptoEngine({ name: 'native', crypto }));
  const issuing = pkijs.Certificate.fromBER(fromPem(issuingCertPem, 'CERTIFICATE'));
  const signingKey = await crypto.subtle.importKey('pkcs8', fromPem(issuingKeyPem, 'PRIVATE KEY'), { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
  const skiExt = issuing.extensions?.find((e) => e.extnID === '2.5.29.14');
  if (!skiExt) throw new Error('issuing CA has no SKI');
  const issuerKeyId = (asn1js.fromBER(skiExt.extnValue.valueBlock.valueHexView).result as asn1js.OctetString).valueBlock.valueHexView;
  return {
    async issue(csrPem, deviceId, notBefore, notAfter) {
      const b64 = csrPem.replace(/-----(BEGIN|END) CERTIFICATE REQUEST-----|\s+/g, '');
      const csr = pkijs.CertificationRequest.fromBER(Buffer.from(b64, 'base64'));
      if (!(await csr.verify())) throw new Error('baseline: CSR signature');
      const cert = new pkijs.Certificate();
      cert.version = 2;
      cert.serialNumber = new asn1js.Integer({ valueHex: generateSerial() });
      cert.issuer = issuing.subject;
      cert.subject.typesAndValues.push(new pkijs.AttributeTypeAndValue({ type: '2.5.4.3', value: new asn1js.Utf8String({ value: deviceId }) }));
      cert.notBefore.value = notBefore;
      cert.notAfter.value = notAfter;
      cert.subjectPublicKeyInfo = csr.subjectPublicKeyInfo;
      const ski = await crypto.subtle.digest('SHA-1', csr.subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView);
      cert.extensions = [
        new pkijs.Extension({ extnID: '2.5.29.19', critical: true, extnValue: new pkijs.BasicConstraints({ cA: false }).toSchema().toBER(false) }),
        new pkijs.Extension({ extnID: '2.5.29.15', critical: true, extnValue: new asn1js.BitString({ valueHex: new Uint8Array([0x80]).buffer, unusedBits: 7 }).toBER(false) }),
        new pkijs.Extension({ extnID: '2.5.29.37', extnValue: new pkijs.ExtKeyUsage({ keyPurposes: ['1.3.6.1.5.5.7.3.2'] }).toSchema().toBER(false) }),
        new pkijs.Extension({ extnID: '2.5.29.14', extnValue: new asn1js.OctetString({ valueHex: ski }).toBER(false) }),
        new pkijs.Extension({
          extnID: '2.5.29.35',
          extnValue: new pkijs.AuthorityKeyIdentifier({ keyIdentifier: new asn1js.OctetString({ valueHex: issuerKeyId }) }).toSchema().toBER(false),
        }),
        new pkijs.Extension({
          extnID: '2.5.29.17',
          extnValue: new pkijs.GeneralNames({ names: [new pkijs.GeneralName({ type: 6, value: `urn:enrolld:device:${deviceId}` })] }).toSchema().toBER(false),
        }),
      ];
      await cert.sign(signingKey, 'SHA-256'); // PKI.js signs with SHA-1 unless told 
      return Buffer.from(cert.toSchema(true).toBER(false));
    },
  };
}

// ─────────────── ours ───────────────

/** Everything after parsing, shared by both paths: identity, validity, TBS, sign, profile self-check. */
function issueParsed(ca: DeviceIssuingCa, csr: ParsedCsr, deviceId: string, now: Date): Buffer {
  assertCsrNamesIdentity(csr, 'device', deviceId);
  const { notBefore, notAfter } = ca.deviceValidity(now, LIFETIME, BACKDATE);
  const spec: DeviceCertificateSpec = { kind: 'device' as const, profile: { name: 'device', version: 1 }, deviceId, serial: generateSerial(), spkiDer: csr.spkiDer, notBefore, notAfter };
  const der = ca.signCertificate(ca.buildDeviceTbs(spec));
  ca.checkIssued(der, spec);
  return der;
}

function oursSync(ca: DeviceIssuingCa, csrPem: string, deviceId: string, now: Date): Buffer {
  return issueParsed(ca, parseCsr(csrPem), deviceId, now);
}

async function oursAsync(ca: DeviceIssuingCa, csrPem: string, deviceId: string, now: Date): Promise<Buffer> {
  return issueParsed(ca, await parseCsrAsync(csrPem), deviceId, now);
}

const LIFETIME = 90 * 86_400;
const BACKDATE = 60;

/** Where the time of one issuance goes, step by step (µs per certificate), over the same CSRs. */
async function stepProfile(ca: DeviceIssuingCa, csrs: string[], ids: string[], now: Date, iterations: number): Promise<Figure[]> {
  const t = { decode: 0, importFast: 0, importJwk: 0, verify: 0, hashes: 0, validity: 0, build: 0, sign: 0, check: 0 };
  const tick = (): bigint => process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) {
    const k = i % csrs.length;
    let t0 = tick();
    const decoded = decodeCsr(csrs[k]!);
    let t1 = tick();
    t.decode += Number(t1 - t0);
    t0 = tick();
    const key = await importPublicKeyFast(decoded.key);
    t1 = tick();
    t.importFast += Number(t1 - t0);
    t0 = tick();
    importPublicKey(decoded.key);
    t1 = tick();
    t.importJwk += Number(t1 - t0);
    t0 = tick();
    verifyCsrSignature(decoded, key);
    t1 = tick();
    t.verify += Number(t1 - t0);
    t0 = tick();
    nodeHash('sha256', decoded.der, 'buffer');
    nodeHash('sha256', decoded.spkiDer, 'buffer');
    t1 = tick();
    t.hashes += Number(t1 - t0);
    t0 = tick();
    const { notBefore, notAfter } = ca.deviceValidity(now, LIFETIME, BACKDATE);
    const spec: DeviceCertificateSpec = { kind: 'device' as const, profile: { name: 'device', version: 1 }, deviceId: ids[k]!, serial: generateSerial(), spkiDer: decoded.spkiDer, notBefore, notAfter };
    t1 = tick();
    t.validity += Number(t1 - t0);
    t0 = tick();
    const tbs = ca.buildDeviceTbs(spec);
    t1 = tick();
    t.build += Number(t1 - t0);
    t0 = tick();
    const der = ca.signCertificate(tbs);
    t1 = tick();
    t.sign += Number(t1 - t0);
    t0 = tick();
    ca.checkIssued(der, spec);
    t1 = tick();
    t.check += Number(t1 - t0);
  }
  const labels: Record<keyof typeof t, string> = {
    decode: 'decode (PEM, strict DER walk, structure, alg allow-list, key policy, names)',
    importFast: 'key import, WebCrypto raw (used by parseCsrAsync)',
    importJwk: 'key import, JWK (used by parseCsr; not part of the async path)',
    verify: 'CSR signature verify (first use of the key)',
    hashes: 'sha256 of CSR and SPKI',
    validity: 'serial + validity + spec',
    build: 'buildDeviceTbs (template)',
    sign: 'signCertificate (ECDSA P-256 sign + assemble)',
    check: 'checkIssued (re-parse + profile check + SKI SHA-1)',
  };
  return (Object.keys(t) as Array<keyof typeof t>).map((k) => ({
    metric: `issuance core step: ${labels[k]}`,
    value: round(t[k] / iterations / 1000, 2),
    unit: 'µs/cert',
    baseline: null,
    ratio: null,
  }));
}

export interface BenchIssuanceCoreOptions {
  csrCount?: number;
  secondsPerLoop?: number;
  rounds?: number;
  /** Print each figure as it is measured (default true when run as a script). */
  print?: boolean;
}

/**
 * Issuance core (CSR parse + verify → build → sign → DER, plus our post-issuance check) against a plain pkijs +
 * native WebCrypto loop over the same CSRs: same process, single thread, warm-up first, alternating rounds,
 * time-bounded and iteration-capped loops; medians reported.
 */
export async function benchIssuanceCore(options: BenchIssuanceCoreOptions = {}): Promise<Figure[]> {
  const csrCount = options.csrCount ?? 2000;
  const maxMs = (options.secondsPerLoop ?? 2) * 1000;
  const rounds = options.rounds ?? 5;
  const emit = (f: Figure): Figure => {
    if (options.print) printFigure(f);
    return f;
  };

  const { ca, material } = await createTestIssuingCa();
  const ids = Array.from({ length: csrCount }, (_, i) => `bench-${String(i).padStart(5, '0')}`);
  // P-256 device CSRs (CN = device id), generated up front as PEM, as the HTTP API receives them.
  const csrs = ids.map((id) => buildCsr({ cn: id }).pem);
  const baseline = await createPkijsBaseline(material.issuingCertPem, material.issuingKeyPem);
  const now = new Date();
  const { notBefore, notAfter } = ca.deviceValidity(now, LIFETIME, BACKDATE);

  // Both sides must produce valid certificates signed by the same CA; check one of each before timing anything.
  const issuingX509 = new X509Certificate(material.issuingCertPem);
  for (const der of [await baseline.issue(csrs[0]!, ids[0]!, notBefore, notAfter), await oursAsync(ca, csrs[0]!, ids[0]!, now), oursSync(ca, csrs[0]!, ids[0]!, now)]) {
    const cert = new X509Certificate(der);
    if (!cert.verify(issuingX509.publicKey) || cert.subject !== `CN=${ids[0]}`) throw new Error('bench: an issued certificate does not verify');
  }

  const loops = {
    baseline: (i: number) => baseline.issue(csrs[i % csrCount]!, ids[i % csrCount]!, notBefore, notAfter),
    oursAsync: (i: number) => oursAsync(ca, csrs[i % csrCount]!, ids[i % csrCount]!, now),
    oursSync: (i: number) => oursSync(ca, csrs[i % csrCount]!, ids[i % csrCount]!, now),
  };
  // Warm-up: JIT, OpenSSL caches, allocator.
  for (const fn of Object.values(loops)) await measureRate(fn, { maxMs: 1000, maxIterations: 500 });

  const results: Record<keyof typeof loops, Rate[]> = { baseline: [], oursAsync: [], oursSync: [] };
  for (let r = 0; r < rounds; r++) {
    // Alternate so that drift on a shared VM hits every side alike; start each loop at a different CSR offset.
    for (const name of Object.keys(loops) as Array<keyof typeof loops>) {
      const offset = (r * 677) % csrCount;
      results[name].push(await measureRate((i) => loops[name](i + offset), { maxMs, maxIterations: 50_000 }));
    }
  }
  const wall = (name: keyof typeof loops): number => median(results[name].map((r) => r.wall));
  const cpu = (name: keyof typeof loops): number => median(results[name].map((r) => r.cpu));
  const base = wall('baseline');
  const figures: Figure[] = [];
  const rate = (metric: string, value: number, baseline: number): void => {
    figures.push(emit({ metric, value: round(value), unit: 'certs/s/core', baseline: round(baseline), ratio: round(value / baseline, 2) }));
  };
  rate('issuance core, pkijs 4 + native WebCrypto (baseline)', base, base);
  rate('issuance core, enrolld (parseCsrAsync → build → sign → checkIssued)', wall('oursAsync'), base);
  rate('issuance core, enrolld sync (parseCsr → build → sign → checkIssued)', wall('oursSync'), base);
  figures.push(emit({ metric: 'issuance core, enrolld per cert', value: round(1e6 / wall('oursAsync'), 1), unit: 'µs/cert', baseline: round(1e6 / base, 1), ratio: round(wall('oursAsync') / base, 2) }));
  // The same loops per second of process CPU time, so a noisy neighbour on the shared VM does not skew the ratio.
  rate('issuance core per CPU-second, pkijs 4 + native WebCrypto (baseline)', cpu('baseline'), cpu('baseline'));
  rate('issuance core per CPU-second, enrolld (parseCsrAsync path)', cpu('oursAsync'), cpu('baseline'));
  rate('issuance core per CPU-second, enrolld sync (parseCsr path)', cpu('oursSync'), cpu('baseline'));
  for (const f of await stepProfile(ca, csrs, ids, now, Math.min(4000, csrCount * 2))) figures.push(emit(f));
  return figures;
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) {
  await benchIssuanceCore({
    csrCount: Number(process.env.BENCH_CSRS ?? 2000),
    secondsPerLoop: Number(process.env.BENCH_SECONDS ?? 2),
    rounds: Number(process.env.BENCH_ROUNDS ?? 5),
    print: true,
  });
}
