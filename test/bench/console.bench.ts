// `npm run bench:console`: the fleet administration figures, one JSON line each {"metric","value","unit","baseline","ratio"},
// every baseline measured in the same run (ratio > 1 is better than the baseline).
//   bulk    BENCH_DEVICES (10,000) devices enrolled over HTTP (one token batch) and connected to a real `enrolld up`
//           process over mTLS; one bulk revocation of all of them by their token batch: time from the POST until every socket is closed, and CRL rebuilds it cost.
//           Baseline: single revocations (POST /v1/admin/devices/:id/revoke, one after the other) of BENCH_SINGLE devices.
//   fleet   BENCH_FLEET (100,000) devices: the fleet page (GET /v1/admin/fleet, 50 rows) first page and a deep page by
//           keyset. Baseline for the deep page: the same search paged by OFFSET. Then connected=true / connected=false
//           (presence rows of one live broker node for 10% of the devices, and for 100 of them), first and deep pages;
//           baseline: the unfiltered page at the same position.
//   audit   BENCH_AUDIT_ROWS (1,000,000) audit rows appended through the chain trigger, then GET /v1/admin/audit/verify.
//           Baseline: reading the same rows without checking them.
// BENCH_PHASES=bulk,fleet,audit picks phases.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { routes, type BulkRevocationJobBody, type CreatedToken, type EnrollResponse, type FleetPage } from '@enrolld/protocol';
import { percentile } from '../support/broker-harness.js';
import { makeCsr } from '../support/csr-factory.js';
import { httpsRequest, postJson } from '../support/http.js';
import { createPgFleetStore } from '@enrolld/db';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { freePort, spawnEnrolld, type EnrolldProcess } from '../support/processes.js';

const PHASES = new Set((process.env.BENCH_PHASES ?? 'bulk,fleet,audit').split(','));
const DEVICES = Number(process.env.BENCH_DEVICES ?? 10_000);
const SINGLE = Number(process.env.BENCH_SINGLE ?? 300);
const FLEET = Number(process.env.BENCH_FLEET ?? 100_000);
const AUDIT_ROWS = Number(process.env.BENCH_AUDIT_ROWS ?? 1_000_000);
const REPEAT = 15;

function line(metric: string, value: number, unit: string, baseline: number | null, ratio: number | null, extra: Record<string, unknown> = {}): void {
  const round = (x: number | null) => (x === null || !Number.isFinite(x) ? x : +x.toFixed(3));
  process.stdout.write(`${JSON.stringify({ metric, value: round(value), unit, baseline: round(baseline), ratio: round(ratio), ...extra })}\n`);
}
const note = (text: string) => process.stderr.write(`${text}\n`);

interface Server {
  db: TestDatabase;
  home: string;
  up: EnrolldProcess;
  apiUrl: string;
  mqttsPort: number;
  rootPem: string;
  chainPem: string;
  auth: Record<string, string>;
  stop(): Promise<void>;
}

async function startServer(): Promise<Server> {
  const db = await createTestDatabase();
  const home = await mkdtemp(path.join(tmpdir(), 'enrolld-bench-console-'));
  const httpsPort = await freePort();
  const mqttsPort = await freePort();
  const up = await spawnEnrolld({
    ENROLLD_HOME: home,
    DATABASE_URL: db.url,
    HTTPS_PORT: String(httpsPort),
    MQTTS_PORT: String(mqttsPort),
    LISTEN_HOST: '127.0.0.1',
    JOBS_PREFIX: `enrolld-bench-${randomBytes(6).toString('hex')}`,
  });
  const rootPem = await readFile(path.join(home, 'ca', 'root.pem'), 'utf8');
  const chainPem = await readFile(path.join(home, 'ca', 'chain.pem'), 'utf8');
  const auth = { authorization: `Bearer ${(await readFile(path.join(home, 'admin-token'), 'utf8')).trim()}` };
  return {
    db,
    home,
    up,
    apiUrl: `https://localhost:${httpsPort}`,
    mqttsPort,
    rootPem,
    chainPem,
    auth,
    async stop() {
      await up.stop();
      await db.drop();
      await rm(home, { recursive: true, force: true });
    },
  };
}

async function metricValue(s: Server, name: string): Promise<number> {
  const text = (await httpsRequest(s.apiUrl + routes.metrics, s.rootPem)).text;
  const m = new RegExp(`^${name.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

interface Connected {
  deviceId: string;
  closed: Promise<number>;
  isOpen(): boolean;
}

/** Enrolls `count` devices named prefix0000… over HTTP (token batch, one CSR each) and holds one raw MQTT session each. */
async function enrollAndConnect(s: Server, prefix: string, count: number): Promise<Connected[] & { batchId: string }> {
  const tokens = (await postJson(s.apiUrl + routes.adminTokens, s.rootPem, { prefix, count, ttlSeconds: 3600 }, s.auth)).json<CreatedToken[]>();
  const issuing = s.chainPem.split(/(?<=-----END CERTIFICATE-----\n?)/)[0]!;
  const out: Connected[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < tokens.length) {
        const t = tokens[next++]!;
        const csr = await makeCsr({ cn: t.deviceId });
        const res = await postJson(s.apiUrl + routes.enroll, s.rootPem, { token: t.token, csr: csr.pem });
        if (res.status !== 201) throw new Error(`enroll ${t.deviceId}: ${res.status} ${res.text}`);
        const body = res.json<EnrollResponse>();
        const key = csr.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
        out.push(await connectRaw(s, t.deviceId, key, body.certificate + issuing));
        if (out.length % 1000 === 0) note(`${out.length}/${count} enrolled and connected (${((performance.now() - started) / 1000).toFixed(0)} s)`);
      }
    }),
  );
  return Object.assign(out, { batchId: tokens[0]!.batchId });
}

/** MQTT 3.1.1 CONNECT, clean session, keepalive 0 (§3.1.2.10: none), so an idle session stays until it is cut. */
function connectPacket(clientId: string): Buffer {
  const id = Buffer.from(clientId);
  const variableHeader = Buffer.from([0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x00]);
  return Buffer.concat([Buffer.from([0x10, variableHeader.length + 2 + id.length]), variableHeader, Buffer.from([id.length >> 8, id.length & 255]), id]);
}

function connectRaw(s: Server, deviceId: string, key: string, cert: string): Promise<Connected> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: s.mqttsPort, servername: 'localhost', ca: s.rootPem, key, cert });
    let open = true;
    const closed = new Promise<number>((done) => socket.once('close', () => {
      open = false;
      done(performance.now());
    }));
    socket.once('error', reject);
    socket.once('secureConnect', () => socket.write(connectPacket(deviceId)));
    socket.once('data', (data) => {
      if (data[0] !== 0x20 || data[3] !== 0) reject(new Error(`${deviceId}: CONNACK ${data[3]}`));
      else resolve({ deviceId, closed, isOpen: () => open });
    });
  });
}

async function bulkPhase(): Promise<void> {
  const s = await startServer();
  try {
    // Baseline: single revocations, one after the other, of connected devices.
    const singles = await enrollAndConnect(s, 'single-', SINGLE);
    if (singles.some((d) => !d.isOpen())) throw new Error('a session closed before the single revocations');
    const t0 = performance.now();
    for (const d of singles) {
      const res = await postJson(s.apiUrl + routes.adminRevokeDevice(d.deviceId), s.rootPem, { reason: 'keyCompromise' }, s.auth);
      if (res.status !== 200) throw new Error(`single revoke: ${res.status}`);
    }
    const singleClosed = Math.max(...(await Promise.all(singles.map((d) => d.closed))));
    const singlePerDeviceMs = (singleClosed - t0) / SINGLE;

    const devices = await enrollAndConnect(s, 'line-7-', DEVICES);
    const rebuildsBefore = await metricValue(s, 'enrolld_crl_rebuilds_total{outcome="stored"}');
    const crlsBefore = Number((await s.db.pool.query('SELECT count(*) AS n FROM crls')).rows[0].n);
    const dropped = devices.filter((d) => !d.isOpen()).length;
    if (dropped > 0) throw new Error(`${dropped} sessions closed before the revocation`);
    note(`${devices.length} connected; bulk revocation…`);
    const t1 = performance.now();
    const started = await postJson(s.apiUrl + routes.adminBulkRevocations, s.rootPem, { selector: { tokenBatch: devices.batchId }, reason: 'keyCompromise' }, s.auth);
    const job = started.json<BulkRevocationJobBody>();
    if (job.total !== DEVICES) throw new Error(`bulk job took ${job.total} targets`);
    const closedAt = await Promise.all(devices.map((d) => d.closed));
    const allCut = Math.max(...closedAt) - t1;
    let done = job;
    while (done.status !== 'done') {
      if (done.status === 'failed') throw new Error(`bulk job failed: ${done.error}`);
      await new Promise((r) => setTimeout(r, 100));
      done = (await httpsRequest(s.apiUrl + routes.adminBulkRevocation(job.id), s.rootPem, { headers: s.auth })).json<BulkRevocationJobBody>();
    }
    const jobMs = Date.parse(done.finishedAt!) - Date.parse(done.createdAt);
    // Let the coalesced rebuild after the last batch land before counting.
    await httpsRequest(s.apiUrl + routes.crl, s.rootPem);
    const rebuilds = (await metricValue(s, 'enrolld_crl_rebuilds_total{outcome="stored"}')) - rebuildsBefore;
    const crls = Number((await s.db.pool.query('SELECT count(*) AS n FROM crls')).rows[0].n) - crlsBefore;
    const bulkPerDeviceMs = allCut / DEVICES;
    const cuts = closedAt.map((t) => t - t1).sort((a, b) => a - b);
    line('bulk_revoke_all_cut', allCut / 1000, 's', (singlePerDeviceMs * DEVICES) / 1000, singlePerDeviceMs / bulkPerDeviceMs, {
      devices: DEVICES, connected: devices.length, selector: 'tokenBatch', revoked: done.revoked, jobSeconds: +(jobMs / 1000).toFixed(2), p50CutS: +(percentile(cuts, 0.5) / 1000).toFixed(2),
      baselineIs: `${SINGLE} single revokes in a row, ${singlePerDeviceMs.toFixed(1)} ms each, scaled to ${DEVICES}`,
    });
    line('bulk_revoke_crl_rebuilds', rebuilds, 'rebuilds', DEVICES, DEVICES / Math.max(rebuilds, 1), { storedCrls: crls, baselineIs: 'one rebuild per revocation' });
  } finally {
    await s.stop();
  }
}

async function timed(fn: () => Promise<unknown>): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < REPEAT; i++) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  return times.sort((a, b) => a - b);
}

async function fleetPhase(): Promise<void> {
  const s = await startServer();
  try {
    note(`inserting ${FLEET} devices with a certificate each…`);
    await s.db.pool.query(`INSERT INTO devices (id, profile) SELECT 'fleet-' || lpad(i::text, 6, '0'), CASE WHEN i % 10 = 0 THEN 'gateway' ELSE 'default' END FROM generate_series(1, $1) i`, [FLEET]);
    await s.db.pool.query(
      `INSERT INTO certificates (serial, device_id, public_key_sha256, csr_sha256, tbs_der, der, not_before, not_after, issued_at)
       SELECT '1' || lpad(to_hex(i), 31, '0'), 'fleet-' || lpad(i::text, 6, '0'), '\\x00', '\\x00', '\\x00', '\\x00', now() - interval '1 day',
              now() + make_interval(days => 1 + i % 60), now() - interval '1 day'
         FROM generate_series(1, $1) i`,
      [FLEET],
    );
    await s.db.pool.query('ANALYZE devices; ANALYZE certificates');
    const page = (query: string) => httpsRequest(`${s.apiUrl}${routes.adminFleet}?${query}`, s.rootPem, { headers: s.auth }).then((r) => {
      if (r.status !== 200) throw new Error(`fleet ${r.status} ${r.text}`);
      return r.json<FleetPage>();
    });
    const deepAfter = `fleet-${String(Math.floor(FLEET * 0.9)).padStart(6, '0')}`;
    if ((await page(`limit=50&after=${deepAfter}`)).devices.length !== 50) throw new Error('deep page short');
    const first = await timed(() => page('limit=50'));
    const deep = await timed(() => page(`limit=50&after=${deepAfter}`));
    const filtered = await timed(() => page(`limit=50&after=${deepAfter}&status=active&expiresWithinDays=7`));
    // Keyset against OFFSET for the deep page, both straight on Postgres (no HTTPS, no JSON), the same statement shape.
    const store = createPgFleetStore(s.db.pool);
    const keysetSql = await timed(() => store.search({ limit: 50, after: deepAfter }));
    const offset = await timed(() =>
      s.db.pool.query(
        `SELECT d.id FROM devices d LEFT JOIN LATERAL (SELECT c.serial FROM certificates c WHERE c.device_id = d.id AND c.der IS NOT NULL ORDER BY c.issued_at DESC LIMIT 1) cur ON true
          ORDER BY d.id OFFSET $1 LIMIT 50`,
        [Math.floor(FLEET * 0.9)],
      ),
    );
    const p50 = (xs: number[]) => percentile(xs, 0.5);
    line('fleet_page_first', p50(first), 'ms', null, null, { devices: FLEET, rows: 50, p95: +percentile(first, 0.95).toFixed(1), via: 'HTTPS GET /v1/admin/fleet' });
    line('fleet_page_deep', p50(deep), 'ms', p50(first), p50(first) / p50(deep), { devices: FLEET, position: Math.floor(FLEET * 0.9), p95: +percentile(deep, 0.95).toFixed(1), via: 'HTTPS GET /v1/admin/fleet?after=…', baselineIs: 'the first page' });
    line('fleet_search_deep_keyset_sql', p50(keysetSql), 'ms', p50(offset), p50(offset) / p50(keysetSql), { devices: FLEET, position: Math.floor(FLEET * 0.9), baselineIs: 'the same search paged by OFFSET, in Postgres alone' });
    line('fleet_page_deep_filtered', p50(filtered), 'ms', p50(deep), p50(deep) / p50(filtered), { filters: 'status=active&expiresWithinDays=7', baselineIs: 'the unfiltered deep page' });

    // Presence: one live broker node (besides the server's own) holding every tenth device, then only 100 of them.
    await s.db.pool.query(`INSERT INTO broker_nodes (node_id, environment, expires_at) VALUES ('bench-node', 'default', now() + interval '1 day')`);
    const connectEvery = async (step: number) => {
      await s.db.pool.query(`DELETE FROM device_presence WHERE node_id = 'bench-node'`);
      await s.db.pool.query(
        `INSERT INTO device_presence (device_id, node_id, since) SELECT 'fleet-' || lpad(i::text, 6, '0'), 'bench-node', now() FROM generate_series($1::int, $2::int, $1::int) i`,
        [step, FLEET],
      );
      await s.db.pool.query('ANALYZE device_presence; ANALYZE broker_nodes');
    };
    for (const [step, share] of [[10, '10%'], [FLEET / 100, '100 devices']] as const) {
      await connectEvery(step);
      const expected = Math.floor(FLEET / step);
      for (const connected of ['true', 'false'] as const) {
        const firstPage = await page(`limit=50&connected=${connected}`);
        const want = connected === 'true' ? Math.min(50, expected) : 50;
        if (firstPage.devices.length !== want || firstPage.devices.some((d) => String(d.connected) !== connected)) throw new Error(`connected=${connected}: a wrong or short page`);
        const f = await timed(() => page(`limit=50&connected=${connected}`));
        const d = await timed(() => page(`limit=50&after=${deepAfter}&connected=${connected}`));
        const extra = { devices: FLEET, connectedDevices: expected, connectedShare: share, rows: firstPage.devices.length };
        line(`fleet_page_first_connected_${connected}`, p50(f), 'ms', p50(first), p50(first) / p50(f), { ...extra, p95: +percentile(f, 0.95).toFixed(1), baselineIs: 'the unfiltered first page' });
        line(`fleet_page_deep_connected_${connected}`, p50(d), 'ms', p50(deep), p50(deep) / p50(d), { ...extra, position: Math.floor(FLEET * 0.9), p95: +percentile(d, 0.95).toFixed(1), baselineIs: 'the unfiltered deep page' });
      }
    }
  } finally {
    await s.stop();
  }
}

async function auditPhase(): Promise<void> {
  const s = await startServer();
  try {
    const batch = 20_000;
    const rows = `SELECT 'bench.appended', 'bench', 'dev-' || (i % 5000), jsonb_build_object('i', i) FROM generate_series($1::int, $2::int) i`;
    const append = async (insert: string) => {
      const t = performance.now();
      for (let done = 0; done < AUDIT_ROWS; done += batch) await s.db.pool.query(`${insert} ${rows}`, [done + 1, Math.min(done + batch, AUDIT_ROWS)]);
      return (performance.now() - t) / 1000;
    };
    // Baseline: the same rows into a copy of the table with its indexes but without the chain trigger.
    await s.db.pool.query('CREATE TABLE audit_events_unchained (LIKE audit_events INCLUDING ALL)');
    note(`appending ${AUDIT_ROWS} audit rows without the chain, then through the chain trigger…`);
    const plainS = await append('INSERT INTO audit_events_unchained (action, actor, device_id, detail)');
    await s.db.pool.query('DROP TABLE audit_events_unchained');
    const t0 = performance.now();
    await append('INSERT INTO audit_events (action, actor, device_id, detail)');
    const appendS = (performance.now() - t0) / 1000;
    await s.db.pool.query('VACUUM ANALYZE audit_events');
    const verifyRun = async () => {
      const res = await httpsRequest(s.apiUrl + routes.adminAuditVerify, s.rootPem, { headers: s.auth });
      const body = res.json<{ ok: boolean; rows: number }>();
      if (!body.ok || body.rows < AUDIT_ROWS) throw new Error(`verify: ${res.text}`);
    };
    const t1 = performance.now();
    await verifyRun();
    const verifyMs = performance.now() - t1;
    const t2 = performance.now();
    let last = 0;
    for (;;) {
      const read = await s.db.pool.query<{ chain_seq: string }>(
        'SELECT chain_seq, id, prev_hash, hash, at, action, actor, device_id, serial, request_id, detail FROM audit_events WHERE chain_seq > $1 ORDER BY chain_seq LIMIT 20000',
        [last],
      );
      if (read.rows.length === 0) break;
      last = Number(read.rows.at(-1)!.chain_seq);
    }
    const readMs = performance.now() - t2;
    line('audit_verify', verifyMs / 1000, 's', readMs / 1000, readMs / verifyMs, { rows: AUDIT_ROWS, via: 'HTTPS GET /v1/admin/audit/verify', baselineIs: 'reading the same rows in the same batches without checking' });
    line('audit_append_chained', AUDIT_ROWS / appendS, 'rows/s', AUDIT_ROWS / plainS, plainS / appendS, { rows: AUDIT_ROWS, batch, baselineIs: 'the same inserts into a copy of the table without the chain trigger' });
  } finally {
    await s.stop();
  }
}

if (PHASES.has('fleet')) await fleetPhase();
if (PHASES.has('audit')) await auditPhase();
if (PHASES.has('bulk')) await bulkPhase();
