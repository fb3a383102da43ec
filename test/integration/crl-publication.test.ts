// CRL publication decoupled from each revocation (docs/architecture.md §7), through the real composition (`enrolld up`):
// GET /v1/crl validators, caching and 304 (RFC 9110 §13, RFC 9111 §5.2), and coalesced rebuilds under a steady stream
// of single and batched revocations, counted on /metrics and in the crls table.
import https from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { routes } from '@enrolld/protocol';
import { report } from '../support/broker-harness.js';
import { httpsRequest, postJson } from '../support/http.js';
import { opensslText } from '../support/openssl.js';
import { insertCertificateRows } from '../support/pg.js';
import { startTestServer, type TestServer } from '../support/server-harness.js';

const CRL_VALIDITY_SECONDS = 7 * 24 * 3600;
const CRL_MIN_INTERVAL_MS = 1000;
const STORED_REBUILDS = /enrolld_crl_rebuilds_total\{outcome="stored"\} (\d+)/;

interface CrlResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

describe('CRL publication', () => {
  let server: TestServer;
  let auth: Record<string, string>;

  beforeAll(async () => {
    // The revocations queue on the revocation lock; on a loaded 2-core machine the default pool (3 connections, 2 s to
    // get one) answers some of them 503, which is not what this test is about.
    server = await startTestServer({ env: { CRL_VALIDITY: '7d', CRL_MIN_INTERVAL: '1s', DB_REVOCATION_POOL_MAX: '10', DB_CHECKOUT_TIMEOUT: '15s' } });
    auth = { authorization: `Bearer ${server.adminToken}` };
  });
  afterAll(async () => {
    await server?.stop();
  });

  function getCrl(headers: Record<string, string> = {}): Promise<CrlResponse> {
    return new Promise((resolve, reject) => {
      https
        .get(server.apiUrl + routes.crl, { ca: server.rootPem, headers }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        })
        .on('error', reject);
    });
  }

  async function storedRebuilds(): Promise<number> {
    const text = (await httpsRequest(server.apiUrl + routes.metrics, server.rootPem)).text;
    return Number(STORED_REBUILDS.exec(text)?.[1] ?? 0);
  }

  async function crlCount(): Promise<number> {
    const { rows } = await server.db.pool.query<{ n: string }>('SELECT count(*) AS n FROM crls');
    return Number(rows[0]!.n);
  }

  const certificates = (prefix: string, count: number) => insertCertificateRows(server.db.pool, prefix, count, '7f');

  it('GET /v1/crl: ETag is the CRL number, Last-Modified thisUpdate, max-age the time left to nextUpdate; 304 when unchanged', async () => {
    const first = await getCrl();
    expect(first.status).toBe(200);
    const etag = String(first.headers.etag);
    const lastModified = String(first.headers['last-modified']);
    const text = (await opensslText('crl', first.body)).stdout;
    const crlNumber = /X509v3 CRL Number:\s*\n\s*(?:0x)?([0-9A-Fa-f]+)/.exec(text)?.[1];
    expect(crlNumber).toBeDefined();
    expect(etag).toBe(`"${BigInt(/^\d+$/.test(crlNumber!) ? crlNumber! : `0x${crlNumber}`).toString()}"`);
    const nextUpdateMs = Date.parse(lastModified) + CRL_VALIDITY_SECONDS * 1000;
    const maxAge = Number(/(?:^|,\s*)max-age=(\d+)/.exec(String(first.headers['cache-control']))?.[1]);
    expect(Math.abs(maxAge - (nextUpdateMs - Date.now()) / 1000)).toBeLessThan(5);

    const byEtag = await getCrl({ 'if-none-match': etag });
    const byWeakEtagList = await getCrl({ 'if-none-match': `"0", W/${etag}` });
    const byDate = await getCrl({ 'if-modified-since': lastModified });
    const olderDate = await getCrl({ 'if-modified-since': new Date(Date.parse(lastModified) - 1000).toUTCString() });
    const otherEtag = await getCrl({ 'if-none-match': '"0"', 'if-modified-since': lastModified });
    expect([byEtag, byWeakEtagList, byDate, olderDate, otherEtag].map((r) => r.status)).toEqual([304, 304, 304, 200, 200]);
    expect(byEtag.body.length).toBe(0);
    expect(byEtag.headers.etag).toBe(etag);
    expect(byEtag.headers['cache-control']).toMatch(/max-age=\d+/);

    // A revocation makes the next fetch a new CRL that lists it, so the old validator no longer matches.
    const [serial] = await certificates('crl-etag', 10);
    const revoked = await postJson(server.apiUrl + routes.adminRevokeCertificate(serial!), server.rootPem, { reason: 'keyCompromise' }, auth);
    expect(revoked.status).toBe(200);
    expect(revoked.json()).not.toHaveProperty('crlNumber');
    const after = await getCrl({ 'if-none-match': etag });
    expect(after.status).toBe(200);
    expect(after.headers.etag).not.toBe(etag);
    expect((await opensslText('crl', after.body)).stdout.toLowerCase()).toContain(serial!);
  });

  it('2,000 revocations at a steady rate over ~10 s, single and batched: at most ceil(T / CRL_MIN_INTERVAL) + 1 rebuilds', async () => {
    const serials = await certificates('crl-load', 2000);
    const revocation = server.running.useCases.revocation;
    const rebuildsBefore = await storedRebuilds();
    const crlsBefore = await crlCount();
    // Every 50 ms: a batch of 9 (as the rotation supersedes) and one admin revoke by serial over HTTP.
    const tickMs = 50;
    const perTick = 10;
    const calls: Array<Promise<unknown>> = [];
    const t0 = performance.now();
    for (let tick = 0; tick * perTick < serials.length; tick++) {
      const due = t0 + tick * tickMs;
      // Pacing the load, not waiting for a result.
      if (due > performance.now()) await new Promise((resolve) => setTimeout(resolve, due - performance.now()));
      const slice = serials.slice(tick * perTick, (tick + 1) * perTick);
      calls.push(revocation.revokeCertificates(slice.slice(1), { reason: 'superseded', actor: 'crl-load' }));
      calls.push(
        postJson(server.apiUrl + routes.adminRevokeCertificate(slice[0]!), server.rootPem, { reason: 'superseded' }, auth).then((res) => {
          if (res.status !== 200) throw new Error(`revoke answered ${res.status}`);
        }),
      );
    }
    await Promise.all(calls);
    // GET /v1/crl serves nothing older than the last revocation: this waits for the rebuild that covers them all.
    const crl = await getCrl();
    const elapsedMs = performance.now() - t0;
    const rebuilds = (await storedRebuilds()) - rebuildsBefore;
    const bound = Math.ceil(elapsedMs / CRL_MIN_INTERVAL_MS) + 1;
    const listed = (await opensslText('crl', crl.body)).stdout.toLowerCase();
    const missing = serials.filter((s) => !listed.includes(s)).length;
    report('CRL-01', rebuilds <= bound && missing === 0, { revocations: serials.length, elapsedMs: Math.round(elapsedMs), rebuilds, bound, missing });
    expect(crl.status).toBe(200);
    expect(missing).toBe(0);
    expect(rebuilds).toBeGreaterThan(1);
    expect(rebuilds).toBeLessThanOrEqual(bound);
    expect((await crlCount()) - crlsBefore).toBe(rebuilds);
  }, 60_000);
});
