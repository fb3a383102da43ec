// `npm run bench:window`: how soon after its access window ends a live session is closed (docs/architecture.md §6),
// seen from the client: the instant its socket closes minus the window's `until`. The baseline, measured in the same
// run on the same server, is the mechanism the window reuses: sessions whose certificates all pass notAfter at one
// instant, from notAfter + 1 ms to the close. Each group holds BENCH_DEVICES sessions that all end at the same instant,
// so the figures include closing them all at once (and this process, which also runs the clients, seeing them close).
// The server is the real composition (`enrolld up`) in this process on a fresh database; the certificates come from its
// own issuing CA with chosen dates (test/support/renew-support.ts issueFromServerCa), so the real registry admits both
// groups. A first group is minted and connected only to time that on this machine and size the groups' margins.
// One JSON line per figure: {"metric","value","unit","baseline","ratio","n","errors"}.
// Environment: BENCH_DEVICES (per group, default 200).
import { routes } from '@enrolld/protocol';
import { line } from './bench-support.js';
import { httpsRequest } from '../support/http.js';
import { mustConnect, type DeviceSession } from '../support/renew-mqtt.js';
import { issueFromServerCa, type DeviceCreds } from '../support/renew-support.js';
import { startTestServer, type TestServer } from '../support/server-harness.js';
import { waitForValue } from '../support/wait-for.js';

const DEVICES = Number(process.env.BENCH_DEVICES ?? 200);
/** Sessions connecting at once. */
const IN_FLIGHT = 20;

const wholeSecondAfter = (ms: number) => Math.ceil(ms / 1000) * 1000;
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;

async function inPool<T, R>(items: T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  }));
  return out;
}

const mint = (server: TestServer, prefix: string, notAfter: number, profile?: { name: string; version: number }) =>
  inPool(Array.from({ length: DEVICES }, (_, i) => `${prefix}-${i}`), (id) =>
    issueFromServerCa(server, id, { notBefore: new Date(Date.now() - 60_000), notAfter: new Date(notAfter) }, 'device', profile));

const connectAll = (server: TestServer, devices: DeviceCreds[]) => inPool(devices, (creds) => mustConnect(server.running.mqttsPort, server.rootPem, creds));

/** Waits for every session to close; the delays from `endsAt` to each close as the client saw it, sorted. */
async function closeDelays(sessions: DeviceSession[], endsAt: number): Promise<{ delays: number[]; errors: number }> {
  if (Date.now() >= endsAt) throw new Error(`setting up ${sessions.length} sessions took past their end; the margin is too small`);
  const closed = await Promise.all(sessions.map((s) => s.closed.then((at) => performance.timeOrigin + at)));
  // A close before the end would be a failure of the mechanism, not a fast figure.
  const errors = closed.filter((at) => at < endsAt).length;
  return { delays: closed.map((at) => at - endsAt).sort((a, b) => a - b), errors };
}

/** How long minting and connecting one group takes here, timed on a group that is then closed (off the figures). */
async function calibrate(server: TestServer): Promise<{ mintMs: number; connectMs: number }> {
  const started = performance.now();
  const devices = await mint(server, 'bench-cal', Date.now() + 86_400_000);
  const minted = performance.now();
  const sessions = await connectAll(server, devices);
  const connected = performance.now();
  await Promise.all(sessions.map((s) => s.end()));
  return { mintMs: minted - started, connectMs: connected - minted };
}

async function main(): Promise<void> {
  const server = await startTestServer({ env: { LOG_LEVEL: 'warn' } });
  try {
    const auth = { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/json' };
    const { mintMs, connectMs } = await calibrate(server);

    // Baseline: certificates that all pass notAfter at one instant (a session ends 1 ms after notAfter).
    const notAfter = wholeSecondAfter(Date.now() + 2 * (mintMs + connectMs) + 3000);
    const expiring = await connectAll(server, await mint(server, 'bench-exp', notAfter));
    const expiry = await closeDelays(expiring, notAfter + 1);

    // The window: certificates valid for a day under a profile whose access ends at one instant.
    const windowed = await mint(server, 'bench-win', Date.now() + 86_400_000, { name: 'bench-window', version: 1 });
    const until = wholeSecondAfter(Date.now() + 2 * connectMs + 3000);
    const spec = {
      name: 'bench-window',
      kind: 'device',
      acl: [{ effect: 'allow', action: 'subscribe', filter: 'devices/{id}/#' }],
      access: { until: new Date(until).toISOString() },
    };
    const created = await httpsRequest(server.apiUrl + routes.adminProfiles, server.rootPem, { method: 'POST', headers: auth, body: JSON.stringify(spec) });
    if (created.status !== 201) throw new Error(`profile: ${created.status} ${created.text}`);
    await waitForValue(() => (server.running.broker.profileVersion('bench-window') === 1 ? true : undefined), 10_000, 'the broker to hold the profile');
    const window = await closeDelays(await connectAll(server, windowed), until);

    for (const [p, name] of [[0.5, 'p50'], [0.99, 'p99'], [1, 'max']] as const) {
      const value = pct(window.delays, p);
      const baseline = pct(expiry.delays, p);
      line(`window-end-to-close-${name}`, value, 'ms', baseline, value / baseline, { n: DEVICES, errors: window.errors + expiry.errors });
    }
  } finally {
    await server.stop();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
