// `npm run bench:renew`: renewal latency per transport (REST, EST simplereenroll, MQTT) at 50 in flight, and the time
// from a successor's first CONNECT to the predecessor's live session being cut.
// The server runs as its own process (`enrolld up`, JOBS=off, on the machine's Postgres, fresh database). This process
// enrolls the devices and makes every CSR and key first (off the clock), then drives each transport in turn.
//  - REST and EST: each renewal is its own mTLS connection with the device's current certificate (what a device does;
//    the handshake is part of the latency).
//  - MQTT: the devices are connected and subscribed first; the latency is PUBLISH on cert/renew → message on
//    cert/renew/accepted.
//  - Cut: the predecessor is connected to a second broker node in this process (no session takeover possible there);
//    measured from the successor's CONNACK on the main broker to the predecessor's socket close on the second node.
// One JSON line per figure: {"metric","transport","value","unit","n","inFlight","errors","baseline","ratio"}.
// Environment: BENCH_DEVICES (per transport, default 600), BENCH_IN_FLIGHT (50), BENCH_CUT_TRIALS (100).
import https from 'node:https';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { routes, topics, type CreatedToken, type EnrollResponse } from '@enrolld/protocol';
import { makeCsr } from '../support/csr-factory.js';
import { createTestDatabase } from '../support/pg.js';
import { freePort, spawnEnrolld } from '../support/processes.js';
import { startSecondBroker } from '../support/renew-broker.js';
import { mustConnect, renewTopics, type DeviceSession } from '../support/renew-mqtt.js';
import { credsFrom, type DeviceCreds } from '../support/renew-support.js';

const DEVICES = Number(process.env.BENCH_DEVICES ?? 600);
const IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? 50);
const CUT_TRIALS = Number(process.env.BENCH_CUT_TRIALS ?? 100);

const print = (figure: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ baseline: null, ratio: null, ...figure })}\n`);
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;
const round = (v: number) => Number(v.toFixed(1));

interface Reply {
  status: number;
  text: string;
}

function request(url: URL, options: https.RequestOptions, body: string | Buffer): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function pool<T>(items: T[], inFlight: number, fn: (item: T, index: number) => Promise<void>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(inFlight, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
  return performance.now() - started;
}

/** For REST and EST: the same connection pattern (one mTLS handshake per request) around a static GET. */
interface Baseline {
  p50: number;
  p99: number;
  perSecond: number;
}

function report(transport: string, latencies: number[], errors: number, wallMs: number, baseline?: Baseline): void {
  const sorted = [...latencies].sort((a, b) => a - b);
  const base = { transport, n: latencies.length, inFlight: IN_FLIGHT, errors };
  const vs = (value: number, b: number | undefined, lowerIsBetter: boolean) =>
    b === undefined ? {} : { baseline: round(b), ratio: Number((lowerIsBetter ? b / value : value / b).toFixed(3)), baselineIs: 'GET /v1/ca on a fresh mTLS connection per request' };
  const p50 = round(pct(sorted, 0.5));
  const p99 = round(pct(sorted, 0.99));
  const perSecond = round((latencies.length / wallMs) * 1000);
  print({ metric: 'renew_latency_p50', value: p50, unit: 'ms', ...base, ...vs(p50, baseline?.p50, true) });
  print({ metric: 'renew_latency_p99', value: p99, unit: 'ms', ...base, ...vs(p99, baseline?.p99, true) });
  print({ metric: 'renew_throughput', value: perSecond, unit: 'renewals/s', ...base, ...vs(perSecond, baseline?.perSecond, false) });
}

export async function benchRenew(): Promise<void> {
  const db = await createTestDatabase();
  const home = await mkdtemp(path.join(tmpdir(), 'enrolld-bench-renew-'));
  const httpsPort = await freePort();
  const mqttsPort = await freePort();
  const server = await spawnEnrolld({
    ENROLLD_HOME: home,
    DATABASE_URL: db.url,
    HTTPS_PORT: String(httpsPort),
    MQTTS_PORT: String(mqttsPort),
    LISTEN_HOST: '127.0.0.1',
    JOBS: 'off',
    LOG_LEVEL: 'info', // spawnEnrolld waits for the "enrolld ready" info line
    DB_POOL_MAX: '40',
  });
  const second = await startSecondBroker({ home, databaseUrl: db.url });
  const sessions: DeviceSession[] = [];
  try {
    const api = `https://localhost:${httpsPort}`;
    const rootPem = await readFile(path.join(home, 'ca', 'root.pem'), 'utf8');
    const chainPem = await readFile(path.join(home, 'ca', 'chain.pem'), 'utf8');
    const adminToken = (await readFile(path.join(home, 'admin-token'), 'utf8')).trim();
    const agent = new https.Agent({ keepAlive: true, maxSockets: IN_FLIGHT, ca: rootPem });
    const json = { 'content-type': 'application/json' };

    // Off the clock: tokens, keys, CSRs, enrollments.
    const total = DEVICES * 3 + CUT_TRIALS;
    const prefix = `bench-${process.pid}`;
    const tokens = await request(new URL(routes.adminTokens, api), { method: 'POST', agent, headers: { ...json, authorization: `Bearer ${adminToken}` } }, JSON.stringify({ prefix, count: total }));
    if (tokens.status !== 201) throw new Error(`tokens: ${tokens.status} ${tokens.text}`);
    const created = JSON.parse(tokens.text) as CreatedToken[];
    const devices: DeviceCreds[] = new Array(total);
    await pool(created, IN_FLIGHT, async (t, i) => {
      const csr = await makeCsr({ cn: t.deviceId });
      const res = await request(new URL(routes.enroll, api), { method: 'POST', agent, headers: json }, JSON.stringify({ token: t.token, csr: csr.pem }));
      if (res.status !== 201) throw new Error(`enroll: ${res.status} ${res.text}`);
      devices[i] = credsFrom(JSON.parse(res.text) as EnrollResponse, csr.privateKey);
    });
    const renewCsrs = await Promise.all(devices.map((d) => makeCsr({ cn: d.deviceId })));
    agent.destroy();

    const tlsFor = (d: DeviceCreds): https.RequestOptions => ({ agent: false, ca: rootPem, cert: d.clientChainPem, key: d.keyPem, servername: 'localhost' });

    // Baseline: what one mTLS handshake per request costs here, around a static GET (no renewal work).
    let baseline: Baseline;
    {
      const slice = devices.slice(0, DEVICES);
      const latencies: number[] = [];
      const wall = await pool(slice, IN_FLIGHT, async (d) => {
        const t0 = performance.now();
        await request(new URL(routes.ca, api), { method: 'GET', ...tlsFor(d) }, '');
        latencies.push(performance.now() - t0);
      });
      const sorted = latencies.sort((a, b) => a - b);
      baseline = { p50: pct(sorted, 0.5), p99: pct(sorted, 0.99), perSecond: (latencies.length / wall) * 1000 };
    }

    // REST
    {
      const slice = devices.slice(0, DEVICES);
      const latencies: number[] = [];
      let errors = 0;
      const wall = await pool(slice, IN_FLIGHT, async (d, i) => {
        const body = JSON.stringify({ csr: renewCsrs[i]!.pem });
        const t0 = performance.now();
        const res = await request(new URL(routes.renew, api), { method: 'POST', headers: json, ...tlsFor(d) }, body);
        latencies.push(performance.now() - t0);
        if (res.status !== 201) errors++;
      });
      report('rest', latencies, errors, wall, baseline);
    }

    // EST simplereenroll
    {
      const offset = DEVICES;
      const slice = devices.slice(offset, offset + DEVICES);
      const latencies: number[] = [];
      let errors = 0;
      const wall = await pool(slice, IN_FLIGHT, async (d, i) => {
        const body = renewCsrs[offset + i]!.der.toString('base64');
        const t0 = performance.now();
        const res = await request(new URL(routes.est.simplereenroll, api), { method: 'POST', headers: { 'content-type': 'application/pkcs10', 'content-transfer-encoding': 'base64' }, ...tlsFor(d) }, body);
        latencies.push(performance.now() - t0);
        if (res.status !== 200) errors++;
      });
      report('est', latencies, errors, wall, baseline);
    }

    // MQTT
    {
      const offset = DEVICES * 2;
      const slice = devices.slice(offset, offset + DEVICES);
      const byDevice = new Map<string, DeviceSession>();
      await pool(slice, IN_FLIGHT, async (d) => {
        const session = await mustConnect(mqttsPort, chainPem, d, renewTopics(d.deviceId));
        sessions.push(session);
        byDevice.set(d.deviceId, session);
      });
      const latencies: number[] = [];
      let errors = 0;
      const wall = await pool(slice, IN_FLIGHT, async (d, i) => {
        const session = byDevice.get(d.deviceId)!;
        const accepted = topics.renewAccepted(d.deviceId);
        const rejected = topics.renewRejected(d.deviceId);
        const answer = new Promise<boolean>((resolve) => {
          const onMessage = (topic: string) => {
            if (topic !== accepted && topic !== rejected) return;
            session.client.off('message', onMessage);
            resolve(topic === accepted);
          };
          session.client.on('message', onMessage);
        });
        const t0 = performance.now();
        session.client.publish(topics.renew(d.deviceId), JSON.stringify({ csr: renewCsrs[offset + i]!.pem }), { qos: 1 });
        const ok = await answer;
        latencies.push(performance.now() - t0);
        if (!ok) errors++;
      });
      report('mqtt', latencies, errors, wall);
      await Promise.all(sessions.splice(0).map((s) => s.end()));
    }

    // Successor's first CONNECT → predecessor's live session cut (on another broker node).
    {
      const offset = DEVICES * 3;
      const cuts: number[] = [];
      let errors = 0;
      for (let i = 0; i < CUT_TRIALS; i++) {
        const d = devices[offset + i]!;
        const csr = renewCsrs[offset + i]!;
        const res = await request(new URL(routes.renew, api), { method: 'POST', headers: json, ...tlsFor(d) }, JSON.stringify({ csr: csr.pem }));
        if (res.status !== 201) {
          errors++;
          continue;
        }
        const next = credsFrom(JSON.parse(res.text) as EnrollResponse, csr.privateKey);
        const old = await mustConnect(second.port, chainPem, d);
        const successor = await mustConnect(mqttsPort, chainPem, next);
        const cutAt = await Promise.race([old.closed, new Promise<number>((r) => setTimeout(() => r(NaN), 5000))]);
        if (Number.isNaN(cutAt)) errors++;
        else cuts.push(cutAt - successor.connectedAt);
        await successor.end();
        await old.end();
      }
      const sorted = cuts.sort((a, b) => a - b);
      const base = { transport: 'mqtt', n: cuts.length, errors };
      print({ metric: 'successor_connect_to_predecessor_cut_p50', value: round(pct(sorted, 0.5)), unit: 'ms', ...base });
      print({ metric: 'successor_connect_to_predecessor_cut_p99', value: round(pct(sorted, 0.99)), unit: 'ms', ...base });
      print({ metric: 'successor_connect_to_predecessor_cut_max', value: round(sorted[sorted.length - 1] ?? NaN), unit: 'ms', ...base });
    }
  } finally {
    await Promise.all(sessions.map((s) => s.end()));
    await second.stop();
    const code = await server.stop();
    if (code !== 0) process.stderr.write(`enrolld exited with ${code}\n${server.output().slice(-2000)}\n`);
    await db.drop();
    await rm(home, { recursive: true, force: true });
  }
}

await benchRenew();
