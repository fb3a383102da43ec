// End-to-end enrollment over HTTPS against Postgres at 50 in flight (target: ≥ 1,000/s, 0 errors).
// The server runs as its own process (`enrolld up` on the machine's Postgres, fresh database); this process
// makes the CSRs first (off the clock), then drives the load with a keep-alive agent of 50 sockets.
// One JSON line per figure: {"metric","value","unit","baseline","ratio"}. There is no stock server to run
// side by side here, so the baseline of the throughput line is the target, and says so.
import https from 'node:https';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { makeCsr } from '../support/csr-factory.js';
import { TEST_PG_ADMIN_URL } from '../support/pg.js';
import { freePort, spawnEnrolld } from '../support/processes.js';

const IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? 50);
const TOTAL = Number(process.env.BENCH_ENROLLMENTS ?? 6000);
const TARGET_PER_SECOND = 1000;

function print(figure: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(figure) + '\n');
}

function post(agent: https.Agent, url: URL, body: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;

export async function benchEnrollHttp(): Promise<void> {
  const dbName = `enrolld_bench_${process.pid}`;
  const admin = new pg.Client({ connectionString: TEST_PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${dbName}`);
  const dbUrl = new URL(TEST_PG_ADMIN_URL);
  dbUrl.pathname = `/${dbName}`;
  const home = await mkdtemp(path.join(tmpdir(), 'enrolld-bench-'));
  const port = await freePort();
  const server = await spawnEnrolld({
    ENROLLD_HOME: home,
    HTTPS_PORT: String(port),
    MQTTS_PORT: String(await freePort()),
    LISTEN_HOST: '127.0.0.1',
    DATABASE_URL: dbUrl.toString(),
    LOG_LEVEL: 'info', // the 'enrolld ready' line is info; requests log at debug
    DB_POOL_MAX: '40',
  });
  try {
    const ca = await readFile(path.join(home, 'ca', 'root.pem'), 'utf8');
    const adminToken = (await readFile(path.join(home, 'admin-token'), 'utf8')).trim();
    const agent = new https.Agent({ ca, keepAlive: true, maxSockets: IN_FLIGHT });
    const base = `https://localhost:${port}`;

    process.stderr.write(`creating ${TOTAL} tokens and CSRs…\n`);
    const created = await post(agent, new URL('/v1/admin/tokens', base), JSON.stringify({ prefix: `bench-${Date.now().toString(36)}-`, count: TOTAL }), { authorization: `Bearer ${adminToken}` });
    if (created.status !== 201) throw new Error(`token batch failed: ${created.status} ${created.text}`);
    const tokens = JSON.parse(created.text) as Array<{ deviceId: string; token: string }>;
    const bodies = await Promise.all(tokens.map(async (t) => JSON.stringify({ token: t.token, csr: (await makeCsr({ cn: t.deviceId })).pem })));

    // Warm-up: open the sockets and the server's JIT on the first 200 enrollments (not counted).
    const warm = Math.min(200, Math.floor(TOTAL / 10));
    const enrollUrl = new URL('/v1/enroll', base);
    let next = 0;
    const latencies: number[] = [];
    const errors = new Map<string, number>();
    const worker = async (limit: number, record: boolean) => {
      while (next < limit) {
        const body = bodies[next++]!;
        const started = performance.now();
        try {
          const res = await post(agent, enrollUrl, body);
          if (res.status !== 201) errors.set(String(res.status), (errors.get(String(res.status)) ?? 0) + 1);
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code ?? 'error';
          errors.set(code, (errors.get(code) ?? 0) + 1);
        }
        if (record) latencies.push(performance.now() - started);
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, () => worker(warm, false)));
    errors.clear();
    const started = performance.now();
    await Promise.all(Array.from({ length: IN_FLIGHT }, () => worker(TOTAL, true)));
    const seconds = (performance.now() - started) / 1000;
    agent.destroy();

    latencies.sort((a, b) => a - b);
    const rate = latencies.length / seconds;
    const errorCount = [...errors.values()].reduce((a, b) => a + b, 0);
    print({ metric: 'enroll_https_per_second', value: Number(rate.toFixed(1)), unit: 'enrollments/s', baseline: TARGET_PER_SECOND, baselineKind: 'target', ratio: Number((rate / TARGET_PER_SECOND).toFixed(3)), inFlight: IN_FLIGHT, enrollments: latencies.length });
    print({ metric: 'enroll_https_latency_p50', value: Number(pct(latencies, 0.5).toFixed(1)), unit: 'ms', baseline: null, ratio: null });
    print({ metric: 'enroll_https_latency_p99', value: Number(pct(latencies, 0.99).toFixed(1)), unit: 'ms', baseline: null, ratio: null });
    print({ metric: 'enroll_https_errors', value: errorCount, unit: 'count', baseline: 0, ratio: null, byKind: Object.fromEntries(errors) });
  } finally {
    await server.stop();
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
    await rm(home, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await benchEnrollHttp();
}
