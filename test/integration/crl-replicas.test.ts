// Two `enrolld api` compositions over one Postgres (docs/architecture.md §7, "A CRL per issuing CA"): revocations through
// both share one CRL schedule. The rebuild decision is taken under a lock per environment on the database's clock, so
// rebuilds of an environment start at least CRL_MIN_INTERVAL apart across both replicas, never overlap, and each CRL
// number is used once.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { buildApi, type BuiltApi } from '../../server/src/compose/api.js';
import { loadConfig } from '../../server/src/config.js';
import { createLogger } from '../../server/src/logger.js';
import { report } from '../support/broker-harness.js';
import { createTestDatabase, insertCertificateRows, type TestDatabase } from '../support/pg.js';

const CRL_MIN_INTERVAL_MS = 1000;

describe('CRL rebuilds across API replicas over one database', () => {
  let db: TestDatabase;
  let home: string;
  const replicas: BuiltApi[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    home = await mkdtemp(path.join(tmpdir(), 'enrolld-crl-replicas-'));
    const config = loadConfig({
      ENROLLD_HOME: home,
      HTTPS_PORT: '0',
      LISTEN_HOST: '127.0.0.1',
      DATABASE_URL: db.url,
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
      CRL_VALIDITY: '7d',
      CRL_MIN_INTERVAL: '1s',
      DB_REVOCATION_POOL_MAX: '6',
      DB_CHECKOUT_TIMEOUT: '15s',
      JOBS_PREFIX: `crl-replicas-${process.pid}`,
    });
    // One after the other: the first creates the CA in the shared home, the second reads it.
    for (let i = 0; i < 2; i++) {
      const api = await buildApi(config, createLogger(config.logLevel));
      replicas.push(api);
      await api.listen();
    }
  });
  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.stop()));
    await db?.drop();
    if (home) await rm(home, { recursive: true, force: true });
  });

  const certificates = (prefix: string, count: number) => insertCertificateRows(db.pool, prefix, count, '7e');

  it('revocations through both replicas: rebuilds at least CRL_MIN_INTERVAL apart in all, at most ceil(T / interval) + 1, numbers used once', async () => {
    const serials = await certificates('crl-replicas', 600);
    const { rows: before } = await db.pool.query<{ n: string | null }>('SELECT max(crl_number) AS n FROM crls');
    const since = before[0]!.n ?? '0';
    // Every 50 ms one replica revokes a batch of 5 and the other one serial, alternating: both schedule rebuilds all along.
    const tickMs = 50;
    const perTick = 6;
    const calls: Array<Promise<unknown>> = [];
    const t0 = performance.now();
    for (let tick = 0; tick * perTick < serials.length; tick++) {
      const due = t0 + tick * tickMs;
      // Pacing the load, not waiting for a result.
      if (due > performance.now()) await new Promise((resolve) => setTimeout(resolve, due - performance.now()));
      const slice = serials.slice(tick * perTick, (tick + 1) * perTick);
      const [batcher, single] = tick % 2 === 0 ? [replicas[0]!, replicas[1]!] : [replicas[1]!, replicas[0]!];
      calls.push(batcher.useCases.revocation.revokeCertificates(slice.slice(1), { reason: 'superseded', actor: 'crl-replicas' }));
      calls.push(single.useCases.revocation.revokeCertificate(slice[0]!, { reason: 'keyCompromise', actor: 'crl-replicas' }));
    }
    await Promise.all(calls);
    // Each replica's current CRL: the one rebuild (by either replica) that covers every revocation committed before.
    const current = await Promise.all(replicas.map((r) => r.useCases.revocation.ensureCrlCurrent('default')));
    const elapsedMs = performance.now() - t0;

    const { rows } = await db.pool.query<{ crl_number: string; gap_ms: number | null; covers_seq: string }>(
      `SELECT crl_number, covers_seq,
              extract(epoch FROM created_at - lag(created_at) OVER (ORDER BY created_at)) * 1000 AS gap_ms
       FROM crls WHERE environment = 'default' AND crl_number > $1 ORDER BY created_at`,
      [since],
    );
    const { rows: distinct } = await db.pool.query<{ n: string }>(`SELECT count(DISTINCT crl_number) AS n FROM crls WHERE crl_number > $1`, [since]);
    const { rows: last } = await db.pool.query<{ seq: string }>(`SELECT max(revocation_seq) AS seq FROM certificates WHERE environment = 'default'`);
    const rebuilds = rows.length;
    const bound = Math.ceil(elapsedMs / CRL_MIN_INTERVAL_MS) + 1;
    const gaps = rows.map((r) => r.gap_ms).filter((g): g is number => g !== null);
    const minGapMs = gaps.length > 0 ? Math.min(...gaps) : null;
    // Rebuild numbers in the order they started: rising, so no two rebuilds ran at once and got numbers crossed.
    const numbers = rows.map((r) => BigInt(r.crl_number));
    const rising = numbers.every((n, i) => i === 0 || n > numbers[i - 1]!);
    report('CRL-REPLICAS', rebuilds <= bound && (minGapMs ?? Infinity) >= CRL_MIN_INTERVAL_MS - 1, {
      replicas: 2,
      revocations: serials.length,
      elapsedMs: Math.round(elapsedMs),
      rebuilds,
      bound,
      minGapMs: minGapMs === null ? null : +minGapMs.toFixed(1),
    });
    expect(rebuilds).toBeGreaterThan(1);
    expect(rebuilds).toBeLessThanOrEqual(bound);
    // created_at has microseconds; the decision compares milliseconds.
    expect(minGapMs).toBeGreaterThanOrEqual(CRL_MIN_INTERVAL_MS - 1);
    expect(Number(distinct[0]!.n)).toBe(rebuilds);
    expect(rising).toBe(true);
    // Both replicas serve the CRL that covers every revocation, whichever of them built it.
    expect(current[0]!.coversSeq).toBe(Number(last[0]!.seq));
    expect(current[1]!.coversSeq).toBe(Number(last[0]!.seq));
  });
});
