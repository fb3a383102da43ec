// The device state machine, driven by a fake clock and an in-memory transport.
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { topics } from '@enrolld/protocol';
import { Device, SimError, seededRng, DEFAULT_RENEWAL, backoffCeiling, httpError, parseRetryAfter } from '@enrolld/device-sim';
import type { DeviceEventWithMeta, DeviceOptions, BackoffPolicy } from '@enrolld/device-sim';
import { FakeClock } from '../support/sim-fake-clock.js';
import { FakeTransport } from '../support/sim-fake-transport.js';

const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const reconnect: BackoffPolicy = { baseMs: 500, capMs: 15_000, floorMs: 50 };

function setup(overrides: Partial<DeviceOptions> = {}, seed = 1) {
  const clock = new FakeClock();
  const transport = new FakeTransport(clock);
  const events: DeviceEventWithMeta[] = [];
  const opts: DeviceOptions = {
    deviceId: 'dev-1',
    token: 'tok',
    enrollVia: 'rest',
    renewVia: 'rest',
    telemetryIntervalMs: 1_000,
    qos: 0,
    echo: false,
    reconnect,
    retry: { baseMs: 200, capMs: 5_000, floorMs: 50 },
    maxEnrollAttempts: 5,
    renewal: DEFAULT_RENEWAL,
    hintJitterMs: 1_000,
    mqttRenewTimeoutMs: 10_000,
    tlsRefusalsToStop: 3,
    retryAfterCapMs: 60_000,
    ...overrides,
  };
  const device = new Device(opts, {
    clock,
    rng: seededRng(seed),
    transport,
    observe: (e) => events.push(e),
    generateKey: async () => keys,
  });
  const ofType = <T extends DeviceEventWithMeta['type']>(type: T) =>
    events.filter((e): e is Extract<DeviceEventWithMeta, { type: T }> => e.type === type);
  return { clock, transport, events, device, ofType };
}

describe('device: enroll, connect, publish', () => {
  it('enrolls, connects with its cert, subscribes to its own topics and publishes telemetry at the set rate', async () => {
    const { clock, transport, device, ofType } = setup({ echo: true });
    await device.start();
    await clock.advance(0);
    expect(device.state).toBe('online');
    expect(transport.enrollCalls).toHaveLength(1);
    const session = transport.liveSession!;
    expect(session.subscriptions).toEqual(
      expect.arrayContaining([topics.commands('dev-1'), topics.rotate('dev-1'), topics.renewAccepted('dev-1'), topics.telemetry('dev-1')]),
    );
    await clock.advance(10_000);
    const sent = session.published.filter((p) => p.topic === topics.telemetry('dev-1'));
    expect(sent.length).toBeGreaterThanOrEqual(9);
    expect(sent.length).toBeLessThanOrEqual(10);
    expect(ofType('connected')).toHaveLength(1);
    session.deliver(topics.telemetry('dev-1'), '{}');
    expect(device.echoesReceived).toBe(1);
  });

  it('retries a 503 enrollment with the same CSR and stops on a 401 (token refused)', async () => {
    const a = setup();
    a.transport.enrollVerdict = (n) => (n < 2 ? new SimError('enroll-http-503', 'down', { status: 503, retryable: true }) : undefined);
    const started = a.device.start();
    await a.clock.advance(30_000);
    await started;
    expect(a.transport.enrollCalls).toHaveLength(3);
    expect(a.device.state).toBe('online');

    const b = setup();
    b.transport.enrollVerdict = () => new SimError('enroll-http-401-unauthorized', 'no', { status: 401, retryable: false });
    await b.device.start();
    expect(b.device.state).toBe('stopped');
    expect(b.device.stopReason).toBe('enroll-refused');
    expect(b.transport.enrollCalls).toHaveLength(1);
  });
});

describe('device: reconnect backoff', () => {
  it('waits within the full-jitter bound after each failure, and resets after a success', async () => {
    const { clock, transport, device } = setup({ telemetryIntervalMs: 0 });
    transport.lifetimeMs = 3_600_000; // no renewal inside the window
    await device.start();
    await clock.advance(0);
    // the broker goes away for 8 attempts, then comes back
    transport.connectVerdict = (_s, n) => (n >= 1 && n <= 8 ? new SimError('connect-econnrefused', 'refused') : 'accept');
    transport.liveSession!.serverClose();
    await clock.advance(120_000);
    expect(device.state).toBe('online');
    const at = transport.connectCalls.map((c) => c.at);
    expect(at).toHaveLength(10);
    const cut = transport.sessions[0]!;
    expect(cut.closed).toBe(true);
    // gap before attempt k (k = 1…9) is the delay drawn for attempt index k-1
    for (let k = 1; k < at.length; k++) {
      const gap = at[k]! - at[k - 1]!;
      expect(gap).toBeGreaterThanOrEqual(reconnect.floorMs);
      expect(gap).toBeLessThanOrEqual(backoffCeiling(k - 1, reconnect));
    }
    expect(device.connectAttempt).toBe(0);
  });

  it('spreads a fleet: 200 devices cut at once do not come back at once', async () => {
    const clock = new FakeClock();
    const firstReconnect: number[] = [];
    const devices: Device[] = [];
    const transports: FakeTransport[] = [];
    for (let i = 0; i < 200; i++) {
      const transport = new FakeTransport(clock);
      transports.push(transport);
      const d = new Device(
        {
          deviceId: `d${i}`, token: 't', enrollVia: 'rest', renewVia: 'rest', telemetryIntervalMs: 0, qos: 0, echo: false,
          reconnect: { baseMs: 1_000, capMs: 30_000, floorMs: 50 }, retry: reconnect, maxEnrollAttempts: 1,
          renewal: DEFAULT_RENEWAL, hintJitterMs: 0, mqttRenewTimeoutMs: 1_000, tlsRefusalsToStop: 3, retryAfterCapMs: 60_000,
        },
        { clock, rng: seededRng(1000 + i), transport, generateKey: async () => keys },
      );
      devices.push(d);
      await d.start();
    }
    await clock.advance(0);
    const t0 = clock.now();
    for (const t of transports) t.liveSession!.serverClose();
    await clock.advance(2_000);
    for (const t of transports) firstReconnect.push(t.connectCalls[1]!.at - t0);
    // attempt 0 ceiling is 1 s: all inside it, and spread over it rather than bunched
    expect(Math.max(...firstReconnect)).toBeLessThanOrEqual(1_000);
    const buckets = [0, 0, 0, 0];
    for (const v of firstReconnect) buckets[Math.min(3, Math.floor(v / 250))]!++;
    for (const b of buckets) expect(b).toBeGreaterThan(25);
  });
});

describe('device: renewal', () => {
  it('renews at about 2/3 of the lifetime (±1/12) and reconnects with the new cert', async () => {
    const renewAt: number[] = [];
    for (let seed = 1; seed <= 40; seed++) {
      const { clock, transport, device } = setup({ telemetryIntervalMs: 0 }, seed);
      const t0 = clock.now();
      await device.start();
      await clock.advance(50_000);
      expect(transport.renewCalls).toHaveLength(1);
      renewAt.push((transport.renewCalls[0]!.at - t0) / 60_000);
      expect(device.state).toBe('online');
      expect(transport.liveSession!.serial).toBe(device.credentials!.serial);
      expect(transport.sessions[0]!.closed).toBe(true);
      expect(device.rotations).toBe(1);
      expect(device.serials).toHaveLength(2);
    }
    for (const f of renewAt) {
      expect(f).toBeGreaterThanOrEqual(2 / 3 - 1 / 12 - 1e-9);
      expect(f).toBeLessThanOrEqual(2 / 3 + 1 / 12 + 1e-9);
    }
    // jitter actually spreads them
    expect(Math.max(...renewAt) - Math.min(...renewAt)).toBeGreaterThan(0.08);
  });

  it("honours the server's renewAfter: never before it, spread over the first half of the window, after each renewal too", async () => {
    const firstAt: number[] = [];
    for (let seed = 1; seed <= 40; seed++) {
      const { clock, transport, device } = setup({ telemetryIntervalMs: 0 }, seed);
      // a window that opens at 0.8 of the lifetime: later than the device's own 2/3 ± 1/12
      transport.renewAfterFraction = 0.8;
      const t0 = clock.now();
      await device.start();
      await clock.advance(47_900);
      expect(transport.renewCalls).toHaveLength(0);
      await clock.advance(60_000 - 47_900);
      expect(transport.renewCalls).toHaveLength(1);
      firstAt.push((transport.renewCalls[0]!.at - t0) / 60_000);
      // the successor's window is its own: 0.8 of its lifetime after it was issued
      const issuedAt = transport.renewCalls[0]!.at;
      await clock.advance(issuedAt + 47_900 - clock.now());
      expect(transport.renewCalls).toHaveLength(1);
      await clock.advance(54_000 - 47_900);
      expect(transport.renewCalls).toHaveLength(2);
      const f = (transport.renewCalls[1]!.at - issuedAt) / 60_000;
      expect(f).toBeGreaterThanOrEqual(0.8);
      expect(f).toBeLessThanOrEqual(0.9 + 1e-9);
      expect(device.state).toBe('online');
    }
    for (const f of firstAt) {
      expect(f).toBeGreaterThanOrEqual(0.8);
      // the window is [0.8, 1] of the lifetime: its first half ends at 0.9
      expect(f).toBeLessThanOrEqual(0.9 + 1e-9);
    }
    expect(Math.max(...firstAt) - Math.min(...firstAt)).toBeGreaterThan(0.03);
  });

  it("releases each superseded certificate's TLS material once its probe has an answer, and the rest when it stops", async () => {
    const { clock, transport, device, ofType } = setup({ telemetryIntervalMs: 0, probeOldCertAfterMs: 500 });
    const refused = new SimError('connect-connack-5', 'not authorized', { revoked: true, retryable: false });
    transport.connectVerdict = (serial) => (serial === device.credentials?.serial ? 'accept' : refused);
    await device.start();
    await clock.advance(10 * 60_000);
    expect(device.rotations).toBeGreaterThanOrEqual(12);
    expect(ofType('old-cert-probe')).toHaveLength(device.rotations);
    // held: the current certificate only (a probe at most 500 ms old aside), however many rotations
    expect(transport.released).toEqual(device.serials.slice(0, -1));
    await device.stop();
    expect(transport.released).toEqual(device.serials);
  });

  it('without probes, releases the superseded certificate at the rotation', async () => {
    const { clock, transport, device } = setup({ telemetryIntervalMs: 0 });
    await device.start();
    await clock.advance(5 * 60_000);
    expect(device.rotations).toBeGreaterThanOrEqual(6);
    expect(transport.released).toEqual(device.serials.slice(0, -1));
  });

  it('renews on a rotation hint, within the hint jitter', async () => {
    const { clock, transport, device, ofType } = setup({ telemetryIntervalMs: 0, hintJitterMs: 1_000 });
    await device.start();
    await clock.advance(1_000);
    const t0 = clock.now();
    transport.liveSession!.deliver(topics.rotate('dev-1'), '{}');
    await clock.advance(1_000);
    expect(transport.renewCalls).toHaveLength(1);
    expect(transport.renewCalls[0]!.at - t0).toBeLessThanOrEqual(1_000);
    expect(ofType('renewed')[0]!.trigger).toBe('hint');
  });

  it('probes the old cert after the successor connects and records the broker refusing it', async () => {
    const { clock, transport, device, ofType } = setup({ telemetryIntervalMs: 0, rotateAfterMs: 5_000, probeOldCertAfterMs: 500 });
    transport.connectVerdict = (serial) =>
      serial === 's1' && transport.renewCalls.length > 0 ? new SimError('connect-connack-5', 'not authorized', { revoked: true, retryable: false }) : 'accept';
    await device.start();
    await clock.advance(6_000);
    const probe = ofType('old-cert-probe');
    expect(probe).toEqual([expect.objectContaining({ accepted: false, kind: 'connect-connack-5', serial: 's1' })]);
    // the refusal of the *old* cert must not stop the device
    expect(device.state).toBe('online');
    expect(device.credentials!.serial).toBe('s2');
  });

  it('keeps probing an old cert the broker still lets in, and reports when it was finally refused', async () => {
    const { clock, transport, device, ofType } = setup({ telemetryIntervalMs: 0, rotateAfterMs: 5_000, probeOldCertAfterMs: 500, oldCertBoundMs: 5_000 });
    let supersededAt = Number.POSITIVE_INFINITY;
    transport.connectVerdict = (serial) => {
      if (serial === 's2' && supersededAt === Number.POSITIVE_INFINITY) supersededAt = clock.now() + 2_200; // the server takes ~2 s
      return serial === 's1' && clock.now() >= supersededAt ? new SimError('connect-tls-refused', 'refused') : 'accept';
    };
    await device.start();
    await clock.advance(20_000);
    const [probe] = ofType('old-cert-probe');
    expect(probe).toMatchObject({ accepted: false, acceptedAttempts: 2, serial: 's1' });
    expect(probe!.refusedAfterMs).toBe(2_500);
  });

  it('a connect begun before a renewal finished comes up with the old cert: the device moves to the new one, and probes only after that', async () => {
    const { clock, transport, device, ofType } = setup({ telemetryIntervalMs: 0, probeOldCertAfterMs: 500 });
    // the broker refuses s1 once s2 has connected, as enrolld does
    transport.connectVerdict = (serial) =>
      serial === 's1' && transport.connectCalls.some((c) => c.serial === 's2') ? new SimError('connect-connack-5', 'not authorized', { revoked: true, retryable: false }) : 'accept';
    await device.start();
    await clock.advance(1_000);
    let open!: () => void;
    transport.hold = new Promise<void>((resolve) => (open = resolve));
    device.dropConnection();
    await clock.advance(20_000); // the reconnect with s1 starts, and waits
    expect(transport.connectCalls.at(-1)!.serial).toBe('s1');
    device.renewNow();
    await clock.advance(0);
    expect(device.credentials!.serial).toBe('s2');
    transport.hold = undefined;
    open();
    await clock.advance(5_000);
    expect(transport.connectCalls.map((c) => c.serial).slice(-2)).toEqual(['s2', 's1']); // the switch, then the probe
    expect(transport.liveSession!.serial).toBe('s2');
    expect(ofType('old-cert-probe')).toEqual([expect.objectContaining({ serial: 's1', accepted: false, acceptedAttempts: 0 })]);
  });

  it('gives the old cert a verdict of "accepted" once the bound has passed', async () => {
    const { clock, device, ofType } = setup({ telemetryIntervalMs: 0, rotateAfterMs: 5_000, probeOldCertAfterMs: 500, oldCertBoundMs: 3_000 });
    await device.start();
    await clock.advance(20_000);
    expect(ofType('old-cert-probe')).toEqual([expect.objectContaining({ accepted: true, acceptedAttempts: 3, refusedAfterMs: undefined })]);
  });

  it('a renewal retried after a failure sends the same CSR (one cert, one successor)', async () => {
    const { clock, transport, device } = setup({ telemetryIntervalMs: 0 });
    const csrs: string[] = [];
    const renew = transport.renew.bind(transport);
    transport.renew = async (via, creds, csr, key) => (csrs.push(csr.pem), renew(via, creds, csr, key));
    transport.renewVerdict = (n) => (n < 2 ? new SimError('renew-http-503', 'down', { status: 503 }) : undefined);
    await device.start();
    await clock.advance(50_000);
    expect(csrs).toHaveLength(3);
    expect(new Set(csrs).size).toBe(1);
    expect(device.rotations).toBe(1);
  });

  it('keeps retrying a failing renewal past expiry, and stops as expired when the server says so', async () => {
    const { clock, transport, device } = setup({ telemetryIntervalMs: 0 });
    transport.renewVerdict = () =>
      device.credentials && clock.now() >= device.credentials.notAfter
          ? new SimError('renew-http-403-expired', 'expired', { status: 403, retryable: false, problem: { type: 'https://enrolld.dev/problems/expired', title: 'expired', status: 403 } })
          : new SimError('renew-http-503', 'down', { status: 503 });
    await device.start();
    await clock.advance(120_000);
    expect(device.stopReason).toBe('expired');
    expect(device.stopDetail).toBe('renew-http-403-expired');
    // retried past notAfter (enrolled at t0 with a 60 s cert)
    expect(transport.renewCalls.some((c) => c.at >= transport.enrollCalls[0]!.at + 60_000)).toBe(true);
    expect(transport.sessions.every((s) => s.closed)).toBe(true);
  });

  it('retries a failed renewal with backoff before expiry', async () => {
    const { clock, transport, device, ofType } = setup({ telemetryIntervalMs: 0 });
    transport.renewVerdict = (n) => (n < 3 ? new SimError('renew-http-503', 'down', { status: 503 }) : undefined);
    await device.start();
    await clock.advance(55_000);
    expect(transport.renewCalls).toHaveLength(4);
    expect(ofType('renew-failed')).toHaveLength(3);
    expect(device.rotations).toBe(1);
  });
});

describe('device: stop on revoked', () => {
  it('a cut followed by CONNACK 5 stops it for good, and records the cut time and why', async () => {
    const { clock, transport, device, ofType } = setup();
    await device.start();
    await clock.advance(3_000);
    transport.connectVerdict = () => new SimError('connect-connack-5', 'Connection refused: Not authorized', { revoked: true, retryable: false });
    const cutAt = clock.now();
    transport.liveSession!.serverClose();
    await clock.advance(600_000);
    expect(device.state).toBe('stopped');
    expect(device.stopReason).toBe('revoked');
    expect(device.stopDetail).toBe('connect-connack-5');
    expect(transport.connectCalls).toHaveLength(2); // one refused reconnect, then nothing
    expect(ofType('revoked')).toEqual([expect.objectContaining({ how: 'connect-connack-5', cutAt })]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('a TLS "certificate revoked" alert stops it too', async () => {
    const { clock, transport, device } = setup();
    await device.start();
    await clock.advance(0);
    transport.connectVerdict = () => new SimError('connect-tls-revoked', 'alert', { revoked: true, retryable: false });
    transport.liveSession!.serverClose();
    await clock.advance(60_000);
    expect(device.stopReason).toBe('revoked');
  });

  it('a 403 "revoked" problem on renewal stops it and closes its session', async () => {
    const { clock, transport, device } = setup({ telemetryIntervalMs: 0 });
    transport.renewVerdict = () => new SimError('renew-http-403-revoked', 'revoked', { status: 403, revoked: true, retryable: false });
    await device.start();
    await clock.advance(50_000);
    expect(device.stopReason).toBe('revoked');
    expect(transport.sessions.every((s) => s.closed)).toBe(true);
  });

  it('a broker that closes right after the handshake 3 times in a row is taken as a refusal of the cert', async () => {
    const { clock, transport, device } = setup({ telemetryIntervalMs: 0 });
    await device.start();
    await clock.advance(0);
    transport.connectVerdict = () => new SimError('connect-tls-refused', 'closed after handshake');
    transport.liveSession!.serverClose();
    await clock.advance(60_000);
    expect(device.stopReason).toBe('revoked');
    expect(device.stopDetail).toBe('connect-tls-refused×3');
    expect(transport.connectCalls).toHaveLength(4);
  });

  it('handshake refusals interleaved with a broker that is down do not add up', async () => {
    const { clock, transport, device } = setup({ telemetryIntervalMs: 0 });
    transport.lifetimeMs = 3_600_000;
    await device.start();
    await clock.advance(0);
    const kinds = ['connect-tls-refused', 'connect-tls-refused', 'connect-econnrefused', 'connect-tls-refused', 'connect-tls-refused'];
    transport.connectVerdict = (_s, n) => (n >= 1 && n <= kinds.length ? new SimError(kinds[n - 1]!, 'x') : 'accept');
    transport.liveSession!.serverClose();
    await clock.advance(120_000);
    expect(device.state).toBe('online');
  });

  it('a plain refusal that is not "not authorized" (CONNACK 3) is retried', async () => {
    const { clock, transport, device } = setup({ telemetryIntervalMs: 0 });
    await device.start();
    await clock.advance(0);
    transport.connectVerdict = (_s, n) => (n < 4 ? new SimError('connect-connack-3', 'server unavailable') : 'accept');
    transport.liveSession!.serverClose();
    await clock.advance(60_000);
    expect(device.state).toBe('online');
  });
});

describe('device: Retry-After', () => {
  const busy = (what: string, status: 503 | 429, retryAfterMs: number) =>
    new SimError(`${what}-http-${status}-unavailable`, 'busy', { status, retryable: true, retryAfterMs });

  it('reads delay-seconds and HTTP-dates (RFC 9110 §10.2.3), and keeps it only on a 503 or 429', () => {
    const now = Date.parse('2030-01-01T00:00:00Z');
    expect(parseRetryAfter('7', now)).toBe(7_000);
    expect(parseRetryAfter('Tue, 01 Jan 2030 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(httpError(503, undefined, 'renew', 2_000).retryAfterMs).toBe(2_000);
    expect(httpError(429, undefined, 'enroll', 2_000).retryAfterMs).toBe(2_000);
    expect(httpError(500, undefined, 'renew', 2_000).retryAfterMs).toBeUndefined();
  });

  it('an enrollment answered 503 with Retry-After waits that long, with up to 20% jitter, and counts the wait', async () => {
    const { clock, transport, device, ofType } = setup({ retry: { baseMs: 50, capMs: 100, floorMs: 10 } });
    transport.enrollVerdict = (n) => (n === 0 ? busy('enroll', 503, 4_000) : undefined);
    const started = device.start();
    await clock.advance(3_999);
    expect(transport.enrollCalls).toHaveLength(1); // its own backoff (≤ 100 ms) would have retried long ago
    await clock.advance(801);
    await started;
    expect(transport.enrollCalls).toHaveLength(2);
    expect(device.state).toBe('online');
    const [wait] = ofType('retry-after');
    expect(wait).toEqual(expect.objectContaining({ what: 'enroll' }));
    expect(wait!.waitMs).toBeGreaterThanOrEqual(4_000);
    expect(wait!.waitMs).toBeLessThanOrEqual(4_800);
  });

  it('a renewal answered 429 retries after the Retry-After, cut to the cap', async () => {
    const { clock, transport, device, ofType } = setup({ telemetryIntervalMs: 0, retryAfterCapMs: 5_000 });
    transport.lifetimeMs = 600_000;
    transport.renewVerdict = (n) => (n === 0 ? busy('renew', 429, 3_600_000) : undefined);
    await device.start();
    await clock.advance(0);
    device.renewNow();
    await clock.advance(0);
    expect(transport.renewCalls).toHaveLength(1);
    await clock.advance(6_000);
    expect(transport.renewCalls).toHaveLength(2);
    const gap = transport.renewCalls[1]!.at - transport.renewCalls[0]!.at;
    expect(gap).toBeGreaterThanOrEqual(5_000);
    expect(gap).toBeLessThanOrEqual(6_000);
    expect(device.rotations).toBe(1);
    expect(ofType('retry-after')).toEqual([expect.objectContaining({ what: 'renew', waitMs: gap })]);
  });
});

describe('device: CONNACK 5 against enrolld (no TLS-refusal inference)', () => {
  it('stops at once on CONNACK 5, without retrying', async () => {
    const { clock, transport, device, ofType } = setup({ telemetryIntervalMs: 0, tlsRefusalsToStop: 0 });
    await device.start();
    await clock.advance(0);
    transport.connectVerdict = () => new SimError('connect-connack-5', 'Connection refused: Not authorized', { revoked: true, retryable: false });
    transport.liveSession!.serverClose();
    await clock.advance(60_000);
    expect(transport.connectCalls).toHaveLength(2);
    expect(device.stopReason).toBe('revoked');
    expect(ofType('revoked')).toEqual([expect.objectContaining({ how: 'connect-connack-5' })]);
  });

  it('bare TLS closes are network faults to retry when the inference is off', async () => {
    const { clock, transport, device } = setup({ telemetryIntervalMs: 0, tlsRefusalsToStop: 0 });
    transport.lifetimeMs = 3_600_000;
    await device.start();
    await clock.advance(0);
    transport.connectVerdict = (_s, n) => (n >= 1 && n <= 5 ? new SimError('connect-tls-refused', 'closed after handshake') : 'accept');
    transport.liveSession!.serverClose();
    await clock.advance(120_000);
    expect(device.state).toBe('online');
    expect(transport.connectCalls).toHaveLength(7);
  });
});
